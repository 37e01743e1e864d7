//! The top levels of the account trie, kept in memory.
//!
//! Nearly every block rewrites the account trie's upper nodes, and every changed account's path
//! runs through them. Keeping the nodes of paths up to [`TOP_DEPTH`] nibbles in memory (at most
//! 69,905 of them, whatever the size of the state) spares each block thousands of table reads.
//! The cache mirrors the tables at one block: it answers only readers whose snapshot is at that
//! block, is filled by them on a miss, and moves forward when the persister writes blocks.

use super::overlay::TrieEdits;
use crate::trie::Node;
use alloy_trie::Nibbles;
use parking_lot::RwLock;

/// Account-trie paths of up to this many nibbles are cached.
pub(super) const TOP_DEPTH: usize = 4;

/// Paths of up to [`TOP_DEPTH`] nibbles: 1 + 16 + ... + 16^TOP_DEPTH.
const SLOTS: usize = (16usize.pow(TOP_DEPTH as u32 + 1) - 1) / 15;

/// Cached account-trie nodes, decoded, as the tables hold them after block `at`. Branches share
/// their references with the updates that read them: a read copies no node.
#[derive(Debug)]
pub(super) struct TopNodes {
    inner: RwLock<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The tables' head these nodes are from (`None`: empty tables).
    at: Option<u64>,
    /// By [`slot`]: `None` not cached, `Some(None)` no node at the path.
    nodes: Vec<Option<Option<Node>>>,
}

impl Default for TopNodes {
    fn default() -> Self {
        Self {
            inner: RwLock::new(Inner {
                at: None,
                nodes: std::iter::repeat_with(|| None).take(SLOTS).collect(),
            }),
        }
    }
}

/// The index of a cached `path`: the paths of each length in turn, each length's in order.
fn slot(path: &Nibbles) -> usize {
    let shorter = (16usize.pow(path.len() as u32) - 1) / 15;
    shorter + path.iter().fold(0, |index, n| index * 16 + usize::from(n))
}

impl TopNodes {
    /// Whether `path` is in the cached levels.
    pub(super) fn covers(path: &Nibbles) -> bool {
        path.len() <= TOP_DEPTH
    }

    /// The cached node at `path` (one the levels cover), for a reader whose tables are at block
    /// `at`.
    pub(super) fn get(&self, at: Option<u64>, path: &Nibbles) -> Option<Option<Node>> {
        let inner = self.inner.read();
        if inner.at != at {
            return None;
        }
        inner.nodes[slot(path)].clone()
    }

    /// Remembers the node a reader whose tables are at block `at` read at `path` (one the levels
    /// cover).
    pub(super) fn fill(&self, at: Option<u64>, path: &Nibbles, node: Option<&Node>) {
        let mut inner = self.inner.write();
        if inner.at == at {
            inner.nodes[slot(path)] = Some(node.cloned());
        }
    }

    /// Moves the cache to the tables' new head `at`, reached from its current one by applying
    /// `edits` in order. (If the cache was at another block, it starts over empty.)
    pub(super) fn advance<'a>(
        &self,
        from: Option<u64>,
        at: u64,
        edits: impl IntoIterator<Item = &'a TrieEdits>,
    ) {
        let mut inner = self.inner.write();
        if inner.at != from {
            inner.nodes.fill(None);
        } else {
            for edits in edits {
                for (path, node) in edits.accounts.iter().filter(|(p, _)| Self::covers(p)) {
                    // A node that does not decode (not expected of nodes this node encoded) is
                    // left to the tables.
                    inner.nodes[slot(path)] = node.as_deref().map(Node::decode).transpose().ok();
                }
            }
        }
        inner.at = Some(at);
    }

    /// Starts over, empty, at the tables' head `at`.
    pub(super) fn reset(&self, at: Option<u64>) {
        let mut inner = self.inner.write();
        inner.nodes.fill(None);
        inner.at = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cached_path_has_a_slot_of_its_own() {
        let mut seen = vec![false; SLOTS];
        let mut paths = vec![Nibbles::default()];
        while let Some(path) = paths.pop() {
            let index = slot(&path);
            assert!(
                !std::mem::replace(&mut seen[index], true),
                "{path:?} shares slot {index}"
            );
            if path.len() < TOP_DEPTH {
                paths.extend((0..16u8).map(|n| crate::trie::with_nibble(&path, n)));
            }
        }
        assert!(seen.iter().all(|s| *s));
    }
}
