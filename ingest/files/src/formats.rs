//! The file formats of this crate, as [`FileFormat`]s of the import driver.

use std::io;
use std::path::Path;

use crate::certfile::CertFileReader;
use crate::driver::{FileFormat, Replay};
use crate::input::Input;
use crate::observations::ObservationReader;
use crate::record::{Item, ItemReader};

/// Certificate files: certificates found anywhere in text (PEM, also escaped inside JSON and log
/// lines; base64 DER lines and fields) and DER files; see [`crate::certfile`]. Harmless: no
/// cursor, no lock, batches span files.
#[derive(Clone, Copy, Debug, Default)]
pub struct CertificateFiles;

impl FileFormat for CertificateFiles {
    fn name(&self) -> &str {
        "certs"
    }

    fn replay(&self) -> Replay {
        Replay::Harmless
    }

    fn reader(&self, path: &Path, input: Input) -> io::Result<Box<dyn ItemReader>> {
        Ok(Box::new(CertFileReader::new(path, input)?))
    }
}

/// Observation files (CSV, TSV, NDJSON sightings; see [`crate::observations`]). Counted; the
/// cursor counts lines.
#[derive(Clone, Debug, Default)]
pub struct ObservationFiles {
    /// Source label for rows that do not name one (default: the file name).
    pub source: Option<String>,
}

impl FileFormat for ObservationFiles {
    fn name(&self) -> &str {
        "observations"
    }

    fn reader(&self, path: &Path, input: Input) -> io::Result<Box<dyn ItemReader>> {
        let source = self.source.clone().unwrap_or_else(|| {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "import".to_owned())
        });
        Ok(Box::new(ObservationItems {
            reader: ObservationReader::new(input, &source),
        }))
    }
}

/// Observation rows as driver items.
struct ObservationItems {
    reader: ObservationReader<Input>,
}

impl ItemReader for ObservationItems {
    fn next_item(&mut self) -> io::Result<Option<Item>> {
        Ok(self.reader.read_next()?.map(|row| match row {
            Ok(row) => Item::Observation(row),
            Err(p) => Item::Problem(p.line, p.message),
        }))
    }

    fn cursor(&self) -> Option<u64> {
        Some(self.reader.line())
    }
}
