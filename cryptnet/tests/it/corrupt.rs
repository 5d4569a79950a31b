//! Corrupted inputs are reported per entry while the rest of the folder is processed.
