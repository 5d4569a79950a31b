//! Integration tests of certhist-store, one module per area.

mod accounts;
mod citus;
mod cluster;
mod config;
mod migrate;
mod read;
mod schema;
mod support;
mod tags;
mod write;
