//! The view layer: the one JSON contract. Every output — CLI `--json`, `/api/v1`, the web UI,
//! exports — serialises these types (serde + an OpenAPI schema), never database rows or a
//! second copy of them.
//!
//! Conventions: hashes are lower-case hex, serials upper-case hex, times RFC 3339 UTC, kinds are
//! enums serialised in lower case.

pub mod cryptnet;
