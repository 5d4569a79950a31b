//! Integration tests of certhist-fetch against a loopback HTTP/1.1 server (issue 11: one fetch
//! layer for CT and crt.sh).

mod limits;
mod retries;
mod server;
