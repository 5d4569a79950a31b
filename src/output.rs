//! Human tables and NDJSON output. Certificate fields are attacker-controlled: everything printed
//! to a terminal goes through [`clean`], which makes control and bidi characters visible.

use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// Longest cell in a human table; longer values are cut with `…`.
const MAX_CELL_CHARS: usize = 64;

/// Makes text safe for a terminal: control characters (ESC, CR, …), bidi overrides and other
/// invisible format characters are shown as `\u{…}`.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        let invisible = ch.is_control()
            || matches!(ch as u32, 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x2069 | 0xFEFF);
        if invisible {
            out.push_str(&format!("\\u{{{:x}}}", ch as u32));
        } else {
            out.push(ch);
        }
    }
    out
}

/// A time as `2024-02-29 07:14:00Z`.
pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// An optional time, `-` when absent.
pub fn opt_time(t: &Option<DateTime<Utc>>) -> String {
    t.as_ref().map(time).unwrap_or_else(|| "-".to_owned())
}

/// An optional text, cleaned, `-` when absent.
pub fn opt(text: &Option<String>) -> String {
    text.as_deref().map(clean).unwrap_or_else(|| "-".to_owned())
}

/// RFC 3339 with seconds, for JSON-ish text.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A human table: header and rows of cells, columns padded to their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Lines printed under a row, outside the columns: (rows before it, line).
    details: Vec<(usize, String)>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            details: Vec::new(),
        }
    }

    /// Adds a row (cells are cleaned and cut).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| cut(&clean(&c))).collect());
    }

    /// Adds an indented `label: text` line under the last row, outside the columns (for long or
    /// multi-valued fields). Label and text are cleaned; the text is not cut.
    pub fn detail(&mut self, label: &str, text: &str) {
        let line = format!("    {:<9}{}", format!("{}:", clean(label)), clean(text));
        self.details.push((self.rows.len(), line));
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Writes the table.
    pub fn print(&self, out: &mut impl Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let line = |cells: &[String], out: &mut dyn Write| -> io::Result<()> {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                if i + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(w.saturating_sub(cell.chars().count()) + 2));
                }
            }
            writeln!(out, "{}", text.trim_end())
        };
        let details = |after: usize, out: &mut dyn Write| -> io::Result<()> {
            for (_, text) in self.details.iter().filter(|(n, _)| *n == after) {
                writeln!(out, "{text}")?;
            }
            Ok(())
        };
        line(&self.header, out)?;
        details(0, out)?;
        for (i, row) in self.rows.iter().enumerate() {
            line(row, out)?;
            details(i + 1, out)?;
        }
        Ok(())
    }
}

fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_CELL_CHARS {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(MAX_CELL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// Writes one JSON object on its own line.
pub fn ndjson<T: Serialize>(out: &mut impl Write, value: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_makes_escapes_visible() {
        assert_eq!(clean("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(clean("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
        assert_eq!(clean("ñeco ␀ ok"), "ñeco ␀ ok");
    }

    #[test]
    fn table_pads_and_cuts() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["x".repeat(100), "y".to_owned()]);
        let mut out = Vec::new();
        t.print(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1].chars().count(), MAX_CELL_CHARS + 2 + 1);
        assert!(lines[1].contains('…'));
    }

    #[test]
    fn table_details_follow_their_row_cleaned_and_uncut() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["1".to_owned(), "one".to_owned()]);
        t.detail("names", &format!("{}\u{1b}[31m", "n".repeat(100)));
        t.row(vec!["2".to_owned(), "two".to_owned()]);
        let mut out = Vec::new();
        t.print(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[1], "1  one");
        assert_eq!(
            lines[2],
            format!("    names:   {}\\u{{1b}}[31m", "n".repeat(100))
        );
        assert_eq!(lines[3], "2  two");
    }
}
