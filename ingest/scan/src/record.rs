//! What the format readers produce: the items of the import driver ([`certhist_files::record`]).

pub use certhist_files::record::{sha1_of, Item, ItemReader, Problem, Record, Sighting};

/// Cuts attacker-controlled text for messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 60;
    let text = String::from_utf8_lossy(bytes.get(..MAX.min(bytes.len())).unwrap_or_default());
    let mut s: String = text.chars().filter(|c| !c.is_control()).collect();
    if bytes.len() > MAX {
        s.push('…');
    }
    s
}
