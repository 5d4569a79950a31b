//! Integration tests of certhist-cryptnet.

mod corrupt;
mod fixtures;
