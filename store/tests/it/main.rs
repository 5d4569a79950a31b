//! Integration tests of certhist-store, one module per area.

mod cluster;
mod migrate;
mod read;
mod schema;
mod support;
mod write;
