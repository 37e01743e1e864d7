//! Merkle-Patricia tries stored node by node in MDBX.
//!
//! Every node of the account trie and of each storage trie is stored under its nibble path (the
//! storage tries prefixed by the hashed address), as its RLP encoding. A block's changes are
//! applied in one pass over the changed keys in key order, which reads, rebuilds, hashes and
//! writes each node on their paths once. Untouched subtrees are never read: the work per block
//! grows with the keys the block changed, not with the state.
//! Proofs (EIP-1186) are the stored nodes on the path to a key.

use crate::storage::{StoreError, StoredAccount};
use alloy::{
    genesis::GenesisAccount,
    primitives::{Address, B256, Bytes, U256, keccak256, map::HashMap},
    rlp::{Decodable, EMPTY_STRING_CODE, Encodable, Header},
};
use alloy_trie::{
    EMPTY_ROOT_HASH, Nibbles, TrieAccount,
    nodes::{ExtensionNodeRef, LeafNodeRef, RlpNode, TrieNode},
};
use revm::{
    bytecode::Bytecode,
    database::states::{PlainStorageChangeset, StateChangeset},
    primitives::KECCAK_EMPTY,
    state::AccountInfo,
};
use std::{
    borrow::Cow,
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};
use tracing::trace;

/// Reads committed trie nodes (RLP) by path.
pub(crate) trait NodeSource {
    /// The RLP of the node at `path`, if any.
    fn node_rlp(&self, path: &Nibbles) -> Result<Option<Vec<u8>>, StoreError>;

    /// The node at `path`, decoded. (Sources holding decoded nodes answer without decoding.)
    fn node(&self, path: &Nibbles) -> Result<Option<Node>, StoreError> {
        self.node_rlp(path)?
            .map(|rlp| Node::decode(&rlp))
            .transpose()
    }

    /// Whether reading the node at `path` goes to the tables rather than to nodes held in
    /// memory: only then does checking a known leaf by its hash beat reading it.
    fn reads_tables(&self, _path: &Nibbles) -> bool {
        true
    }
}

/// Writes committed trie nodes.
pub(crate) trait NodeSink {
    /// Stores (`Some`) or removes (`None`) the node at `path`.
    fn write(&mut self, path: &Nibbles, rlp: Option<&[u8]>) -> Result<(), StoreError>;
}

impl<W: NodeSink + ?Sized> NodeSink for &mut W {
    fn write(&mut self, path: &Nibbles, rlp: Option<&[u8]>) -> Result<(), StoreError> {
        (**self).write(path, rlp)
    }
}

/// The storage key of a node: the trie's prefix, then one byte per nibble.
pub(crate) fn node_key(prefix: &[u8], path: &Nibbles) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + path.len());
    key.extend_from_slice(prefix);
    key.extend(path.iter());
    key
}

/// The references a branch node holds, by nibble.
pub(crate) type BranchRefs = [Option<RlpNode>; 16];

/// A stored branch node's children's references. They are shared with the caches that hold
/// the node, so that reading a branch does not copy them.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    refs: Arc<BranchRefs>,
}

impl Branch {
    /// Whether there is a child at nibble `n`.
    pub(crate) fn has_child(&self, n: u8) -> bool {
        self.refs[n as usize].is_some()
    }

    /// The nibbles that have a child, in order.
    pub(crate) fn children(&self) -> impl Iterator<Item = u8> + '_ {
        (0..16u8).filter(|n| self.has_child(*n))
    }

    /// The reference to child `n`, if there is one.
    pub(crate) fn child_ref(&self, n: u8) -> Option<&RlpNode> {
        self.refs[n as usize].as_ref()
    }
}

/// A decoded stored node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A branch.
    Branch(Branch),
    /// An extension: the shared key part and the reference to the branch below.
    Extension {
        /// Shared nibbles.
        key: Nibbles,
        /// Reference to the child branch.
        child: RlpNode,
    },
    /// A leaf: the rest of the key and the value's RLP.
    Leaf {
        /// Remaining nibbles of the key.
        key: Nibbles,
        /// RLP of the value.
        value: Vec<u8>,
    },
}

impl Node {
    /// Decodes a stored node.
    pub(crate) fn decode(rlp: &[u8]) -> Result<Self, StoreError> {
        // Branches, most of what is read, are decoded straight into their children.
        if let Some(refs) = decode_branch(rlp) {
            return Ok(Node::Branch(Branch {
                refs: Arc::new(refs),
            }));
        }
        let node = TrieNode::decode(&mut &rlp[..]).map_err(|e| StoreError::Corrupt {
            table: "trie",
            detail: e.to_string(),
        })?;
        match node {
            TrieNode::Extension(e) => Ok(Node::Extension {
                key: e.key,
                child: e.child,
            }),
            TrieNode::Leaf(l) => Ok(Node::Leaf {
                key: l.key,
                value: l.value,
            }),
            // A well-formed branch was decoded above.
            TrieNode::Branch(_) | TrieNode::EmptyRoot => Err(StoreError::Corrupt {
                table: "trie",
                detail: "stored node is neither a branch, an extension nor a leaf".into(),
            }),
        }
    }

    /// Writes the node's RLP to `buf` (cleared first); returns the reference its parent holds.
    fn encode(&self, buf: &mut Vec<u8>) -> RlpNode {
        buf.clear();
        match self {
            Node::Branch(branch) => encode_branch(|n| branch.refs[n].as_deref(), buf),
            Node::Extension { key, child } => ExtensionNodeRef::new(key, child).rlp(buf),
            Node::Leaf { key, value } => LeafNodeRef::new(key, value).rlp(buf),
        }
    }

    /// The node's RLP.
    pub(crate) fn rlp(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        buf
    }
}

/// Appends the RLP of a branch whose child `n` has reference `child(n)` to `buf`, as
/// alloy-trie's `BranchNodeRef` encodes it, without gathering the children; returns the
/// reference its parent holds.
fn encode_branch<'r>(child: impl Fn(usize) -> Option<&'r [u8]>, buf: &mut Vec<u8>) -> RlpNode {
    let start = buf.len();
    let payload_length = (0..16)
        .map(|n| child(n).map_or(1, <[u8]>::len))
        .sum::<usize>()
        + 1;
    Header {
        list: true,
        payload_length,
    }
    .encode(buf);
    for n in 0..16 {
        match child(n) {
            Some(child) => buf.extend_from_slice(child),
            None => buf.push(EMPTY_STRING_CODE),
        }
    }
    buf.push(EMPTY_STRING_CODE);
    RlpNode::from_rlp(&buf[start..])
}

/// The children of a stored branch node (a list of 16 references and an empty value), or `None`
/// if `rlp` is not one.
fn decode_branch(rlp: &[u8]) -> Option<BranchRefs> {
    let mut rest = rlp;
    let list = Header::decode(&mut rest).ok()?;
    if !list.list || rest.len() != list.payload_length {
        return None;
    }
    let mut children = BranchRefs::default();
    for child in children.iter_mut() {
        let item_start = rest;
        let item = Header::decode(&mut rest).ok()?;
        rest = rest.get(item.payload_length..)?;
        let item = &item_start[..item_start.len() - rest.len()];
        if item != [EMPTY_STRING_CODE] {
            *child = Some(RlpNode::from_raw(item)?);
        }
    }
    (rest == [EMPTY_STRING_CODE]).then_some(children)
}

/// Whether `child` references the leaf of `key` (the rest of a key) with value `value`; `buf`
/// is scratch space.
fn is_leaf_ref(child: &RlpNode, key: &Nibbles, value: &[u8], buf: &mut Vec<u8>) -> bool {
    buf.clear();
    LeafNodeRef::new(key, value).rlp(buf) == *child
}

/// `items`, sorted by key and sharing the key's first `depth` nibbles, split by the nibble at
/// `depth`: each nibble that has items, with them.
fn by_nibble<T>(
    items: &[T],
    depth: usize,
    key: impl Fn(&T) -> &Nibbles,
) -> impl Iterator<Item = (u8, &[T])> {
    let mut rest = items;
    std::iter::from_fn(move || {
        let n = key(rest.first()?).get_unchecked(depth);
        let end = rest.partition_point(|item| key(item).get_unchecked(depth) == n);
        let (these, after) = rest.split_at(end);
        rest = after;
        Some((n, these))
    })
}

/// `path` followed by `nibble`.
pub(crate) fn with_nibble(path: &Nibbles, nibble: u8) -> Nibbles {
    let mut p = *path;
    p.push(nibble);
    p
}

/// Nodes an account-trie update writes per changed key, about (the path below the levels shared
/// with other keys, and the leaf).
const NODES_PER_KEY: usize = 4;

/// A change to one key of a trie.
#[derive(Debug, Clone)]
pub(crate) struct KeyChange {
    /// The hashed key, 64 nibbles.
    pub(crate) key: Nibbles,
    /// The new leaf value (RLP); `None` deletes the key.
    pub(crate) value: Option<Vec<u8>>,
    /// The key's leaf value before the change, if known. It only saves reads: a leaf is taken
    /// for the key's own only when its reference is the hash of the leaf `prior` makes, so a
    /// wrong `prior` costs a read, never a wrong root.
    pub(crate) prior: Option<Vec<u8>>,
}

/// A child of a branch before an update.
#[derive(Debug, Clone, Copy)]
enum Before<'a> {
    /// No child.
    Absent,
    /// The node stored at the child's path, with this reference.
    Stored(&'a RlpNode),
    /// An extension not stored at the child's path, with this key and child reference: the
    /// rest of an extension split above it.
    Remainder(Nibbles, &'a RlpNode),
}

impl<'a> Before<'a> {
    /// Child `n` of `branch`.
    fn child(branch: &'a Branch, n: u8) -> Self {
        branch.child_ref(n).map_or(Before::Absent, Before::Stored)
    }
}

/// A subtree after an update, as its parent takes it. A branch is written at the subtree's
/// path already; a leaf or an extension is not, since a parent left with one child absorbs it
/// into a node of its own.
#[derive(Debug)]
enum Updated<'c> {
    /// Nothing is left.
    Gone,
    /// A leaf with the rest of the key (from the subtree's path) and the value's RLP.
    Leaf { key: Nibbles, value: Cow<'c, [u8]> },
    /// An extension with these nibbles, to the branch with this reference.
    Extension { key: Nibbles, child: RlpNode },
    /// A branch, written, with this reference.
    Branch(RlpNode),
}

/// One pass over a trie's changed keys, in key order: each node on their paths is read once
/// (from `source`), rebuilt from its updated children, hashed and written to `sink`; removed
/// nodes are written as removals. Nothing is held but the path being worked on.
struct Updater<S, W> {
    source: S,
    sink: W,
    /// Scratch space for encoding.
    buf: Vec<u8>,
}

impl<S: NodeSource, W: NodeSink> Updater<S, W> {
    fn new(source: S, sink: W) -> Self {
        Self {
            source,
            sink,
            buf: Vec::with_capacity(600),
        }
    }

    /// The subtree at `path`, whose node was `before`, with `changes` applied: sorted by key,
    /// keys unique and below `path`, at least one. Nodes below `path` are written or removed;
    /// the one at `path` only if the result is a branch (see [`Updated`]).
    fn update<'c>(
        &mut self,
        path: Nibbles,
        before: Option<Node>,
        changes: &[&'c KeyChange],
    ) -> Result<Updated<'c>, StoreError> {
        match before {
            None => self.build(
                path,
                changes
                    .iter()
                    .filter_map(|change| {
                        Some((change.key, Cow::Borrowed(&change.value.as_ref()?[..])))
                    })
                    .collect(),
            ),
            Some(Node::Leaf { key, value }) => {
                // The old leaf joins the new ones, unless a change to its key replaces it.
                let mut old = Some((path.join(&key), Cow::Owned(value)));
                let mut leaves = Vec::with_capacity(changes.len() + 1);
                for change in changes {
                    if let Some((key, _)) = &old
                        && *key <= change.key
                        && let Some((key, value)) = old.take()
                        && key != change.key
                    {
                        leaves.push((key, value));
                    }
                    if let Some(value) = &change.value {
                        leaves.push((change.key, Cow::Borrowed(&value[..])));
                    }
                }
                leaves.extend(old);
                self.build(path, leaves)
            }
            Some(Node::Extension { key, child }) => {
                self.update_extension(path, key, &child, changes)
            }
            Some(Node::Branch(branch)) => {
                self.update_branch(path, |n| Before::child(&branch, n), changes)
            }
        }
    }

    /// A subtree holding exactly `leaves` (full keys, sorted), built from nothing.
    fn build<'c>(
        &mut self,
        path: Nibbles,
        leaves: Vec<(Nibbles, Cow<'c, [u8]>)>,
    ) -> Result<Updated<'c>, StoreError> {
        let depth = path.len();
        let (first, last) = match &leaves[..] {
            [] => return Ok(Updated::Gone),
            [_] => {
                let (key, value) = leaves.into_iter().next().expect("one leaf");
                return Ok(Updated::Leaf {
                    key: key.slice(depth..),
                    value,
                });
            }
            [first, .., last] => (first.0.slice(depth..), last.0.slice(depth..)),
        };
        let common = first.common_prefix_length(&last);
        let shared = first.slice(..common);
        let branch = build_branch(
            path.join(&shared),
            &leaves,
            depth + common,
            &mut self.sink,
            &mut self.buf,
        )?;
        Ok(match common {
            0 => Updated::Branch(branch),
            _ => Updated::Extension {
                key: shared,
                child: branch,
            },
        })
    }

    /// [`Self::update`] for an extension with `key` and reference `child` at `path`.
    fn update_extension<'c>(
        &mut self,
        path: Nibbles,
        key: Nibbles,
        child: &RlpNode,
        changes: &[&'c KeyChange],
    ) -> Result<Updated<'c>, StoreError> {
        let child_path = path.join(&key);
        let below = |change: &&KeyChange| change.key.starts_with(&child_path);
        // Every key below `path` is below the extension: deleting another changes nothing.
        let changes: Cow<'_, [&KeyChange]> = match changes.iter().all(below) {
            true => Cow::Borrowed(changes),
            false => changes
                .iter()
                .filter(|change| change.value.is_some() || below(change))
                .copied()
                .collect(),
        };
        if changes.is_empty() {
            return Ok(Updated::Extension {
                key,
                child: child.clone(),
            });
        }
        if changes.iter().all(below) {
            let before = self.stored(&child_path)?;
            let merged = match self.update(child_path, Some(before), &changes)? {
                Updated::Branch(child) => return Ok(Updated::Extension { key, child }),
                merged => merged,
            };
            // The branch below is gone or collapsed into this node.
            self.sink.write(&child_path, None)?;
            return Ok(prefixed(&key, merged));
        }
        // A new key leaves the extension part way: a branch where it does, with the rest of
        // the extension on one side.
        let depth = path.len();
        let common = changes
            .iter()
            .map(|change| change.key.slice(depth..).common_prefix_length(&key))
            .min()
            .unwrap_or(0);
        let split = key.get_unchecked(common);
        let rest = key.slice(common + 1..);
        let branch_path = path.join(&key.slice(..common));
        let branch = self.update_branch(
            branch_path,
            |n| match n == split {
                false => Before::Absent,
                true if rest.is_empty() => Before::Stored(child),
                true => Before::Remainder(rest, child),
            },
            &changes,
        )?;
        // Nothing was stored between `path` and the branch: the extension spanned it.
        Ok(prefixed(&key.slice(..common), branch))
    }

    /// [`Self::update`] for a branch at `path` whose child `n` was `before(n)`.
    fn update_branch<'b, 'c>(
        &mut self,
        path: Nibbles,
        before: impl Fn(u8) -> Before<'b>,
        changes: &[&'c KeyChange],
    ) -> Result<Updated<'c>, StoreError> {
        let mut updated: [Option<Updated<'c>>; 16] = Default::default();
        for (n, changes) in by_nibble(changes, path.len(), |change| &change.key) {
            updated[n as usize] =
                Some(self.update_child(with_nibble(&path, n), before(n), changes)?);
        }
        self.finish_branch(path, before, updated)
    }

    /// The child at `path`, which was `before`, with `changes` applied (see [`Self::update`]).
    /// A single change whose prior leaf is the stored child replaces it without reading it.
    fn update_child<'c>(
        &mut self,
        path: Nibbles,
        before: Before<'_>,
        changes: &[&'c KeyChange],
    ) -> Result<Updated<'c>, StoreError> {
        let node = match before {
            Before::Absent => None,
            Before::Remainder(key, child) => Some(Node::Extension {
                key,
                child: child.clone(),
            }),
            Before::Stored(reference) => {
                if let [change] = changes
                    && let Some(prior) = &change.prior
                    && self.source.reads_tables(&path)
                {
                    let key = change.key.slice(path.len()..);
                    if is_leaf_ref(reference, &key, prior, &mut self.buf) {
                        return Ok(match &change.value {
                            Some(value) => Updated::Leaf {
                                key,
                                value: Cow::Borrowed(value),
                            },
                            None => Updated::Gone,
                        });
                    }
                }
                Some(self.stored(&path)?)
            }
        };
        self.update(path, node, changes)
    }

    /// The branch at `path` whose children were `before` and are now `updated` (`None`: as
    /// before): written if two or more children are left, else the node its one child
    /// collapses into.
    fn finish_branch<'b, 'c>(
        &mut self,
        path: Nibbles,
        before: impl Fn(u8) -> Before<'b>,
        mut updated: [Option<Updated<'c>>; 16],
    ) -> Result<Updated<'c>, StoreError> {
        let mut present = 0u16;
        for n in 0..16u8 {
            let child_path = with_nibble(&path, n);
            match (&updated[n as usize], before(n)) {
                (Some(Updated::Gone), Before::Stored(_)) => self.sink.write(&child_path, None)?,
                (Some(Updated::Gone), _) | (None, Before::Absent) => {}
                _ => present |= 1 << n,
            }
        }
        if present.count_ones() < 2 {
            let Some(only) = (0..16u8).find(|n| present & 1 << n != 0) else {
                return Ok(Updated::Gone);
            };
            return self.absorb(path, only, before(only), updated[only as usize].take());
        }
        let mut refs = BranchRefs::default();
        let mut own = 0u16;
        for n in 0..16u8 {
            let child = match (updated[n as usize].take(), before(n)) {
                (Some(child), _) => child,
                (None, Before::Remainder(key, child)) => Updated::Extension {
                    key,
                    child: child.clone(),
                },
                (None, _) => continue,
            };
            refs[n as usize] = self.place(with_nibble(&path, n), child)?;
            own |= 1 << n;
        }
        self.buf.clear();
        let reference = encode_branch(
            |n| match own & 1 << n {
                0 => match before(n as u8) {
                    Before::Stored(reference) => Some(&reference[..]),
                    _ => None,
                },
                _ => refs[n].as_deref(),
            },
            &mut self.buf,
        );
        self.sink.write(&path, Some(&self.buf))?;
        Ok(Updated::Branch(reference))
    }

    /// What a branch at `path` left with its child `n` alone (which was `before`, and is
    /// `updated` unless as before) collapses into.
    fn absorb<'c>(
        &mut self,
        path: Nibbles,
        n: u8,
        before: Before<'_>,
        updated: Option<Updated<'c>>,
    ) -> Result<Updated<'c>, StoreError> {
        let child_path = with_nibble(&path, n);
        let child = match (updated, before) {
            (Some(child), _) => child,
            (None, Before::Remainder(key, child)) => Updated::Extension {
                key,
                child: child.clone(),
            },
            (None, Before::Stored(reference)) => match self.stored(&child_path)? {
                Node::Branch(_) => Updated::Branch(reference.clone()),
                Node::Extension { key, child } => Updated::Extension { key, child },
                Node::Leaf { key, value } => Updated::Leaf {
                    key,
                    value: Cow::Owned(value),
                },
            },
            (None, Before::Absent) => Updated::Gone,
        };
        let nibble = Nibbles::from_nibbles([n]);
        if let Updated::Branch(child) = child {
            // The branch keeps its path, below an extension of one nibble.
            return Ok(Updated::Extension { key: nibble, child });
        }
        if let Before::Stored(_) = before {
            self.sink.write(&child_path, None)?;
        }
        Ok(prefixed(&nibble, child))
    }

    /// Writes `node` at `path` (a branch is written already); returns its reference, `None`
    /// if nothing is left.
    fn place(&mut self, path: Nibbles, node: Updated<'_>) -> Result<Option<RlpNode>, StoreError> {
        self.buf.clear();
        let reference = match node {
            Updated::Gone => return Ok(None),
            Updated::Branch(reference) => return Ok(Some(reference)),
            Updated::Leaf { key, value } => LeafNodeRef::new(&key, &value).rlp(&mut self.buf),
            Updated::Extension { key, child } => {
                ExtensionNodeRef::new(&key, &child).rlp(&mut self.buf)
            }
        };
        self.sink.write(&path, Some(&self.buf))?;
        Ok(Some(reference))
    }

    /// Writes `root`, the whole trie after an update (`stored`: there was a root node before);
    /// returns the trie's root hash.
    fn finish_root(&mut self, stored: bool, root: Updated<'_>) -> Result<B256, StoreError> {
        let path = Nibbles::default();
        match self.place(path, root)? {
            // The root is hashed even when its encoding is short enough to be inlined.
            Some(root) => Ok(root.as_hash().unwrap_or_else(|| keccak256(&root[..]))),
            None => {
                if stored {
                    self.sink.write(&path, None)?;
                }
                Ok(EMPTY_ROOT_HASH)
            }
        }
    }

    /// The stored node at `path`, which its parent references.
    fn stored(&self, path: &Nibbles) -> Result<Node, StoreError> {
        self.source.node(path)?.ok_or_else(|| StoreError::Corrupt {
            table: "trie",
            detail: format!("referenced node {path:?} missing"),
        })
    }
}

/// `node`, the subtree below `prefix`, as the node at the path `prefix` leads from.
fn prefixed<'c>(prefix: &Nibbles, node: Updated<'c>) -> Updated<'c> {
    match node {
        _ if prefix.is_empty() => node,
        Updated::Gone => Updated::Gone,
        Updated::Leaf { key, value } => Updated::Leaf {
            key: prefix.join(&key),
            value,
        },
        Updated::Extension { key, child } => Updated::Extension {
            key: prefix.join(&key),
            child,
        },
        Updated::Branch(child) => Updated::Extension {
            key: *prefix,
            child,
        },
    }
}

/// `changes` sorted by key, the last change to a key standing for all of them.
fn in_key_order(changes: &[KeyChange]) -> Vec<&KeyChange> {
    let mut sorted: Vec<&KeyChange> = changes.iter().collect();
    sorted.sort_by_key(|change| change.key);
    sorted.dedup_by(|later, earlier| {
        let same = later.key == earlier.key;
        if same {
            *earlier = *later;
        }
        same
    });
    sorted
}

/// Applies `changes` to the trie behind `source`, writing the nodes that change (and removals)
/// to `sink`; returns the new root hash. Only the nodes on the changed keys' paths are read.
pub(crate) fn update_trie(
    source: impl NodeSource,
    changes: &[KeyChange],
    sink: &mut impl NodeSink,
) -> Result<B256, StoreError> {
    let changes = in_key_order(changes);
    let mut updater = Updater::new(source, sink);
    let before = updater.source.node(&Nibbles::default())?;
    if changes.is_empty() {
        return Ok(before.map_or(EMPTY_ROOT_HASH, |root| keccak256(root.rlp())));
    }
    let stored = before.is_some();
    let root = updater.update(Nibbles::default(), before, &changes)?;
    updater.finish_root(stored, root)
}

/// [`update_trie`] with the subtrees below the root's children updated on one thread per
/// `workers` source (each a view of the same trie as `source`); returns the root hash and the
/// nodes written.
pub(crate) fn update_trie_in_parallel<S: NodeSource + Send>(
    source: impl NodeSource,
    workers: Vec<S>,
    changes: &[KeyChange],
) -> Result<(B256, CollectedNodes), StoreError> {
    let root_path = Nibbles::default();
    let mut written = CollectedNodes::default();
    let Some(Node::Branch(root)) = source.node(&root_path)? else {
        return Ok((update_trie(source, changes, &mut written)?, written));
    };
    let changes = in_key_order(changes);
    let mut below: [&[&KeyChange]; 16] = Default::default();
    for (n, changes) in by_nibble(&changes, 0, |change| &change.key) {
        below[n as usize] = changes;
    }
    // Largest subtrees first, each to the next worker free: a worker slowed down (by the
    // machine, or by subtrees that cost more per key) takes fewer.
    let mut order: Vec<u8> = (0..16).filter(|n| !below[*n as usize].is_empty()).collect();
    order.sort_by_key(|n| std::cmp::Reverse(below[*n as usize].len()));
    let next = AtomicUsize::new(0);
    type Subtrees<'c> = (Vec<(u8, Updated<'c>)>, CollectedNodes);
    let root = &root;
    let run = |source: S| -> Result<Subtrees<'_>, StoreError> {
        let started = std::time::Instant::now();
        // Room for every key's nodes: the worker may end up with most of them.
        let nodes = changes.len() * NODES_PER_KEY;
        let sink = CollectedNodes(HashMap::with_capacity_and_hasher(nodes, Default::default()));
        let mut updater = Updater::new(source, sink);
        let mut subtrees = Vec::with_capacity(order.len());
        let mut keys = 0;
        while let Some(&n) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let changes = below[n as usize];
            keys += changes.len();
            let path = Nibbles::from_nibbles([n]);
            subtrees.push((
                n,
                updater.update_child(path, Before::child(root, n), changes)?,
            ));
        }
        trace!(
            target: "state_root",
            keys,
            nodes = updater.sink.0.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "subtrees updated"
        );
        Ok((subtrees, updater.sink))
    };
    let results: Vec<Result<Subtrees<'_>, StoreError>> = std::thread::scope(|scope| {
        let run = &run;
        let handles: Vec<_> = workers
            .into_iter()
            .map(|source| scope.spawn(move || run(source)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("trie worker panicked"))
            .collect()
    });
    let mut results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    // The other workers' nodes join the largest set.
    results.sort_by_key(|(_, sink)| std::cmp::Reverse(sink.0.len()));
    let mut updated: [Option<Updated<'_>>; 16] = Default::default();
    for (subtrees, sink) in results {
        for (n, subtree) in subtrees {
            updated[n as usize] = Some(subtree);
        }
        if written.0.is_empty() {
            written = sink;
        } else {
            written.0.extend(sink.0);
        }
    }
    let mut updater = Updater::new(source, &mut written);
    let new_root = updater.finish_branch(root_path, |n| Before::child(root, n), updated)?;
    let hash = updater.finish_root(true, new_root)?;
    Ok((hash, written))
}

/// Visits the nodes from `from` nibbles of `key` (64 nibbles) towards it that updating `key`
/// reads: all but a leaf made by `prior` (the key's value before), which the update replaces
/// unread. `node` gives the node at each path (`None`: none there). The levels above `from` are
/// skipped: a node at a prefix of `key` is on its path, and if there is none at `from` (the path
/// ends above, or an extension spans it), the update reads what it needs itself.
pub(crate) fn walk_path(
    key: &Nibbles,
    from: usize,
    prior: Option<&[u8]>,
    mut node: impl FnMut(&Nibbles) -> Result<Option<Node>, StoreError>,
) -> Result<(), StoreError> {
    let mut path = key.slice(..from);
    let mut buf = Vec::with_capacity(128);
    loop {
        let rest = key.slice(path.len()..);
        path = match node(&path)? {
            Some(Node::Branch(branch)) => {
                let n = rest.get_unchecked(0);
                match (branch.child_ref(n), prior) {
                    (None, _) => return Ok(()),
                    (Some(child), Some(prior))
                        if is_leaf_ref(child, &rest.slice(1..), prior, &mut buf) =>
                    {
                        return Ok(());
                    }
                    _ => with_nibble(&path, n),
                }
            }
            Some(Node::Extension { key: ext, .. }) if rest.starts_with(&ext) => path.join(&ext),
            _ => return Ok(()),
        };
    }
}

/// Nodes written by an update, by path (`None`: removed).
#[derive(Debug, Default)]
pub(crate) struct CollectedNodes(pub(crate) HashMap<Nibbles, Option<Vec<u8>>>);

impl NodeSink for CollectedNodes {
    fn write(&mut self, path: &Nibbles, rlp: Option<&[u8]>) -> Result<(), StoreError> {
        self.0.insert(*path, rlp.map(<[u8]>::to_vec));
        Ok(())
    }
}

/// Builds a whole trie from sorted `(key, value RLP)` leaves, writing every node to `sink`;
/// returns the root (for genesis and bulk seeding, where there is nothing to update).
pub(crate) fn build_trie(
    leaves: &[(Nibbles, Vec<u8>)],
    sink: &mut impl NodeSink,
) -> Result<B256, StoreError> {
    if leaves.is_empty() {
        return Ok(EMPTY_ROOT_HASH);
    }
    let mut buf = Vec::with_capacity(600);
    build_node(Nibbles::default(), leaves, 0, sink, &mut buf)?;
    Ok(keccak256(&buf))
}

/// Writes the subtree at `path` (`depth` nibbles) holding exactly `leaves` (full keys, sorted,
/// at least one); returns its reference, its RLP left in `buf`.
fn build_node<V: AsRef<[u8]>>(
    path: Nibbles,
    leaves: &[(Nibbles, V)],
    depth: usize,
    sink: &mut impl NodeSink,
    buf: &mut Vec<u8>,
) -> Result<RlpNode, StoreError> {
    let rlp = if let [(key, value)] = leaves {
        buf.clear();
        LeafNodeRef::new(&key.slice(depth..), value.as_ref()).rlp(buf)
    } else {
        let (first, last) = (&leaves[0].0, &leaves[leaves.len() - 1].0);
        let common = first
            .slice(depth..)
            .common_prefix_length(&last.slice(depth..));
        if common == 0 {
            return build_branch(path, leaves, depth, sink, buf);
        }
        let shared = first.slice(depth..depth + common);
        let child = build_branch(path.join(&shared), leaves, depth + common, sink, buf)?;
        buf.clear();
        ExtensionNodeRef::new(&shared, &child).rlp(buf)
    };
    sink.write(&path, Some(buf))?;
    Ok(rlp)
}

/// [`build_node`] for a branch: `leaves` (at least two) differ at nibble `depth`.
fn build_branch<V: AsRef<[u8]>>(
    path: Nibbles,
    leaves: &[(Nibbles, V)],
    depth: usize,
    sink: &mut impl NodeSink,
    buf: &mut Vec<u8>,
) -> Result<RlpNode, StoreError> {
    let mut children = BranchRefs::default();
    for (n, leaves) in by_nibble(leaves, depth, |(key, _)| key) {
        children[n as usize] = Some(build_node(
            with_nibble(&path, n),
            leaves,
            depth + 1,
            sink,
            buf,
        )?);
    }
    buf.clear();
    let rlp = encode_branch(|n| children[n].as_deref(), buf);
    sink.write(&path, Some(buf))?;
    Ok(rlp)
}

/// The RLP-encoded nodes from the root towards `key`, as EIP-1186 lists them (nodes embedded in
/// their parent are not listed separately). Ends where the key's path ends, found or not.
pub(crate) fn proof(source: &impl NodeSource, key: &Nibbles) -> Result<Vec<Bytes>, StoreError> {
    let mut out = Vec::new();
    let mut path = Nibbles::default();
    while let Some(rlp) = source.node_rlp(&path)? {
        if path.is_empty() || rlp.len() >= 32 {
            out.push(Bytes::from(rlp.clone()));
        }
        let rest = key.slice(path.len()..);
        match Node::decode(&rlp)? {
            Node::Leaf { .. } => break,
            Node::Extension { key: ext, .. } if rest.starts_with(&ext) => path = path.join(&ext),
            Node::Extension { .. } => break,
            Node::Branch(branch) => {
                let n = rest.get_unchecked(0);
                if !branch.has_child(n) {
                    break;
                }
                path.push(n);
            }
        }
    }
    Ok(out)
}

/// The RLP value of `account`'s leaf, with storage root `storage_root`.
pub(crate) fn account_leaf(account: &StoredAccount, storage_root: B256) -> Vec<u8> {
    let mut out = Vec::with_capacity(110);
    TrieAccount {
        nonce: account.nonce,
        balance: account.balance,
        storage_root,
        code_hash: account.code_hash,
    }
    .encode(&mut out);
    out
}

/// The RLP value of a storage leaf.
pub(crate) fn storage_leaf(value: &U256) -> Vec<u8> {
    alloy::rlp::encode(value)
}

/// The genesis allocation as a state changeset, so genesis is written like any other block.
pub fn genesis_changeset(alloc: &BTreeMap<Address, GenesisAccount>) -> StateChangeset {
    let mut accounts = Vec::new();
    let mut storage = Vec::new();
    let mut contracts = Vec::new();
    for (address, acc) in alloc {
        let code = acc.code.as_ref().map(|c| Bytecode::new_raw(c.clone()));
        let code_hash = code.as_ref().map(|c| c.hash_slow()).unwrap_or(KECCAK_EMPTY);
        if let Some(code) = code {
            contracts.push((code_hash, code));
        }
        accounts.push((
            *address,
            Some(
                AccountInfo::new(
                    acc.balance,
                    acc.nonce.unwrap_or_default(),
                    code_hash,
                    Bytecode::default(),
                )
                .without_code(),
            ),
        ));
        if let Some(slots) = &acc.storage {
            storage.push(PlainStorageChangeset {
                address: *address,
                wipe_storage: false,
                storage: slots
                    .iter()
                    .map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0)))
                    .collect(),
            });
        }
    }
    StateChangeset {
        accounts,
        storage,
        contracts,
    }
}

/// The state root of a genesis allocation (computed with alloy-trie's hash builder, independently
/// of the stored tries, which must agree with it).
pub fn genesis_state_root(alloc: &BTreeMap<Address, GenesisAccount>) -> B256 {
    use alloy_trie::root::{state_root_unhashed, storage_root_unhashed};
    state_root_unhashed(alloc.iter().map(|(address, acc)| {
        let storage = acc
            .storage
            .iter()
            .flatten()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| (*k, U256::from_be_bytes(v.0)));
        (
            *address,
            TrieAccount {
                nonce: acc.nonce.unwrap_or_default(),
                balance: acc.balance,
                storage_root: storage_root_unhashed(storage),
                code_hash: acc.code.as_ref().map(keccak256).unwrap_or(KECCAK_EMPTY),
            },
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_trie::root::storage_root;
    use std::collections::BTreeMap as Map;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An in-memory node store.
    #[derive(Default, Clone)]
    struct MemNodes(Map<Vec<u8>, Vec<u8>>);

    impl NodeSource for &MemNodes {
        fn node_rlp(&self, path: &Nibbles) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self.0.get(&node_key(&[], path)).cloned())
        }
    }

    /// `MemNodes` as a source that counts the nodes read from it.
    #[derive(Clone, Copy)]
    struct Counted<'a>(&'a MemNodes, &'a AtomicUsize);

    impl NodeSource for Counted<'_> {
        fn node_rlp(&self, path: &Nibbles) -> Result<Option<Vec<u8>>, StoreError> {
            self.1.fetch_add(1, Ordering::Relaxed);
            (&self.0).node_rlp(path)
        }
    }

    impl NodeSink for MemNodes {
        fn write(&mut self, path: &Nibbles, rlp: Option<&[u8]>) -> Result<(), StoreError> {
            match rlp {
                Some(r) => self.0.insert(node_key(&[], path), r.to_vec()),
                None => self.0.remove(&node_key(&[], path)),
            };
            Ok(())
        }
    }

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// Applies `changes` to `nodes`, below the root on two threads when `parallel`; returns the
    /// root and the nodes read.
    fn apply(nodes: &mut MemNodes, changes: &[KeyChange], parallel: bool) -> (B256, usize) {
        let snapshot = nodes.clone();
        let reads = AtomicUsize::new(0);
        let source = Counted(&snapshot, &reads);
        let root = if parallel {
            let (root, written) =
                update_trie_in_parallel(source, vec![source, source], changes).unwrap();
            for (path, rlp) in written.0 {
                nodes.write(&path, rlp.as_deref()).unwrap();
            }
            root
        } else {
            update_trie(source, changes, nodes).unwrap()
        };
        (root, reads.into_inner())
    }

    #[test]
    fn random_updates_match_full_recomputation_and_leave_no_garbage() {
        let mut seed = 7u64;
        let mut nodes = MemNodes::default();
        let mut model: Map<B256, U256> = Map::new();
        // Small key space so keys are reused, deleted and re-created. A fifth of the keys share
        // prefixes of one to six bytes: extensions, split at every length and merged again.
        let keys: Vec<B256> = (0..300u64)
            .map(|i| {
                let mut key = keccak256(i.to_be_bytes());
                if i % 5 == 0 {
                    key[..1 + (i as usize / 5) % 6].fill(0xab);
                }
                key
            })
            .collect();
        let mut reads_saved = 0;
        for round in 0..90 {
            // Later rounds mostly delete, down to tries whose root is a leaf or a short branch.
            let delete_one_in = if round < 60 { 3 } else { 1 };
            let mut changes = Vec::new();
            for _ in 0..1 + lcg(&mut seed) % 120 {
                let key = keys[(lcg(&mut seed) % keys.len() as u64) as usize];
                // Mostly the true prior value; some wrong ones, and some for absent keys, which
                // must not be taken for the leaf.
                let prior = match lcg(&mut seed) % 5 {
                    0 => None,
                    1 => Some(storage_leaf(&U256::from(7 + lcg(&mut seed)))),
                    _ => model.get(&key).map(storage_leaf),
                };
                let value = if lcg(&mut seed).is_multiple_of(delete_one_in) {
                    model.remove(&key);
                    None
                } else {
                    let v = U256::from(1 + lcg(&mut seed));
                    model.insert(key, v);
                    Some(storage_leaf(&v))
                };
                changes.push(KeyChange {
                    key: Nibbles::unpack(key),
                    value,
                    prior,
                });
            }
            // The same changes without priors read at least as many nodes, to the same root.
            let unhinted: Vec<KeyChange> = changes
                .iter()
                .map(|change| KeyChange {
                    prior: None,
                    ..change.clone()
                })
                .collect();
            let (unhinted_root, unhinted_reads) =
                apply(&mut nodes.clone(), &unhinted, round % 2 == 1);
            let (root, reads) = apply(&mut nodes, &changes, round % 2 == 1);
            assert_eq!(root, unhinted_root, "round {round}");
            assert!(reads <= unhinted_reads, "round {round}");
            reads_saved += unhinted_reads - reads;
            assert_eq!(
                root,
                storage_root(model.iter().map(|(k, v)| (*k, *v))),
                "round {round}"
            );
            // The store holds exactly the trie a fresh build produces: nothing stale remains.
            let mut fresh = MemNodes::default();
            let leaves: Vec<_> = model
                .iter()
                .map(|(k, v)| (Nibbles::unpack(k), storage_leaf(v)))
                .collect();
            assert_eq!(build_trie(&leaves, &mut fresh).unwrap(), root);
            assert_eq!(
                fresh.0, nodes.0,
                "round {round}: stored nodes differ from a fresh build"
            );
        }
        assert!(model.len() < 3, "the trie shrank to almost nothing");
        assert!(
            reads_saved > 500,
            "known leaves were replaced unread: {reads_saved} reads saved"
        );
    }

    #[test]
    fn walk_visits_each_path_node_below_the_skipped_levels_but_known_leaves() {
        let mut nodes = MemNodes::default();
        let entries: Map<B256, U256> = (0..2000u64)
            .map(|i| (keccak256(i.to_be_bytes()), U256::from(i + 1)))
            .collect();
        let leaves: Vec<_> = entries
            .iter()
            .map(|(k, v)| (Nibbles::unpack(k), storage_leaf(v)))
            .collect();
        build_trie(&leaves, &mut nodes).unwrap();
        let mut walked = Map::<Nibbles, Option<Node>>::default();
        let mut leaves_skipped = 0;
        for (i, (key, value)) in entries.iter().enumerate().take(300) {
            let key = Nibbles::unpack(key);
            // Half with the true prior value, a few with a wrong one.
            let prior = match i % 4 {
                0 | 1 => Some(storage_leaf(value)),
                2 => Some(storage_leaf(&(value + U256::from(1)))),
                _ => None,
            };
            let known = i % 4 < 2;
            walk_path(&key, 2, prior.as_deref(), |path| {
                let node = (&nodes).node(path)?;
                walked.insert(*path, node.clone());
                Ok(node)
            })
            .unwrap();
            assert!(
                !walked.contains_key(&key.slice(..1)),
                "levels above `from` are skipped"
            );
            for depth in 2..=key.len() {
                let path = key.slice(..depth);
                let Some(rlp) = nodes.0.get(&node_key(&[], &path)) else {
                    continue;
                };
                let is_leaf = matches!(Node::decode(rlp).unwrap(), Node::Leaf { .. });
                if is_leaf && known {
                    assert!(!walked.contains_key(&path), "known leaf {path:?} read");
                    leaves_skipped += 1;
                } else {
                    let held = walked[&path].as_ref().expect("path node not read");
                    assert_eq!(&held.rlp(), rlp);
                }
            }
        }
        assert_eq!(leaves_skipped, 150);
    }

    #[test]
    fn proofs_verify_against_the_root() {
        let mut nodes = MemNodes::default();
        let entries: Map<B256, U256> = (0..500u64)
            .map(|i| (keccak256(i.to_be_bytes()), U256::from(i + 1)))
            .collect();
        let leaves: Vec<_> = entries
            .iter()
            .map(|(k, v)| (Nibbles::unpack(k), storage_leaf(v)))
            .collect();
        let root = build_trie(&leaves, &mut nodes).unwrap();
        for (k, v) in entries.iter().take(20) {
            let p = proof(&&nodes, &Nibbles::unpack(k)).unwrap();
            alloy_trie::proof::verify_proof(root, Nibbles::unpack(k), Some(storage_leaf(v)), &p)
                .unwrap();
        }
        let absent = keccak256(b"absent");
        let p = proof(&&nodes, &Nibbles::unpack(absent)).unwrap();
        alloy_trie::proof::verify_proof(root, Nibbles::unpack(absent), None, &p).unwrap();
        assert!(
            alloy_trie::proof::verify_proof(
                root,
                Nibbles::unpack(absent),
                Some(storage_leaf(&U256::from(1))),
                &p
            )
            .is_err()
        );
    }
}
