//! HTTP query API and web UI of certhist
