//! Certificate normalisation and file imports for certhist.
//!
//! Sources become records of `certhist-model`; this crate never talks SQL.

pub mod certfile;
pub mod observations;
pub mod x509;
