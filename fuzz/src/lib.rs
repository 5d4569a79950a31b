//! Helpers shared by the fuzz targets of certhist (see `README.md`).

use std::io::Cursor;
use std::path::Path;

use certhist_files::driver::FileFormat;
use certhist_files::input::Input;
use certhist_files::ItemReader;

/// `data` as the decompressed input of a file.
pub fn input(data: &[u8]) -> Input {
    Box::new(Cursor::new(data.to_vec()))
}

/// Reads every item of `reader` (a reader must end and never panic; an `Err` ends reading).
/// Returns the number of items.
pub fn drain(mut reader: Box<dyn ItemReader>) -> usize {
    let mut n = 0;
    while let Ok(Some(item)) = reader.next_item() {
        n += 1;
        std::hint::black_box(&item);
    }
    let _ = reader.cursor();
    n
}

/// Reads `data` as a file at `path` of `format`, as the import driver does (after decompression).
pub fn read_as(format: &dyn FileFormat, path: &str, data: &[u8]) -> usize {
    match format.reader(Path::new(path), input(data)) {
        Ok(reader) => drain(reader),
        Err(_) => 0,
    }
}

/// Splits `data` at every occurrence of `sep` (at most `max` parts; the last one keeps the rest).
pub fn split<'a>(data: &'a [u8], sep: &[u8], max: usize) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < max {
        match rest.windows(sep.len()).position(|w| w == sep) {
            Some(at) => {
                parts.push(&rest[..at]);
                rest = &rest[at + sep.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}
