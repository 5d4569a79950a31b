//! tlog checkpoints (signed notes with `RFC6962NoteSignature`s).
#![no_main]

use certhist_ct::checkpoint::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Checkpoint::parse(data) {
        let _ = c.rfc6962_tree_head(None);
        let _ = c.rfc6962_tree_head(Some(&[7; 32]));
    }
});
