//! tlog-tiles (c2sp.org/tlog-tiles) paths and hash tiles, as used by c2sp.org/static-ct-api.

use crate::{Hash, ParseError};

/// Tile height: a full tile holds 2^8 = 256 entries or hashes.
pub const TILE_WIDTH: u64 = 256;

/// Encodes a tile index as path elements of three digits, all but the last prefixed with `x`:
/// 1234067 → `x001/x234/067`.
pub fn encode_index(mut n: u64) -> String {
    let mut parts = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        parts.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    parts.reverse();
    parts.join("/")
}

fn suffix(width: u64) -> String {
    if width < TILE_WIDTH {
        format!(".p/{width}")
    } else {
        String::new()
    }
}

/// Path of hash tile `index` at `level` with `width` hashes (full tiles have no `.p/W`).
pub fn hash_tile_path(level: u32, index: u64, width: u64) -> String {
    format!("tile/{level}/{}{}", encode_index(index), suffix(width))
}

/// Path of data tile `index` with `width` entries.
pub fn data_tile_path(index: u64, width: u64) -> String {
    format!("tile/data/{}{}", encode_index(index), suffix(width))
}

/// Width of tile `index` at `level` in a tree of `tree_size` leaves (0 if it does not exist).
pub fn tile_width(level: u32, index: u64, tree_size: u64) -> u64 {
    let nodes = if level >= 8 {
        0
    } else {
        tree_size >> (8 * level)
    };
    nodes.saturating_sub(index * TILE_WIDTH).min(TILE_WIDTH)
}

/// Splits a hash tile into its hashes.
pub fn parse_hash_tile(data: &[u8], width: u64) -> Result<Vec<Hash>, ParseError> {
    if data.len() as u64 != width * 32 {
        return Err(ParseError::invalid(
            "hash tile",
            format!("{} bytes for width {width}", data.len()),
        ));
    }
    Ok(data
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_encoding_matches_certspotter_vectors() {
        assert_eq!(encode_index(1000), "x001/000");
        assert_eq!(encode_index(52123), "x052/123");
        assert_eq!(encode_index(1999001), "x001/x999/001");
        assert_eq!(encode_index(15999001), "x015/x999/001");
        assert_eq!(encode_index(3), "003");
        assert_eq!(data_tile_path(3, 10), "tile/data/003.p/10");
        assert_eq!(hash_tile_path(0, 3, 256), "tile/0/003");
        assert_eq!(tile_width(0, 3, 778), 10);
        assert_eq!(tile_width(1, 0, 778), 3);
        assert_eq!(tile_width(0, 4, 778), 0);
    }
}
