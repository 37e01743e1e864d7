//! The top levels of the account trie, kept in memory.
//!
//! Nearly every block rewrites the account trie's upper nodes, and every changed account's path
//! runs through them. Keeping the nodes of paths up to [`TOP_DEPTH`] nibbles in memory (at most
//! 69,905 of them, whatever the size of the state) spares each block thousands of table reads.
//! The cache mirrors the tables at one block: it answers only readers whose snapshot is at that
//! block, is filled by them on a miss, and moves forward when the persister writes blocks.

use super::overlay::TrieEdits;
use crate::trie::Node;
use alloy::primitives::map::HashMap;
use alloy_trie::Nibbles;
use parking_lot::RwLock;

/// Account-trie paths of up to this many nibbles are cached.
pub(super) const TOP_DEPTH: usize = 4;

/// Cached account-trie nodes, decoded (`None`: no node at the path), as the tables hold them
/// after block `at`.
#[derive(Debug, Default)]
pub(super) struct TopNodes {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The tables' head these nodes are from (`None`: empty tables).
    at: Option<u64>,
    nodes: HashMap<Nibbles, Option<Node>>,
}

impl TopNodes {
    /// Whether `path` is in the cached levels.
    pub(super) fn covers(path: &Nibbles) -> bool {
        path.len() <= TOP_DEPTH
    }

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
        if inner.at == at {
            inner.nodes.insert(*path, node.cloned());
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
            inner.nodes.clear();
        } else {
            for edits in edits {
                for (path, node) in edits.accounts.iter().filter(|(p, _)| Self::covers(p)) {
                    match node.as_deref().map(Node::decode).transpose() {
                        Ok(node) => inner.nodes.insert(*path, node),
                        // Not expected of nodes this node encoded; the tables still answer.
                        Err(_) => inner.nodes.remove(path),
                    };
                }
            }
        }
        inner.at = Some(at);
    }

    /// Starts over, empty, at the tables' head `at`.
    pub(super) fn reset(&self, at: Option<u64>) {
        let mut inner = self.inner.write();
        inner.nodes.clear();
        inner.at = at;
    }
}
