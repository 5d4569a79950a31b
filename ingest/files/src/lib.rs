//! File imports of certhist: the import driver every file import runs through ([`driver`]), and
//! the readers of certificate files (certificates found anywhere in text: PEM, also with escaped
//! newlines, base64 DER lines and JSON fields, DER) and observation files (CSV, TSV, NDJSON).
//! Scan formats (ZGrab2, Sonar, nmap, masscan) live in `certhist-scan` and plug into the same
//! driver. Records come out as `certhist-model` types and are written through `certhist-store`;
//! this crate never talks SQL, never prints and never reads flags or the environment.

pub mod certfile;
pub mod cursor;
pub mod driver;
mod error;
pub mod findcerts;
pub mod formats;
pub mod input;
pub mod observations;
pub mod record;

pub use driver::{
    import_files, FileFormat, FileSummary, ImportEvent, ImportOptions, ImportReport, NoProgress,
    ProgressSink, Replay, Totals,
};
pub use error::ImportError;
pub use formats::{CertificateFiles, ObservationFiles};
pub use record::{Item, ItemReader, Problem, Record, Sighting};
