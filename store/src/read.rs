//! Read queries shared by the CLI and the HTTP API.
