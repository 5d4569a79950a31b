//! Integration tests of certhist-store, one module per area.

mod cluster;
mod schema;
