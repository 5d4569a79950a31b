//! Readers of network-sensor logs for the import driver of `certhist-files`: Zeek `ssl.log`
//! (TSV with `#fields` headers, or JSON lines; joined to `x509.log` and, for Bro/Zeek <= 4.0,
//! `files.log` and extracted certificate files) and Suricata `eve.json` (`event_type: tls`).
//!
//! Each log line becomes at most one [`certhist_files::Item`]: a
//! [`certhist_files::Item::Passive`] sighting (server address and port, the time, the leaf by
//! SHA-1 or SHA-256 with the log's certificate text, DER when the log has it, the SNI name), an
//! [`certhist_files::Item::Problem`] with its line number for a bad record, or nothing (header,
//! comment, another Suricata event type). Client addresses are read past and never kept.
//! Nothing here panics on input.
//!
//! The same line parsers serve whole files ([`ZeekSsl`], [`SuricataEve`] as
//! [`certhist_files::FileFormat`]s) and followed, growing logs ([`LineParser`]).

mod dn;
pub mod follow;
pub mod pcap;
pub mod suricata;
pub mod zeek;

use std::io::BufRead;

use certhist_files::{Item, ItemReader};

pub use pcap::PcapCapture;
pub use suricata::{EveParser, SuricataEve};
pub use zeek::{ZeekParser, ZeekSsl};

/// Longest line read (a longer one is reported and skipped).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Turns one log line into an item (or nothing).
pub trait LineParser: Send {
    /// Called before each read of a followed log (Zeek: re-reads the side logs if they grew).
    fn refresh(&mut self) {}

    /// The item of `line` (without its line end), which is line `number` (1-based) of the file.
    fn line(&mut self, line: &[u8], number: u64) -> Option<Item>;
}

/// An [`ItemReader`] over the lines of a file; the cursor is the number of lines read, so
/// lines that give no item (headers, other event types) are resumed past too.
pub(crate) struct LineReader<P> {
    input: Box<dyn BufRead + Send>,
    parser: P,
    lines: u64,
    /// Bytes and lines of the complete lines (ending in `\n`) read.
    complete: (u64, u64),
    buf: Vec<u8>,
}

impl<P: LineParser> LineReader<P> {
    pub(crate) fn new(input: Box<dyn BufRead + Send>, parser: P) -> Self {
        LineReader {
            input,
            parser,
            lines: 0,
            complete: (0, 0),
            buf: Vec::with_capacity(4096),
        }
    }
}

impl<P: LineParser> ItemReader for LineReader<P> {
    fn next_item(&mut self) -> std::io::Result<Option<Item>> {
        loop {
            self.buf.clear();
            let n = self.input.read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.lines += 1;
            if self.buf.last() == Some(&b'\n') {
                self.complete = (self.complete.0 + n as u64, self.lines);
            }
            if self.buf.len() > MAX_LINE_BYTES {
                return Ok(Some(Item::Problem(
                    self.lines,
                    format!("line longer than {MAX_LINE_BYTES} bytes"),
                )));
            }
            let line = trim_line_end(&self.buf);
            if let Some(item) = self.parser.line(line, self.lines) {
                return Ok(Some(item));
            }
        }
    }

    fn cursor(&self) -> Option<u64> {
        Some(self.lines)
    }

    fn line_position(&self) -> Option<(u64, u64)> {
        Some(self.complete)
    }
}

/// `line` without its trailing `\n` / `\r\n`.
pub fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses Zeek / Suricata epoch seconds with a fraction (`1332008617.54`, `1575413156.177305`)
/// exactly, to the microsecond (digits past the sixth are dropped).
pub fn epoch_decimal(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = text.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let (neg, int) = match int.strip_prefix('-') {
        Some(i) => (true, i),
        None => (false, int),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || int.len() > 12 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let mut micros: i64 = 0;
    for i in 0..6 {
        micros = micros * 10 + frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
    }
    let total = secs.checked_mul(1_000_000)?.checked_add(micros)?;
    chrono::DateTime::from_timestamp_micros(if neg { -total } else { total })
}

/// SHA-1 of a DER.
pub(crate) fn sha1_of(der: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(der).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs() {
        assert_eq!(
            epoch_decimal("1332008617.54").unwrap().to_rfc3339(),
            "2012-03-17T18:23:37.540+00:00"
        );
        assert_eq!(
            epoch_decimal("1268758221.508194")
                .unwrap()
                .timestamp_micros(),
            1_268_758_221_508_194
        );
        assert!(epoch_decimal("12x").is_none());
        assert!(epoch_decimal("").is_none());
        assert!(epoch_decimal("99999999999999999999").is_none());
    }
}
