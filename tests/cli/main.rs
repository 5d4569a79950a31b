//! End-to-end tests of the `certhist` binary against a real PostgreSQL (the managed test cluster
//! or TEST_DATABASE_URL), one module per command group.

mod db;
mod demo;
mod import;
mod query;
mod secrets;
mod support;
