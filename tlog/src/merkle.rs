//! RFC 9162 Merkle tree math for the audit ledger (pure, no I/O). Invariant: every hash this
//! module produces or accepts is the RFC 9162 §2.1 hash of the same leaves — leaf and interior
//! hashes are domain-separated (0x00 / 0x01), and the verifiers accept a proof only if it
//! recomputes the given root(s) exactly, with exactly the expected number of elements.

use std::fmt;

use ring::digest::{Context, SHA256};

/// A SHA-256 output (leaf hashes, tree nodes, roots).
pub type Hash = [u8; 32];

/// A perfect subtree of the Merkle tree: 2^level leaves starting at leaf index * 2^level; the
/// key of a stored tree node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

/// Errors of proof construction and verification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree sizes {old} and {new} do not satisfy 0 < old <= new")]
    BadSizes { old: u64, new: u64 },
    #[error("empty or reversed range [{lo}, {hi})")]
    BadRange { lo: u64, hi: u64 },
    #[error("proof has {got} hashes, expected {expected}")]
    WrongProofLength { expected: usize, got: usize },
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    #[error("stored tree node {0} is missing")]
    MissingNode(NodeId),
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(ctx.finish().as_ref()) {
        *o = *b;
    }
    out
}

/// RFC 9162 leaf hash: SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    sha256(&[&[0x00], entry])
}

/// RFC 9162 interior node hash: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    sha256(&[])
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(level {}, index {})", self.level, self.index)
    }
}

/// The right frontier (compact range [0, size)) of a tree: hashes of the perfect subtrees that
/// make up the first `size` leaves, largest (leftmost) first — one per set bit of `size`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuild from stored hashes; None if nodes.len() != size.count_ones().
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Frontier> {
        (nodes.len() == size.count_ones() as usize).then_some(Frontier { size, nodes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Positions of the frontier nodes for `size`, largest first (what `from_parts` expects).
    pub fn positions(size: u64) -> Vec<NodeId> {
        (0..64u8)
            .rev()
            .filter(|level| size >> level & 1 == 1)
            // Bit `level` is set, so (size >> level) - 1 is the index of the perfect node that
            // covers the leaves under that bit (all higher bits come before it).
            .map(|level| NodeId {
                level,
                index: (size >> level) - 1,
            })
            .collect()
    }

    /// Append one leaf hash; returns every perfect node completed by it, the leaf itself first
    /// (level 0, index = its leaf index), then each newly completed parent (level 1, 2, …).
    ///
    /// A frontier that already holds `u64::MAX` leaves is full: it is left unchanged and the
    /// returned Vec is empty (a successful push never returns an empty Vec).
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        self.push_subtree(0, leaf)
    }

    /// Append a perfect subtree of 2^`level` leaves whose root is `root` (level 0: one leaf
    /// hash); returns every perfect node completed by it, the subtree's root first (at `level`,
    /// index = the old size >> level), then each newly completed parent above it. The result is
    /// what pushing the subtree's leaves one by one would have completed at `level` and above.
    ///
    /// The subtree must be aligned (the size a multiple of 2^`level`) and fit (the size stays
    /// within `u64`): otherwise the frontier is left unchanged and the returned Vec is empty (a
    /// successful push never returns an empty Vec).
    pub fn push_subtree(&mut self, level: u8, root: Hash) -> Vec<(NodeId, Hash)> {
        let Some(span) = 1u64.checked_shl(u32::from(level)) else {
            return Vec::new();
        };
        let old = self.size;
        let Some(new_size) = old.checked_add(span).filter(|_| old.is_multiple_of(span)) else {
            return Vec::new();
        };
        let mut completed = vec![(
            NodeId {
                level,
                index: old >> level,
            },
            root,
        )];
        let mut hash = root;
        let mut level = level;
        // Each set bit of the old size at or above `level` is a perfect sibling on the left that
        // now merges (the bits below are clear: the subtree is aligned). The sum fits in u64, so
        // a clear bit comes before bit 64.
        while old >> level & 1 == 1 {
            let Some(left) = self.nodes.pop() else { break };
            hash = node_hash(&left, &hash);
            level += 1;
            completed.push((
                NodeId {
                    level,
                    index: old >> level,
                },
                hash,
            ));
        }
        self.nodes.push(hash);
        self.size = new_size;
        completed
    }

    /// MTH of the first `size` leaves (RFC 9162 §2.1.1); the empty tree's root is `empty_root()`.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        match nodes.next() {
            None => empty_root(),
            Some(last) => nodes.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// The largest power of two strictly smaller than `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The stored node for [lo, hi) if that range is an aligned perfect subtree.
fn perfect_node(lo: u64, hi: u64) -> Option<NodeId> {
    let n = hi.checked_sub(lo)?;
    (n.is_power_of_two() && lo.is_multiple_of(n)).then(|| NodeId {
        level: n.trailing_zeros() as u8,
        index: lo >> n.trailing_zeros(),
    })
}

/// Perfect nodes whose hashes determine MTH(D[lo:hi]) — the decomposition used for ranges that
/// are not themselves perfect (split at the largest power of two smaller than hi-lo, as the
/// RFC does). Requires lo < hi (returns an empty Vec otherwise). Left to right.
pub fn range_nodes(lo: u64, hi: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    if lo < hi {
        collect_range_nodes(lo, hi, &mut out);
    }
    out
}

fn collect_range_nodes(lo: u64, hi: u64, out: &mut Vec<NodeId>) {
    if let Some(id) = perfect_node(lo, hi) {
        out.push(id);
    } else {
        // hi - lo >= 2 here: a single leaf is always a perfect node.
        let mid = lo + split_point(hi - lo);
        collect_range_nodes(lo, mid, out);
        collect_range_nodes(mid, hi, out);
    }
}

/// MTH(D[lo:hi]) from stored perfect nodes; `lookup` returns None for a node it lacks → Err.
pub fn range_hash(
    lo: u64,
    hi: u64,
    lookup: &impl Fn(NodeId) -> Option<Hash>,
) -> Result<Hash, ProofError> {
    if lo >= hi {
        return Err(ProofError::BadRange { lo, hi });
    }
    if let Some(id) = perfect_node(lo, hi) {
        return lookup(id).ok_or(ProofError::MissingNode(id));
    }
    let mid = lo + split_point(hi - lo);
    Ok(node_hash(
        &range_hash(lo, mid, lookup)?,
        &range_hash(mid, hi, lookup)?,
    ))
}

/// The subtree ranges [lo, hi) whose hashes form the inclusion proof of leaf `index` in a tree
/// of `size` leaves, in RFC 9162 §2.1.3.1 PATH order (bottom-up). Err if index >= size.
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Walk top-down, recording the sibling range at each split; PATH lists them bottom-up.
    let (mut lo, mut hi) = (0, size);
    let mut out = Vec::new();
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            out.push((mid, hi));
            hi = mid;
        } else {
            out.push((lo, mid));
            lo = mid;
        }
    }
    out.reverse();
    Ok(out)
}

/// Same for the consistency proof between sizes `old` and `new` (RFC 9162 §2.1.4.1 PROOF /
/// SUBPROOF order). Err unless 0 < old <= new; old == new gives an empty proof.
pub fn consistency_ranges(old: u64, new: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if old == 0 || old > new {
        return Err(ProofError::BadSizes { old, new });
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled top-down; `m` is relative to `lo`.
    let (mut lo, mut hi, mut m) = (0u64, new, old);
    let mut complete = true;
    let mut out = Vec::new();
    while m < hi - lo {
        let k = split_point(hi - lo);
        if m <= k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
            m -= k;
            complete = false;
        }
    }
    // Now m == hi - lo: the subtree D[lo:hi] is the old tree's last part.
    if !complete {
        out.push((lo, hi));
    }
    out.reverse();
    Ok(out)
}

/// Every perfect node needed to build those proofs (union of range_nodes of each range, sorted,
/// deduplicated).
pub fn nodes_for(ranges: &[(u64, u64)]) -> Vec<NodeId> {
    let mut out: Vec<NodeId> = ranges
        .iter()
        .flat_map(|&(lo, hi)| range_nodes(lo, hi))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Number of hashes in the inclusion proof of `index` in a tree of `size` (index < size).
fn inclusion_len(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Number of hashes in the consistency proof from `old` to `new` (0 < old < new).
fn consistency_len(old: u64, new: u64) -> usize {
    let level = old.trailing_zeros();
    let index = (old - 1) >> level;
    let seed = usize::from(index != 0);
    seed + inclusion_len(index, ((new - 1) >> level) + 1)
}

fn check_len(expected: usize, proof: &[Hash]) -> Result<(), ProofError> {
    if proof.len() == expected {
        Ok(())
    } else {
        Err(ProofError::WrongProofLength {
            expected,
            got: proof.len(),
        })
    }
}

/// Verify an inclusion proof exactly per RFC 9162 §2.1.3.2 (after checking its length).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    check_len(inclusion_len(index, size), proof)?;
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && r == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verify a consistency proof exactly per RFC 9162 §2.1.4.2 (after checking its length); equal
/// sizes need an empty proof and equal roots.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old == 0 || old > new {
        return Err(ProofError::BadSizes { old, new });
    }
    if old == new {
        check_len(0, proof)?;
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    check_len(consistency_len(old, new), proof)?;
    // Step 2: a power-of-two old tree is itself a node of the new tree: its root seeds the path.
    let seeded: Vec<&Hash> = if old.is_power_of_two() {
        std::iter::once(old_root).chain(proof).collect()
    } else {
        proof.iter().collect()
    };
    let mut path = seeded.into_iter();
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let Some(first) = path.next() else {
        return Err(ProofError::WrongProofLength {
            expected: 1,
            got: 0,
        });
    };
    let (mut fr, mut sr) = (*first, *first);
    for c in path {
        if s == 0 {
            return Err(ProofError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if fr == *old_root && sr == *new_root && s == 0 {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;

    // ---- In-memory reference, straight from the RFC 9162 §2.1 definitions. ----

    fn largest_pow2_below(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = largest_pow2_below(n);
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
        let n = d.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = largest_pow2_below(n);
        if m < k {
            let mut p = path(m, &d[..k]);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = path(m - k, &d[k..]);
            p.push(mth(&d[..k]));
            p
        }
    }

    fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { Vec::new() } else { vec![mth(d)] };
        }
        let k = largest_pow2_below(n);
        if m <= k {
            let mut p = subproof(m, &d[..k], b);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = subproof(m - k, &d[k..], false);
            p.push(mth(&d[..k]));
            p
        }
    }

    fn ref_consistency(m: usize, d: &[Hash]) -> Vec<Hash> {
        subproof(m, d, true)
    }

    // ---- One shared log of N leaves, built with `Frontier::push`. ----

    const N: u64 = 1100;

    struct Log {
        leaves: Vec<Hash>,
        nodes: HashMap<NodeId, Hash>,
        roots: Vec<Hash>,
    }

    fn log() -> &'static Log {
        static LOG: OnceLock<Log> = OnceLock::new();
        LOG.get_or_init(|| {
            let mut f = Frontier::new();
            let mut log = Log {
                leaves: Vec::new(),
                nodes: HashMap::new(),
                roots: vec![f.root()],
            };
            for i in 0..N {
                let leaf = leaf_hash(format!("entry {i}").as_bytes());
                log.leaves.push(leaf);
                for (id, h) in f.push(leaf) {
                    assert!(
                        log.nodes.insert(id, h).is_none(),
                        "node {id} completed twice"
                    );
                }
                log.roots.push(f.root());
            }
            log
        })
    }

    /// Only the nodes that exist once `size` leaves were pushed.
    fn lookup_at(size: u64) -> impl Fn(NodeId) -> Option<Hash> {
        move |id: NodeId| {
            let end = (id.index + 1).checked_shl(u32::from(id.level))?;
            if end <= size {
                log().nodes.get(&id).copied()
            } else {
                None
            }
        }
    }

    fn inclusion_proof(index: u64, size: u64) -> Vec<Hash> {
        let lookup = lookup_at(size);
        inclusion_ranges(index, size)
            .unwrap()
            .iter()
            .map(|&(lo, hi)| range_hash(lo, hi, &lookup).unwrap())
            .collect()
    }

    fn consistency_proof(old: u64, new: u64) -> Vec<Hash> {
        let lookup = lookup_at(new);
        consistency_ranges(old, new)
            .unwrap()
            .iter()
            .map(|&(lo, hi)| range_hash(lo, hi, &lookup).unwrap())
            .collect()
    }

    fn root(size: u64) -> Hash {
        log().roots[size as usize]
    }

    fn leaf(index: u64) -> Hash {
        log().leaves[index as usize]
    }

    fn flip(h: &Hash, bit: usize) -> Hash {
        let mut h = *h;
        h[bit / 8] ^= 1 << (bit % 8);
        h
    }

    const JUNK: Hash = [0xA5; 32];

    /// One claim handed to a verifier: the sizes, hashes and proof it is asked to accept.
    #[derive(Clone)]
    struct Probe {
        desc: &'static str,
        a: u64,
        b: u64,
        h1: Hash,
        h2: Hash,
        proof: Vec<Hash>,
    }

    impl Probe {
        fn with(&self, desc: &'static str, change: impl Fn(&mut Probe)) -> Probe {
            let mut p = self.clone();
            p.desc = desc;
            change(&mut p);
            p
        }
    }

    /// The mutations of transparency-dev/merkle `proof/verify_test.go` and a few more, applied
    /// to a valid claim: (a, b) are (index, size) or (old, new), (h1, h2) the leaf and root or
    /// the two roots.
    fn mutations(ok: &Probe) -> Vec<Probe> {
        let (h1, h2) = (ok.h1, ok.h2);
        let mut probes = vec![
            ok.with("a + 1", |p| p.a += 1),
            ok.with("a ^ 2", |p| p.a ^= 2),
            ok.with("b + 1", |p| p.b += 1),
            ok.with("b - 1", |p| p.b -= 1),
            ok.with("b * 2", |p| p.b *= 2),
            ok.with("b / 2", |p| p.b /= 2),
            ok.with("wrong h1", |p| p.h1 = JUNK),
            ok.with("wrong h2", |p| p.h2 = JUNK),
            ok.with("empty root as h1", |p| p.h1 = empty_root()),
            ok.with("empty root as h2", |p| p.h2 = empty_root()),
            ok.with("junk appended", |p| p.proof.push(JUNK)),
            ok.with("h1 appended", |p| p.proof.push(h1)),
            ok.with("h2 appended", |p| p.proof.push(h2)),
            ok.with("junk prepended", |p| p.proof.insert(0, JUNK)),
            ok.with("h1 prepended", |p| p.proof.insert(0, h1)),
            ok.with("h2 prepended", |p| p.proof.insert(0, h2)),
        ];
        if ok.a > 0 {
            probes.push(ok.with("a - 1", |p| p.a -= 1));
        }
        if h1 != h2 {
            probes.push(ok.with("h1 and h2 swapped", |p| (p.h1, p.h2) = (h2, h1)));
        }
        if let Some(&first) = ok.proof.first() {
            probes.push(ok.with("empty proof", |p| p.proof.clear()));
            probes.push(ok.with("last dropped", |p| p.proof.truncate(p.proof.len() - 1)));
            probes.push(ok.with("first dropped", |p| p.proof = p.proof[1..].to_vec()));
            probes.push(ok.with("first repeated", |p| p.proof.insert(0, first)));
            probes.push(ok.with("junk inserted", |p| p.proof.insert(1, JUNK)));
        }
        if ok.proof.len() > 1 {
            probes.push(ok.with("first two swapped", |p| p.proof.swap(0, 1)));
        }
        probes
    }

    /// Left/right pattern of an inclusion proof: the verifier can only see this, so two claims
    /// with the same pattern are indistinguishable to any RFC 9162 verifier.
    fn inclusion_shape(index: u64, size: u64) -> Option<Vec<bool>> {
        let ranges = inclusion_ranges(index, size).ok()?;
        Some(ranges.iter().map(|&(lo, _)| lo > index).collect())
    }

    /// What a consistency verifier sees of (old, new): whether the old root seeds the path, and
    /// for each proof hash whether it lies inside the old tree (hashed into both roots).
    fn consistency_shape(old: u64, new: u64) -> Option<(bool, Vec<bool>)> {
        let ranges = consistency_ranges(old, new).ok()?;
        Some((
            old.is_power_of_two(),
            ranges.iter().map(|&(lo, _)| lo < old).collect(),
        ))
    }

    /// Assert that every mutation is rejected, except size ± 1 when the verifier sees the same
    /// shape: inherent to RFC 9162, whose proofs carry no sizes (see
    /// `sizes_are_bound_by_the_signed_checkpoint_not_by_the_proof`).
    fn assert_inclusion_probes_fail(index: u64, size: u64, leaf: Hash, proof: &[Hash], root: Hash) {
        let ok = Probe {
            desc: "",
            a: index,
            b: size,
            h1: leaf,
            h2: root,
            proof: proof.to_vec(),
        };
        for p in mutations(&ok) {
            if verify_inclusion(p.a, p.b, &p.h1, &p.proof, &p.h2).is_ok() {
                assert!(
                    matches!(p.desc, "b + 1" | "b - 1")
                        && inclusion_shape(p.a, p.b) == inclusion_shape(index, size),
                    "mutation {:?} of inclusion ({index}, {size}) verified",
                    p.desc
                );
            }
        }
    }

    /// The same for consistency proofs (the new size may be ± 1 with the same shape).
    fn assert_consistency_probes_fail(old: u64, new: u64, proof: &[Hash]) {
        let ok = Probe {
            desc: "",
            a: old,
            b: new,
            h1: root(old),
            h2: root(new),
            proof: proof.to_vec(),
        };
        for p in mutations(&ok) {
            if verify_consistency(p.a, p.b, &p.h1, &p.h2, &p.proof).is_ok() {
                assert!(
                    matches!(p.desc, "b + 1" | "b - 1")
                        && consistency_shape(p.a, p.b) == consistency_shape(old, new),
                    "mutation {:?} of consistency ({old}, {new}) verified",
                    p.desc
                );
            }
        }
    }

    fn index_and_size() -> impl Strategy<Value = (u64, u64)> {
        (1..=N).prop_flat_map(|s| (0..s, Just(s)))
    }

    fn old_and_new() -> impl Strategy<Value = (u64, u64)> {
        (1..N).prop_flat_map(|n| (1..=n, Just(n)))
    }

    // ---- Known answers and the frontier. ----

    #[test]
    fn the_empty_leaf_and_the_empty_tree_hash_to_the_rfc_values() {
        assert_eq!(
            crate::hex::encode(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(
            crate::hex::encode(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Frontier::new().root(), empty_root());
    }

    #[test]
    fn frontier_root_equals_the_recursive_mth_for_every_size_up_to_300() {
        let leaves = &log().leaves;
        let mut f = Frontier::new();
        for n in 0..=300usize {
            assert_eq!(f.root(), mth(&leaves[..n]), "size {n}");
            assert_eq!(f.size(), n as u64);
            f.push(leaves[n]);
        }
    }

    #[test]
    fn push_returns_the_leaf_then_each_completed_parent_bottom_up() {
        let mut f = Frontier::new();
        for i in 0..300u64 {
            let done = f.push(leaf_hash(&i.to_be_bytes()));
            assert_eq!(done.len() as u32, 1 + i.trailing_ones(), "push of leaf {i}");
            for (level, (id, _)) in done.iter().enumerate() {
                assert_eq!(id.level as usize, level);
                assert_eq!(id.index, i >> level);
                assert_eq!(
                    (id.index + 1) << level,
                    i + 1,
                    "a completed node ends at the new leaf"
                );
            }
            assert_eq!(done[0].1, leaf_hash(&i.to_be_bytes()));
            assert_eq!(
                f.nodes().last(),
                done.last().map(|(_, h)| h),
                "the top one joins the frontier"
            );
        }
    }

    #[test]
    fn pushing_a_subtree_root_equals_pushing_its_leaves() {
        let leaves: Vec<Hash> = (0..300u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for level in [1u8, 2, 4] {
            let span = 1usize << level;
            let mut by_leaf = Frontier::new();
            let mut by_tile = Frontier::new();
            for tile in leaves.chunks_exact(span) {
                let mut last = Vec::new();
                for leaf in tile {
                    last = by_leaf.push(*leaf);
                }
                let root = {
                    let mut f = Frontier::new();
                    tile.iter().for_each(|l| {
                        f.push(*l);
                    });
                    f.root()
                };
                let done = by_tile.push_subtree(level, root);
                assert_eq!(done.as_slice(), &last[usize::from(level)..]);
                assert_eq!(by_tile, by_leaf);
                // Not aligned, or too large: refused, nothing changes.
                let mut shifted = by_tile.clone();
                shifted.push(root);
                let before = shifted.clone();
                assert!(shifted.push_subtree(level, root).is_empty());
                assert_eq!(shifted, before);
            }
        }
        let mut full = Frontier::from_parts(1 << 63, vec![[0; 32]]).unwrap();
        assert!(full.push_subtree(63, [1; 32]).is_empty());
        assert!(full.push_subtree(64, [1; 32]).is_empty());
        assert_eq!(full.size(), 1 << 63);
    }

    #[test]
    fn positions_name_the_stored_nodes_that_make_up_the_frontier() {
        let mut f = Frontier::new();
        for n in 0..=N {
            let positions = Frontier::positions(n);
            assert_eq!(positions.len() as u32, n.count_ones());
            let stored: Vec<Hash> = positions.iter().map(|id| log().nodes[id]).collect();
            assert_eq!(stored, f.nodes(), "size {n}");
            assert_eq!(Frontier::from_parts(n, stored), Some(f.clone()));
            if n < N {
                f.push(leaf(n));
            }
        }
        assert_eq!(Frontier::positions(u64::MAX).len(), 64);
        assert_eq!(
            Frontier::positions(u64::MAX)[0],
            NodeId {
                level: 63,
                index: 0
            }
        );
        assert_eq!(
            Frontier::positions(u64::MAX)[63],
            NodeId {
                level: 0,
                index: u64::MAX - 1
            }
        );
    }

    #[test]
    fn from_parts_rejects_a_node_count_that_does_not_match_the_size() {
        assert!(Frontier::from_parts(0, vec![]).is_some());
        assert!(Frontier::from_parts(0, vec![JUNK]).is_none());
        assert!(Frontier::from_parts(5, vec![JUNK]).is_none());
        assert!(Frontier::from_parts(5, vec![JUNK; 3]).is_none());
        assert!(Frontier::from_parts(5, vec![JUNK; 2]).is_some());
    }

    #[test]
    fn a_full_frontier_refuses_to_grow_and_returns_no_nodes() {
        let mut f = Frontier::from_parts(u64::MAX, vec![JUNK; 64]).unwrap();
        let before = f.clone();
        assert!(f.push(JUNK).is_empty());
        assert_eq!(f, before);
    }

    // ---- Ranges. ----

    #[test]
    fn range_nodes_split_like_the_rfc_and_skip_straight_to_stored_perfect_nodes() {
        assert_eq!(range_nodes(0, 8), vec![NodeId { level: 3, index: 0 }]);
        assert_eq!(
            range_nodes(8, 15),
            vec![
                NodeId { level: 2, index: 2 },
                NodeId { level: 1, index: 6 },
                NodeId {
                    level: 0,
                    index: 14
                }
            ]
        );
        // Unaligned ranges still decompose per the RFC's split.
        assert_eq!(
            range_nodes(2, 6),
            vec![NodeId { level: 1, index: 1 }, NodeId { level: 1, index: 2 }]
        );
        assert!(range_nodes(3, 3).is_empty());
        assert!(range_nodes(4, 3).is_empty());
    }

    #[test]
    fn range_hash_reports_the_missing_node_and_rejects_empty_ranges() {
        let lookup = |_: NodeId| None;
        assert_eq!(
            range_hash(8, 12, &lookup),
            Err(ProofError::MissingNode(NodeId { level: 2, index: 2 }))
        );
        assert_eq!(
            range_hash(5, 5, &lookup),
            Err(ProofError::BadRange { lo: 5, hi: 5 })
        );
        assert_eq!(
            range_hash(6, 5, &lookup),
            Err(ProofError::BadRange { lo: 6, hi: 5 })
        );
        assert!(
            ProofError::MissingNode(NodeId { level: 2, index: 2 })
                .to_string()
                .contains("level 2, index 2")
        );
    }

    #[test]
    fn proof_ranges_reject_impossible_sizes() {
        assert_eq!(
            inclusion_ranges(0, 0),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            inclusion_ranges(5, 5),
            Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert_eq!(inclusion_ranges(0, 1), Ok(vec![]));
        assert_eq!(
            consistency_ranges(0, 5),
            Err(ProofError::BadSizes { old: 0, new: 5 })
        );
        assert_eq!(
            consistency_ranges(6, 5),
            Err(ProofError::BadSizes { old: 6, new: 5 })
        );
        assert_eq!(consistency_ranges(5, 5), Ok(vec![]));
    }

    #[test]
    fn proof_ranges_match_the_rfc_9162_examples() {
        // RFC 9162 §2.1.5: tree of 7 leaves a..g.
        assert_eq!(inclusion_ranges(0, 7), Ok(vec![(1, 2), (2, 4), (4, 7)])); // b, h, l
        assert_eq!(inclusion_ranges(3, 7), Ok(vec![(2, 3), (0, 2), (4, 7)])); // c, g, l
        assert_eq!(inclusion_ranges(4, 7), Ok(vec![(5, 6), (6, 7), (0, 4)])); // f, j, k
        assert_eq!(inclusion_ranges(6, 7), Ok(vec![(4, 6), (0, 4)])); // i, k
        assert_eq!(
            consistency_ranges(3, 7),
            Ok(vec![(2, 3), (3, 4), (0, 2), (4, 7)])
        ); // c, d, g, l
        assert_eq!(consistency_ranges(4, 7), Ok(vec![(4, 7)])); // l
        assert_eq!(consistency_ranges(6, 7), Ok(vec![(4, 6), (6, 7), (0, 4)])); // i, j, k
    }

    #[test]
    fn proof_lengths_match_the_ranges_for_every_small_tree() {
        for size in 1..=200u64 {
            for index in 0..size {
                assert_eq!(
                    inclusion_len(index, size),
                    inclusion_ranges(index, size).unwrap().len()
                );
            }
            for old in 1..size {
                assert_eq!(
                    consistency_len(old, size),
                    consistency_ranges(old, size).unwrap().len()
                );
            }
        }
    }

    #[test]
    fn ranges_and_lengths_do_not_overflow_at_the_largest_sizes() {
        for (index, size) in [
            (u64::MAX - 1, u64::MAX),
            (0, u64::MAX),
            (1 << 63, u64::MAX),
            (u64::MAX - 2, u64::MAX - 1),
        ] {
            let ranges = inclusion_ranges(index, size).unwrap();
            assert_eq!(ranges.len(), inclusion_len(index, size));
            assert!(ranges.iter().all(|&(lo, hi)| lo < hi && hi <= size));
        }
        for (old, new) in [
            (u64::MAX - 1, u64::MAX),
            (1, u64::MAX),
            (1 << 63, u64::MAX),
            (3, 1 << 63),
        ] {
            let ranges = consistency_ranges(old, new).unwrap();
            assert_eq!(ranges.len(), consistency_len(old, new));
            assert!(!nodes_for(&ranges).is_empty());
        }
    }

    #[test]
    fn nodes_for_is_sorted_and_deduplicated() {
        let ranges = consistency_ranges(3, 7).unwrap();
        let nodes = nodes_for(&[ranges.clone(), ranges].concat());
        let mut sorted = nodes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(nodes, sorted);
        assert_eq!(nodes.len(), 5); // c, d, g, i, j (l = MTH(4..7) needs i and j)
    }

    // ---- Verifiers. ----

    #[test]
    fn equal_sizes_are_consistent_only_with_an_empty_proof_and_equal_roots() {
        let r = root(5);
        assert_eq!(verify_consistency(5, 5, &r, &r, &[]), Ok(()));
        assert_eq!(
            verify_consistency(5, 5, &r, &root(6), &[]),
            Err(ProofError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(5, 5, &r, &r, &[r]),
            Err(ProofError::WrongProofLength {
                expected: 0,
                got: 1
            })
        );
        assert_eq!(
            verify_consistency(0, 5, &empty_root(), &r, &[]),
            Err(ProofError::BadSizes { old: 0, new: 5 })
        );
        assert_eq!(
            verify_consistency(6, 5, &r, &r, &[]),
            Err(ProofError::BadSizes { old: 6, new: 5 })
        );
    }

    #[test]
    fn sizes_are_bound_by_the_signed_checkpoint_not_by_the_proof() {
        // RFC 9162 proofs carry no sizes: a claim whose size is off by one but whose proof has
        // the same left/right pattern verifies against the same root. Callers must therefore
        // take (size, root) together from a verified checkpoint, never a size from elsewhere.
        assert_eq!(
            verify_inclusion(0, 4, &leaf(0), &inclusion_proof(0, 3), &root(3)),
            Ok(())
        );
        assert_eq!(
            verify_consistency(1, 4, &root(1), &root(3), &consistency_proof(1, 3)),
            Ok(())
        );
    }

    #[test]
    fn a_single_leaf_tree_proves_inclusion_with_an_empty_proof() {
        assert_eq!(verify_inclusion(0, 1, &leaf(0), &[], &root(1)), Ok(()));
        assert_eq!(root(1), leaf(0));
        assert_eq!(
            verify_inclusion(1, 1, &leaf(0), &[], &root(1)),
            Err(ProofError::IndexOutOfRange { index: 1, size: 1 })
        );
    }

    #[test]
    fn every_single_bit_flip_breaks_every_proof_of_small_trees() {
        for size in 1..=24u64 {
            for index in 0..size {
                let (l, p, r) = (leaf(index), inclusion_proof(index, size), root(size));
                assert_eq!(verify_inclusion(index, size, &l, &p, &r), Ok(()));
                for bit in 0..256 {
                    assert!(verify_inclusion(index, size, &flip(&l, bit), &p, &r).is_err());
                    assert!(verify_inclusion(index, size, &l, &p, &flip(&r, bit)).is_err());
                    for i in 0..p.len() {
                        let mut q = p.clone();
                        q[i] = flip(&q[i], bit);
                        assert!(
                            verify_inclusion(index, size, &l, &q, &r).is_err(),
                            "({index}, {size}) p[{i}] bit {bit}"
                        );
                    }
                }
            }
            for old in 1..size {
                let (p, r1, r2) = (consistency_proof(old, size), root(old), root(size));
                assert_eq!(verify_consistency(old, size, &r1, &r2, &p), Ok(()));
                for bit in 0..256 {
                    assert!(verify_consistency(old, size, &flip(&r1, bit), &r2, &p).is_err());
                    assert!(verify_consistency(old, size, &r1, &flip(&r2, bit), &p).is_err());
                    for i in 0..p.len() {
                        let mut q = p.clone();
                        q[i] = flip(&q[i], bit);
                        assert!(
                            verify_consistency(old, size, &r1, &r2, &q).is_err(),
                            "({old}, {size}) p[{i}] bit {bit}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_listed_mutation_breaks_every_proof_of_small_trees() {
        for size in 1..=64u64 {
            for index in 0..size {
                assert_inclusion_probes_fail(
                    index,
                    size,
                    leaf(index),
                    &inclusion_proof(index, size),
                    root(size),
                );
            }
            for old in 1..size {
                assert_consistency_probes_fail(old, size, &consistency_proof(old, size));
            }
        }
    }

    proptest! {
        #[test]
        fn frontier_root_equals_the_recursive_mth_for_random_sizes(n in 0..=N as usize) {
            let leaves = &log().leaves[..n];
            let mut f = Frontier::new();
            for l in leaves {
                f.push(*l);
            }
            prop_assert_eq!(f.root(), mth(leaves));
            prop_assert_eq!(f.root(), root(n as u64));
        }

        #[test]
        fn pushed_nodes_suffice_for_inclusion_proofs_equal_to_the_rfc_path((index, size) in index_and_size()) {
            let lookup = lookup_at(size);
            let ranges = inclusion_ranges(index, size).unwrap();
            for id in nodes_for(&ranges) {
                prop_assert!(lookup(id).is_some(), "node {} missing", id);
            }
            let proof: Result<Vec<Hash>, ProofError> =
                ranges.iter().map(|&(lo, hi)| range_hash(lo, hi, &lookup)).collect();
            prop_assert_eq!(proof, Ok(path(index as usize, &log().leaves[..size as usize])));
        }

        #[test]
        fn pushed_nodes_suffice_for_consistency_proofs_equal_to_the_rfc_proof((old, new) in old_and_new()) {
            let lookup = lookup_at(new);
            let ranges = consistency_ranges(old, new).unwrap();
            for id in nodes_for(&ranges) {
                prop_assert!(lookup(id).is_some(), "node {} missing", id);
            }
            let proof: Result<Vec<Hash>, ProofError> =
                ranges.iter().map(|&(lo, hi)| range_hash(lo, hi, &lookup)).collect();
            prop_assert_eq!(proof, Ok(ref_consistency(old as usize, &log().leaves[..new as usize])));
        }

        #[test]
        fn range_hash_of_any_range_equals_the_recursive_mth(lo in 0..N, len in 1..=64u64) {
            let hi = (lo + len).min(N);
            prop_assume!(lo < hi);
            let got = range_hash(lo, hi, &lookup_at(hi));
            prop_assert_eq!(got, Ok(mth(&log().leaves[lo as usize..hi as usize])));
        }

        #[test]
        fn inclusion_proofs_verify_and_reject_every_mutation((index, size) in index_and_size(), bits in proptest::collection::vec(0..256usize, 2 + 64)) {
            let (l, p, r) = (leaf(index), inclusion_proof(index, size), root(size));
            prop_assert_eq!(verify_inclusion(index, size, &l, &p, &r), Ok(()));
            assert_inclusion_probes_fail(index, size, l, &p, r);
            prop_assert!(verify_inclusion(index, size, &flip(&l, bits[0]), &p, &r).is_err());
            prop_assert!(verify_inclusion(index, size, &l, &p, &flip(&r, bits[1])).is_err());
            for i in 0..p.len() {
                let mut q = p.clone();
                q[i] = flip(&q[i], bits[2 + i]);
                prop_assert!(verify_inclusion(index, size, &l, &q, &r).is_err());
            }
        }

        #[test]
        fn consistency_proofs_verify_and_reject_every_mutation((old, new) in old_and_new(), bits in proptest::collection::vec(0..256usize, 2 + 64)) {
            let (p, r1, r2) = (consistency_proof(old, new), root(old), root(new));
            prop_assert_eq!(verify_consistency(old, new, &r1, &r2, &p), Ok(()));
            if old < new {
                assert_consistency_probes_fail(old, new, &p);
                prop_assert!(verify_consistency(old, new, &flip(&r1, bits[0]), &r2, &p).is_err());
                prop_assert!(verify_consistency(old, new, &r1, &flip(&r2, bits[1]), &p).is_err());
            }
            for i in 0..p.len() {
                let mut q = p.clone();
                q[i] = flip(&q[i], bits[2 + i]);
                prop_assert!(verify_consistency(old, new, &r1, &r2, &q).is_err());
            }
        }
    }
}
