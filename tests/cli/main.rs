//! End-to-end tests of the `certhist` binary against a real PostgreSQL (the managed test cluster
//! or TEST_DATABASE_URL), one module per command group.

mod accounts;
mod cryptnet;
mod ct;
mod db;
mod db_faults;
mod demo;
mod docs;
mod escaping;
mod export;
mod import;
mod passive;
mod query;
mod replica;
mod scan;
mod scan_import;
mod secrets;
mod support;
mod tags;
mod tls;
mod upgrade;
mod views;
