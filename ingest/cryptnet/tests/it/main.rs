//! Integration tests of certhist-cryptnet.

mod corrupt;
mod crtsh;
mod db;
mod fixtures;
