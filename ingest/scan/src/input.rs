//! Scan-file helpers: the port a file name states. Opening, decompressing, hashing and line
//! reading are the import driver's ([`certhist_files::input`], re-exported here).

use std::path::Path;

pub use certhist_files::input::{content_sha256, open, CountingReader, Input, Line, Lines};

/// Port from a file name that ends in `_<port>` before its extensions (`results_8_8_8_8_443.json`,
/// `https_get_443_hosts.gz` does not qualify: use the Sonar rules for those).
pub fn port_from_file_name(path: &Path) -> Option<u16> {
    let name = path.file_name()?.to_str()?;
    let stem = name.split('.').next()?;
    let last = stem.rsplit('_').next()?;
    if last.len() == stem.len() || last.is_empty() || last.len() > 5 {
        return None;
    }
    last.parse::<u16>().ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_from_names() {
        assert_eq!(
            port_from_file_name(Path::new("d/results_8_8_8_8_443.json")),
            Some(443)
        );
        assert_eq!(port_from_file_name(Path::new("x_8443.json.gz")), Some(8443));
        assert_eq!(port_from_file_name(Path::new("output.json")), None);
        assert_eq!(port_from_file_name(Path::new("ftp-authtls.json")), None);
        assert_eq!(port_from_file_name(Path::new("a_99999.json")), None);
    }
}
