//! Merkle tree hashing and proofs: RFC 6962 §2.1 / RFC 9162 §2.1 (MTH), inclusion proof
//! verification (RFC 9162 §2.1.3.2), consistency proof verification (RFC 9162 §2.1.4.2), and a
//! compact range (the stack of full subtrees covering `[0, end)`) for streaming root computation.

use sha2::{Digest, Sha256};

use crate::Hash;

/// Interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// SHA-256 of the empty string: the MTH of an empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// MTH over leaf hashes (RFC 9162 §2.1.1).
pub fn root_of_leaves(leaves: &[Hash]) -> Hash {
    let mut cr = CompactRange::new();
    for l in leaves {
        cr.push(*l);
    }
    cr.root()
}

/// Largest power of two strictly less than `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The full subtrees covering `[0, end)`: for each set bit of `end`, from the highest, the root of
/// a subtree of that height. Appending leaves one by one costs amortised O(1) hashes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompactRange {
    end: u64,
    /// (height, hash), heights strictly decreasing.
    nodes: Vec<(u32, Hash)>,
}

impl CompactRange {
    /// The empty range `[0, 0)`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves covered.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The subtree roots, highest first.
    pub fn nodes(&self) -> &[(u32, Hash)] {
        &self.nodes
    }

    /// Builds the range `[0, end)` from its subtree roots (highest first). Fails if the heights do
    /// not match the set bits of `end`.
    pub fn from_nodes(end: u64, nodes: Vec<(u32, Hash)>) -> Option<Self> {
        let expected: Vec<u32> = (0..64u32).rev().filter(|b| end >> b & 1 == 1).collect();
        let got: Vec<u32> = nodes.iter().map(|n| n.0).collect();
        (expected == got).then_some(CompactRange { end, nodes })
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.append_subtree(0, leaf);
    }

    /// Appends a full subtree of `height` (the range end must be a multiple of 2^height).
    pub fn append_subtree(&mut self, height: u32, hash: Hash) {
        debug_assert_eq!(self.end % (1u64 << height), 0);
        let mut h = height;
        let mut cur = hash;
        while let Some(&(lh, left)) = self.nodes.last() {
            if lh != h {
                break;
            }
            self.nodes.pop();
            cur = node_hash(&left, &cur);
            h += 1;
        }
        self.nodes.push((h, cur));
        self.end += 1u64 << height;
    }

    /// MTH of `[0, end)`.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return empty_root();
        };
        for (_, left) in it {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Index or sizes out of range.
    #[error("index or tree size out of range")]
    OutOfRange,
    /// The proof has the wrong number of nodes.
    #[error("proof has the wrong length")]
    WrongLength,
    /// The recomputed root differs from the expected one.
    #[error("root mismatch: computed {computed}, expected {expected}")]
    RootMismatch {
        /// Hex of the computed root.
        computed: String,
        /// Hex of the expected root.
        expected: String,
    },
}

fn mismatch(computed: &Hash, expected: &Hash) -> ProofError {
    ProofError::RootMismatch {
        computed: hex::encode(computed),
        expected: hex::encode(expected),
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2). On success returns the left siblings on the
/// path as a [`CompactRange`] of `[0, index)` (they are exactly its subtrees).
pub fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf: &Hash,
    path: &[Hash],
    root: &Hash,
) -> Result<CompactRange, ProofError> {
    if index >= tree_size {
        return Err(ProofError::OutOfRange);
    }
    let (mut fnn, mut sn) = (index, tree_size - 1);
    let mut level = 0u32;
    let mut r = *leaf;
    let mut lefts = Vec::new();
    for p in path {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnn & 1 == 1 || fnn == sn {
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                    level += 1;
                }
            }
            r = node_hash(p, &r);
            lefts.push((level, *p));
        } else {
            r = node_hash(&r, p);
        }
        fnn >>= 1;
        sn >>= 1;
        level += 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != root {
        return Err(mismatch(&r, root));
    }
    lefts.reverse();
    CompactRange::from_nodes(index, lefts).ok_or(ProofError::WrongLength)
}

/// Verifies a consistency proof between two tree heads (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::OutOfRange);
    }
    if size1 == size2 {
        return if proof.is_empty() {
            if root1 == root2 {
                Ok(())
            } else {
                Err(mismatch(root1, root2))
            }
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if size1 == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(*root1);
    }
    path.extend_from_slice(proof);
    let (mut fnn, mut sn) = (size1 - 1, size2 - 1);
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnn & 1 == 1 || fnn == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != root1 {
        return Err(mismatch(&fr, root1));
    }
    if &sr != root2 {
        return Err(mismatch(&sr, root2));
    }
    Ok(())
}

/// Builds the inclusion proof of leaf `index` in a tree of `size` leaves (RFC 6962 §2.1.1 PATH),
/// bottom-up, from an oracle giving the MTH of any range `[start, end)` the proof needs.
pub fn inclusion_path<E>(
    index: u64,
    size: u64,
    mut subtree: impl FnMut(u64, u64) -> Result<Hash, E>,
) -> Result<Vec<Hash>, E> {
    let mut out = Vec::new();
    let (mut start, mut end) = (0u64, size);
    let mut rev = Vec::new();
    while end - start > 1 {
        let k = split_point(end - start);
        if index - start < k {
            rev.push((start + k, end));
            end = start + k;
        } else {
            rev.push((start, start + k));
            start += k;
        }
    }
    for (s, e) in rev.into_iter().rev() {
        out.push(subtree(s, e)?);
    }
    Ok(out)
}

/// Splits `[start, end)` into aligned full subtrees (height, index-at-that-height), left to right.
/// `start` must be a multiple of the largest power of two not above `end - start` rounded up, as
/// in every range [`inclusion_path`] asks for.
pub fn aligned_subtrees(mut start: u64, end: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    while start < end {
        let mut h = if start == 0 {
            63
        } else {
            start.trailing_zeros()
        };
        while h > 0 && start + (1u64 << h) > end {
            h -= 1;
        }
        out.push((h, start >> h));
        start += 1u64 << h;
    }
    out
}

/// Combines subtree hashes of consecutive aligned subtrees into their MTH (right to left).
pub fn fold_subtrees(hashes: &[Hash]) -> Hash {
    let mut it = hashes.iter().rev();
    let Some(&last) = it.next() else {
        return empty_root();
    };
    it.fold(last, |acc, l| node_hash(l, &acc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| crate::leaf::leaf_hash(&i.to_be_bytes()))
            .collect()
    }

    /// Reference MTH, straight from the RFC 6962 §2.1 recursion.
    fn mth(l: &[Hash]) -> Hash {
        match l.len() {
            0 => empty_root(),
            1 => l[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&l[..k]), &mth(&l[k..]))
            }
        }
    }

    #[test]
    fn compact_range_matches_recursive_mth_and_proofs_verify() {
        for n in 1..=70u64 {
            let l = leaves(n);
            let root = mth(&l);
            assert_eq!(root_of_leaves(&l), root, "n={n}");
            for m in 0..n {
                let path =
                    inclusion_path(m, n, |s, e| Ok::<_, ()>(mth(&l[s as usize..e as usize])))
                        .unwrap();
                let cr = verify_inclusion(m, n, &l[m as usize], &path, &root).unwrap();
                assert_eq!(cr.root(), mth(&l[..m as usize]));
                assert!(
                    verify_inclusion(m, n, &l[(m as usize + 1) % n as usize], &path, &root)
                        .is_err()
                        || n == 1
                );
            }
        }
    }

    #[test]
    fn aligned_subtrees_fold_to_mth() {
        let l = leaves(100);
        for (s, e) in [(64u64, 100u64), (96, 100), (0, 100), (32, 48), (98, 99)] {
            let hs: Vec<Hash> = aligned_subtrees(s, e)
                .into_iter()
                .map(|(h, i)| mth(&l[(i << h) as usize..((i + 1) << h) as usize]))
                .collect();
            assert_eq!(
                fold_subtrees(&hs),
                mth(&l[s as usize..e as usize]),
                "{s}..{e}"
            );
        }
    }
}
