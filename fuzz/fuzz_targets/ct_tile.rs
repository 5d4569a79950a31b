//! static-ct-api tiles: data tiles (`TileLeaf` records) and hash tiles.
#![no_main]

use certhist_ct::leaf::parse_data_tile;
use certhist_ct::tile::parse_hash_tile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick the tile (its first entry is a multiple of 256) and the width.
    let (sel, tile) = data.split_at(data.len().min(2));
    let n = sel.first().copied().unwrap_or(0);
    let width = u64::from(sel.get(1).copied().unwrap_or(0)) + 1;
    let _ = parse_data_tile(tile, u64::from(n) * 256);
    let _ = parse_hash_tile(tile, width);
});
