//! Account-trie nodes below the cached top levels, read while transactions wait in the pool.
//!
//! A block's state root reads the nodes on the path to every account the block changed. In a
//! large state the paths go below the levels [`super::top_nodes`] keeps, and each node there is a
//! table read of a few microseconds. When the pool admits a transaction, the paths of its sender
//! and callee are read into this cache ([`super::Store::prefetch_account`]), so that the block's
//! commit finds them in memory. Like the top levels, the cache mirrors the tables at one block:
//! it answers only readers whose snapshot is at that block, and moves forward with the
//! persister, which rewrites the entries its blocks changed. It is bounded: two generations,
//! the older dropped when the newer fills.

use super::{generations::Generations, overlay::TrieEdits, top_nodes::TopNodes};
use crate::trie::Node;
use alloy_trie::Nibbles;
use parking_lot::RwLock;

/// Nodes per generation: at most twice this many are held (a branch takes about 600 bytes).
const GENERATION: usize = 1 << 16;

/// Cached account-trie nodes at paths the top levels do not cover, as the tables hold them
/// after block `at` (`None`: no node at the path).
#[derive(Debug)]
pub(super) struct DeepNodes {
    inner: RwLock<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The tables' head these nodes are from (`None`: empty tables).
    at: Option<u64>,
    nodes: Generations<Nibbles, Option<Node>>,
}

impl Inner {
    fn at(at: Option<u64>) -> Self {
        Self {
            at,
            nodes: Generations::new(GENERATION),
        }
    }
}

impl Default for DeepNodes {
    fn default() -> Self {
        Self {
            inner: RwLock::new(Inner::at(None)),
        }
    }
}

impl DeepNodes {
    /// The cached node at `path`, for a reader whose tables are at block `at`.
    pub(super) fn get(&self, at: Option<u64>, path: &Nibbles) -> Option<Option<Node>> {
        let inner = self.inner.read();
        if inner.at != at {
            return None;
        }
        inner.nodes.get(path).cloned()
    }

    /// Remembers the node a reader whose tables are at block `at` read at `path`.
    pub(super) fn fill(&self, at: Option<u64>, path: &Nibbles, node: Option<&Node>) {
        let mut inner = self.inner.write();
        if inner.at != at {
            return;
        }
        inner.nodes.insert(*path, node.cloned());
    }

    /// Moves the cache to the tables' new head `at`, reached from its current one by applying
    /// `edits` in order: each cached node they rewrote or removed takes its new value. (If the
    /// cache was at another block, it starts over empty.)
    pub(super) fn advance<'a>(
        &self,
        from: Option<u64>,
        at: u64,
        edits: impl IntoIterator<Item = &'a TrieEdits>,
    ) {
        let mut inner = self.inner.write();
        if inner.at != from {
            inner.nodes.clear();
        } else {
            for edits in edits {
                for (path, rlp) in edits.accounts.iter().filter(|(p, _)| !TopNodes::covers(p)) {
                    if inner.nodes.get(path).is_none() {
                        continue;
                    }
                    match rlp.as_deref().map(Node::decode).transpose() {
                        Ok(node) => inner.nodes.replace_held(path, node),
                        // Not expected of nodes this node encoded: left to the tables.
                        Err(_) => inner.nodes.remove(path),
                    }
                }
            }
        }
        inner.at = Some(at);
    }

    /// Starts over, empty, at the tables' head `at`.
    pub(super) fn reset(&self, at: Option<u64>) {
        *self.inner.write() = Inner::at(at);
    }

    /// Nodes held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.inner.read().nodes.len()
    }

    /// The nodes held, for a reader whose tables are at block `at` (none for another block).
    #[cfg(test)]
    pub(super) fn entries(&self, at: Option<u64>) -> Vec<(Nibbles, Option<Node>)> {
        let inner = self.inner.read();
        if inner.at != at {
            return Vec::new();
        }
        let entries = inner.nodes.iter();
        entries.map(|(path, node)| (*path, node.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trie::with_nibble;

    fn deep_path(i: u64) -> Nibbles {
        Nibbles::unpack(alloy::primitives::keccak256(i.to_be_bytes()))
    }

    fn leaf(value: u8) -> Vec<u8> {
        let key = Nibbles::from_nibbles([1, 2]);
        let mut rlp = Vec::new();
        alloy_trie::nodes::LeafNodeRef::new(&key, &[value]).rlp(&mut rlp);
        rlp
    }

    #[test]
    fn advance_rewrites_cached_nodes_and_ignores_the_rest() {
        let deep = DeepNodes::default();
        deep.reset(Some(3));
        let (a, b, c) = (deep_path(1), deep_path(2), deep_path(3));
        let old = Node::decode(&leaf(1)).unwrap();
        deep.fill(Some(3), &a, Some(&old));
        deep.fill(Some(3), &b, None);
        // A reader at another block neither fills nor reads it.
        deep.fill(Some(2), &c, Some(&old));
        assert!(deep.get(Some(2), &a).is_none());
        assert!(deep.get(Some(3), &c).is_none());

        let mut edits = TrieEdits::default();
        edits.accounts.insert(a, None);
        edits.accounts.insert(b, Some(leaf(7)));
        edits.accounts.insert(c, Some(leaf(8)));
        edits
            .accounts
            .insert(with_nibble(&Nibbles::default(), 4), Some(leaf(9)));
        deep.advance(Some(3), 4, [&edits]);
        assert!(deep.get(Some(3), &a).is_none(), "the cache moved on");
        assert!(matches!(deep.get(Some(4), &a), Some(None)), "removed");
        let rewritten = deep.get(Some(4), &b).flatten().expect("rewritten");
        assert_eq!(rewritten.rlp(), leaf(7));
        assert!(
            deep.get(Some(4), &c).is_none(),
            "not cached before: not added"
        );
        assert_eq!(deep.len(), 2, "top-level paths are not its to hold");

        // Blocks it did not see empty it.
        deep.advance(Some(9), 10, []);
        assert_eq!(deep.len(), 0);
    }

    #[test]
    fn generations_bound_the_nodes() {
        let deep = DeepNodes::default();
        deep.reset(None);
        for i in 0..GENERATION as u64 * 2 + 10 {
            deep.fill(None, &deep_path(i), None);
        }
        assert!(deep.len() <= 2 * GENERATION);
        let newest = deep_path(GENERATION as u64 * 2 + 9);
        assert!(deep.get(None, &newest).is_some());
        assert!(
            deep.get(None, &deep_path(0)).is_none(),
            "dropped with its generation"
        );
    }
}
