//! Merkle-Patricia tries stored node by node in MDBX.
//!
//! Every node of the account trie and of each storage trie is stored under its nibble path (the
//! storage tries prefixed by the hashed address), as its RLP encoding. A block's changes are
//! applied as inserts and deletes that read only the nodes on the paths to the changed keys;
//! changed nodes are kept in memory and hashed once, bottom-up, at the end. Untouched subtrees are
//! never read: the work per block grows with the keys the block changed, not with the state.
//! Proofs (EIP-1186) are the stored nodes on the path to a key.

use crate::storage::{StoreError, StoredAccount};
use alloy::{
    genesis::GenesisAccount,
    primitives::{
        Address, B256, Bytes, U256, keccak256,
        map::{Entry, HashMap},
    },
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
use std::{collections::BTreeMap, sync::Arc};
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

/// The storage key of a node: the trie's prefix, then one byte per nibble.
pub(crate) fn node_key(prefix: &[u8], path: &Nibbles) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + path.len());
    key.extend_from_slice(prefix);
    key.extend(path.iter());
    key
}

/// The references a branch node holds, by nibble.
pub(crate) type BranchRefs = [Option<RlpNode>; 16];

/// A child of a [`Branch`], as an update sees it.
#[derive(Debug, Clone)]
enum Child {
    /// No child at the nibble, as committed or since removed.
    Absent,
    /// Changed since the branch was committed: its reference is recomputed on commit.
    Changed,
    /// As committed, with this reference.
    Committed(RlpNode),
}

/// A branch node: its children's references as committed, and which of them an update changed
/// since. The committed references are shared with the caches that hold the node, so that
/// editing a branch does not copy them; hashing recomputes only the changed children.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    /// References as committed (`None`: a branch the update made).
    committed: Option<Arc<BranchRefs>>,
    /// Nibbles with a child now, by bit.
    present: u16,
    /// Nibbles whose child changed since the commit, by bit.
    changed: u16,
}

impl Branch {
    /// A committed branch with references `refs`.
    fn committed(refs: BranchRefs) -> Self {
        let present = (0..16)
            .filter(|n| refs[*n].is_some())
            .fold(0, |m, n| m | 1 << n);
        Self {
            committed: Some(Arc::new(refs)),
            present,
            changed: 0,
        }
    }

    /// A new branch with (changed) children at `nibbles`.
    fn with_changed(nibbles: &[u8]) -> Self {
        let mask = nibbles.iter().fold(0, |m, n| m | 1 << n);
        Self {
            committed: None,
            present: mask,
            changed: mask,
        }
    }

    /// Whether there is a child at nibble `n`.
    pub(crate) fn has_child(&self, n: u8) -> bool {
        self.present & 1 << n != 0
    }

    /// The nibbles that have a child, in order.
    pub(crate) fn children(&self) -> impl Iterator<Item = u8> + '_ {
        (0..16u8).filter(|n| self.has_child(*n))
    }

    /// The reference to child `n` if it is as committed.
    pub(crate) fn unchanged_ref(&self, n: u8) -> Option<&RlpNode> {
        if self.changed & 1 << n != 0 {
            return None;
        }
        self.committed.as_ref()?[n as usize].as_ref()
    }

    fn child(&self, n: u8) -> Child {
        match self.unchanged_ref(n) {
            _ if !self.has_child(n) => Child::Absent,
            Some(reference) => Child::Committed(reference.clone()),
            None => Child::Changed,
        }
    }

    fn set_changed(&mut self, n: u8) {
        self.present |= 1 << n;
        self.changed |= 1 << n;
    }

    fn set_removed(&mut self, n: u8) {
        self.present &= !(1 << n);
        self.changed |= 1 << n;
    }

    /// The references as committed (none for a new branch).
    pub(crate) fn committed_refs(&self) -> BranchRefs {
        self.committed.as_deref().cloned().unwrap_or_default()
    }
}

/// A decoded node, as edited. Edited branches and extensions mark the children changed since
/// the commit (see [`Branch`]; an extension's child reference is then empty), so that hashing
/// visits only those.
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
            return Ok(Node::Branch(Branch::committed(refs)));
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
    /// Only for nodes whose children are as committed.
    fn encode(&self, buf: &mut Vec<u8>) -> RlpNode {
        match self {
            Node::Branch(branch) => {
                debug_assert_eq!(branch.changed, 0, "encoding an edited branch");
                match &branch.committed {
                    Some(refs) => encode_branch(refs, buf),
                    None => encode_branch(&BranchRefs::default(), buf),
                }
            }
            Node::Extension { key, child } => {
                buf.clear();
                ExtensionNodeRef::new(key, child).rlp(buf)
            }
            Node::Leaf { key, value } => {
                buf.clear();
                LeafNodeRef::new(key, value).rlp(buf)
            }
        }
    }

    /// The node's RLP.
    pub(crate) fn rlp(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        buf
    }
}

/// Writes the RLP of a branch with references `refs` to `buf` (cleared first), as alloy-trie's
/// `BranchNodeRef` encodes it, without gathering the children; returns the reference its parent
/// holds.
fn encode_branch(refs: &BranchRefs, buf: &mut Vec<u8>) -> RlpNode {
    buf.clear();
    let payload_length = refs
        .iter()
        .map(|child| child.as_ref().map_or(1, |child| child.len()))
        .sum::<usize>()
        + 1;
    Header {
        list: true,
        payload_length,
    }
    .encode(buf);
    for child in refs {
        match child {
            Some(child) => buf.extend_from_slice(child),
            None => buf.push(EMPTY_STRING_CODE),
        }
    }
    buf.push(EMPTY_STRING_CODE);
    RlpNode::from_rlp(buf)
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

/// Whether `child` references the leaf of `key` (the rest of a key) with value `value`.
fn is_leaf_ref(child: &RlpNode, key: &Nibbles, value: &[u8]) -> bool {
    LeafNodeRef::new(key, value).rlp(&mut Vec::with_capacity(128)) == *child
}

/// `path` followed by `nibble`.
pub(crate) fn with_nibble(path: &Nibbles, nibble: u8) -> Nibbles {
    let mut p = *path;
    p.push(nibble);
    p
}

/// Edits to one trie: committed nodes are read lazily from `source`; edited ones are held until
/// [`TrieUpdate::commit`].
pub(crate) struct TrieUpdate<S> {
    source: S,
    /// `Some`: new or changed node; `None`: removed.
    dirty: HashMap<Nibbles, Option<Node>>,
}

impl<S: NodeSource> TrieUpdate<S> {
    /// Starts editing the trie behind `source`.
    pub(crate) fn new(source: S) -> Self {
        Self::with_capacity(source, 0)
    }

    /// Starts editing the trie behind `source`, with room for `nodes` edited nodes.
    fn with_capacity(source: S, nodes: usize) -> Self {
        Self {
            source,
            dirty: HashMap::with_capacity_and_hasher(nodes, Default::default()),
        }
    }

    fn get(&self, path: &Nibbles) -> Result<Option<Node>, StoreError> {
        if let Some(node) = self.dirty.get(path) {
            return Ok(node.clone());
        }
        self.source.node(path)
    }

    fn put(&mut self, path: Nibbles, node: Node) {
        self.dirty.insert(path, Some(node));
    }

    fn remove(&mut self, path: Nibbles) {
        self.dirty.insert(path, None);
    }

    /// Sets `key`, the rest of a key below `path`, to `value`; `prior` is its leaf value before
    /// the update, if known.
    fn insert_at(
        &mut self,
        path: Nibbles,
        key: Nibbles,
        value: Vec<u8>,
        prior: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        // An edited branch only marks the child edited (its reference is recomputed on commit):
        // descend without copying the branch.
        if let Some(Some(Node::Branch(branch))) = self.dirty.get_mut(&path) {
            let n = key.get_unchecked(0);
            let child = branch.child(n);
            branch.set_changed(n);
            return self.insert_child(with_nibble(&path, n), child, key.slice(1..), value, prior);
        }
        match self.get(&path)? {
            None => self.put(path, Node::Leaf { key, value }),
            Some(Node::Leaf {
                key: leaf_key,
                value: leaf_value,
            }) => {
                if leaf_key == key {
                    self.put(path, Node::Leaf { key, value });
                    return Ok(());
                }
                // Keys are all 64 nibbles: two different keys diverge before either ends.
                let common = leaf_key.common_prefix_length(&key);
                let branch_path = path.join(&key.slice(..common));
                let (old_n, new_n) = (leaf_key.get_unchecked(common), key.get_unchecked(common));
                self.put(
                    with_nibble(&branch_path, old_n),
                    Node::Leaf {
                        key: leaf_key.slice(common + 1..),
                        value: leaf_value,
                    },
                );
                self.put(
                    with_nibble(&branch_path, new_n),
                    Node::Leaf {
                        key: key.slice(common + 1..),
                        value,
                    },
                );
                self.put_branch(branch_path, &[old_n, new_n]);
                if common > 0 {
                    self.put(
                        path,
                        Node::Extension {
                            key: key.slice(..common),
                            child: RlpNode::default(),
                        },
                    );
                }
            }
            Some(Node::Extension {
                key: ext_key,
                child,
            }) => {
                let common = ext_key.common_prefix_length(&key);
                if common == ext_key.len() {
                    self.insert_at(path.join(&ext_key), key.slice(common..), value, prior)?;
                    self.put(
                        path,
                        Node::Extension {
                            key: ext_key,
                            child,
                        },
                    );
                    return Ok(());
                }
                // Split the extension: a branch where the keys diverge.
                let branch_path = path.join(&key.slice(..common));
                let (ext_n, new_n) = (ext_key.get_unchecked(common), key.get_unchecked(common));
                let rest = ext_key.slice(common + 1..);
                if !rest.is_empty() {
                    // The old child keeps its path (`path ++ ext_key`) below a shorter extension.
                    self.put(
                        with_nibble(&branch_path, ext_n),
                        Node::Extension {
                            key: rest,
                            child: child.clone(),
                        },
                    );
                }
                self.put(
                    with_nibble(&branch_path, new_n),
                    Node::Leaf {
                        key: key.slice(common + 1..),
                        value,
                    },
                );
                // The extension's child, if it now hangs directly below, may have been edited
                // earlier: its reference is recomputed either way.
                let _ = child;
                self.put_branch(branch_path, &[ext_n, new_n]);
                if common > 0 {
                    self.put(
                        path,
                        Node::Extension {
                            key: key.slice(..common),
                            child: RlpNode::default(),
                        },
                    );
                }
            }
            Some(Node::Branch(mut branch)) => {
                let n = key.get_unchecked(0);
                let child = branch.child(n);
                branch.set_changed(n);
                self.put(path, Node::Branch(branch));
                self.insert_child(with_nibble(&path, n), child, key.slice(1..), value, prior)?;
            }
        }
        Ok(())
    }

    /// Sets `key` (the rest of a key below `path`) in a branch's `child` at `path`. Where the
    /// child is not in memory, and its committed reference is the hash of the leaf `prior` made,
    /// that leaf is `key`'s and is replaced without being read.
    fn insert_child(
        &mut self,
        path: Nibbles,
        child: Child,
        key: Nibbles,
        value: Vec<u8>,
        prior: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let replaces_prior_leaf = || match (child, prior) {
            (Child::Committed(committed), Some(prior)) => {
                self.source.reads_tables(&path)
                    && !self.dirty.contains_key(&path)
                    && is_leaf_ref(&committed, &key, prior)
            }
            // No child there: nothing to read.
            (Child::Absent, _) => true,
            _ => false,
        };
        if replaces_prior_leaf() {
            self.put(path, Node::Leaf { key, value });
            return Ok(());
        }
        self.insert_at(path, key, value, prior)
    }

    /// Puts a new branch at `path` with children (all to be hashed) at `nibbles`.
    fn put_branch(&mut self, path: Nibbles, nibbles: &[u8]) {
        self.put(path, Node::Branch(Branch::with_changed(nibbles)));
    }

    /// Sets (`Some`) or removes (`None`) `key`, a remainder below `path`, whose leaf value was
    /// `prior` (if known).
    fn apply_at(
        &mut self,
        path: Nibbles,
        key: Nibbles,
        value: Option<Vec<u8>>,
        prior: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        match value {
            Some(value) => self.insert_at(path, key, value, prior),
            None => self.delete_at(path, key),
        }
    }

    /// Applies `change`. Its `prior` value only saves reads: a leaf is taken for the key's own
    /// only when its reference is the hash of the leaf `prior` makes, so a wrong `prior` costs
    /// a read, never a wrong root.
    pub(crate) fn apply(&mut self, change: KeyChange) -> Result<(), StoreError> {
        self.apply_at(
            Nibbles::default(),
            change.key,
            change.value,
            change.prior.as_deref(),
        )
    }

    fn delete_at(&mut self, path: Nibbles, key: Nibbles) -> Result<(), StoreError> {
        match self.get(&path)? {
            Some(Node::Leaf { key: leaf_key, .. }) if leaf_key == key => self.remove(path),
            None | Some(Node::Leaf { .. }) => {}
            Some(Node::Extension {
                key: ext_key,
                child,
            }) => {
                if !key.starts_with(&ext_key) {
                    return Ok(());
                }
                let child_path = path.join(&ext_key);
                self.delete_at(child_path, key.slice(ext_key.len()..))?;
                // A branch below that lost all but one child has collapsed: merge upwards.
                self.absorb_child(path, ext_key, child_path, child)?;
            }
            Some(Node::Branch(mut branch)) => {
                let n = key.get_unchecked(0);
                if !branch.has_child(n) {
                    return Ok(());
                }
                let child_path = with_nibble(&path, n);
                self.delete_at(child_path, key.slice(1..))?;
                match self.dirty.get(&child_path) {
                    Some(None) => branch.set_removed(n),
                    Some(Some(_)) => branch.set_changed(n),
                    // The key was not there: the child is unchanged.
                    None => {}
                }
                let remaining = {
                    let mut children = branch.children();
                    (children.next(), children.next())
                };
                match remaining {
                    (Some(only), None) => {
                        // An empty reference: changed, recomputed on commit.
                        let child_ref = branch.unchanged_ref(only).cloned().unwrap_or_default();
                        self.absorb_child(
                            path,
                            Nibbles::from_nibbles([only]),
                            with_nibble(&path, only),
                            child_ref,
                        )?
                    }
                    (None, _) => self.remove(path),
                    _ => self.put(path, Node::Branch(branch)),
                }
            }
        }
        Ok(())
    }

    /// Puts at `path` what `prefix` followed by the node at `child_path` collapses to: a longer
    /// leaf or extension absorbing the child, or an extension to a child branch (which keeps its
    /// path, so `child_ref` stays valid).
    fn absorb_child(
        &mut self,
        path: Nibbles,
        prefix: Nibbles,
        child_path: Nibbles,
        child_ref: RlpNode,
    ) -> Result<(), StoreError> {
        match self.get(&child_path)? {
            Some(Node::Leaf { key, value }) => {
                self.remove(child_path);
                self.put(
                    path,
                    Node::Leaf {
                        key: prefix.join(&key),
                        value,
                    },
                );
            }
            Some(Node::Extension { key, child }) => {
                self.remove(child_path);
                self.put(
                    path,
                    Node::Extension {
                        key: prefix.join(&key),
                        child,
                    },
                );
            }
            Some(Node::Branch(_)) => self.put(
                path,
                Node::Extension {
                    key: prefix,
                    child: child_ref,
                },
            ),
            None => {
                return Err(StoreError::Corrupt {
                    table: "trie",
                    detail: format!("child {child_path:?} missing"),
                });
            }
        }
        Ok(())
    }

    /// Hashes the edited nodes bottom-up, writes them (and removals) to `sink`, and returns the
    /// trie's root hash.
    pub(crate) fn commit(mut self, sink: &mut impl NodeSink) -> Result<B256, StoreError> {
        let root = self.commit_subtree(Nibbles::default(), sink)?;
        self.write_removals(sink)?;
        // The root is hashed even when its encoding is short enough to be inlined.
        Ok(root.map_or(EMPTY_ROOT_HASH, |root| {
            root.as_hash().unwrap_or_else(|| keccak256(&root[..]))
        }))
    }

    /// Hashes the edited subtree at `path` and writes its nodes to `sink`; returns the reference
    /// its parent holds (`None`: the subtree is gone). Removals are written by
    /// [`Self::write_removals`].
    fn commit_subtree(
        &mut self,
        path: Nibbles,
        sink: &mut impl NodeSink,
    ) -> Result<Option<RlpNode>, StoreError> {
        self.child_ref(path, sink, &mut Vec::with_capacity(600))
    }

    /// The reference to the node at `path` after the edits (`None`: gone), hashing it (and its
    /// edited subtree) if it was edited.
    fn child_ref(
        &mut self,
        path: Nibbles,
        sink: &mut impl NodeSink,
        buf: &mut Vec<u8>,
    ) -> Result<Option<RlpNode>, StoreError> {
        match self.dirty.entry(path) {
            // Each edited node is hashed once, so it can leave the map (removals stay, as `None`).
            Entry::Occupied(edited) if edited.get().is_some() => {
                let node = edited.remove().expect("an edited node");
                Ok(Some(self.hash_node(path, node, sink, buf)?))
            }
            Entry::Occupied(_) => Ok(None),
            Entry::Vacant(_) => Ok(self
                .source
                .node_rlp(&path)?
                .map(|rlp| RlpNode::from_rlp(&rlp))),
        }
    }

    fn write_removals(&self, sink: &mut impl NodeSink) -> Result<(), StoreError> {
        for (path, node) in &self.dirty {
            if node.is_none() {
                sink.write(path, None)?;
            }
        }
        Ok(())
    }

    /// Re-encodes `node`, taken out of the edits at `path` (its edited children first); leaves
    /// its RLP in `buf`.
    fn hash_node(
        &mut self,
        path: Nibbles,
        mut node: Node,
        sink: &mut impl NodeSink,
        buf: &mut Vec<u8>,
    ) -> Result<RlpNode, StoreError> {
        match &mut node {
            Node::Branch(branch) => {
                let mut refs = branch.committed_refs();
                for n in (0..16u8).filter(|n| branch.changed & 1 << n != 0) {
                    refs[n as usize] = match branch.has_child(n) {
                        true => Some(
                            self.child_ref(with_nibble(&path, n), sink, buf)?
                                .ok_or_else(|| StoreError::Corrupt {
                                    table: "trie",
                                    detail: format!("branch child {path:?}+{n} missing"),
                                })?,
                        ),
                        false => None,
                    };
                }
                let rlp = encode_branch(&refs, buf);
                sink.write(&path, Some(buf))?;
                return Ok(rlp);
            }
            Node::Extension { key, child } => {
                let child_path = path.join(key);
                if child.is_empty() || matches!(self.dirty.get(&child_path), Some(Some(_))) {
                    *child = self.child_ref(child_path, sink, buf)?.ok_or_else(|| {
                        StoreError::Corrupt {
                            table: "trie",
                            detail: format!("extension child {child_path:?} missing"),
                        }
                    })?;
                }
            }
            Node::Leaf { .. } => {}
        }
        let rlp = node.encode(buf);
        sink.write(&path, Some(buf))?;
        Ok(rlp)
    }
}

/// Nodes an account-trie update edits per changed key, about (the path below the levels shared
/// with other keys, and the leaf).
const NODES_PER_KEY: usize = 4;

/// A change to one key of a trie.
#[derive(Debug, Clone)]
pub(crate) struct KeyChange {
    /// The hashed key, 64 nibbles.
    pub(crate) key: Nibbles,
    /// The new leaf value (RLP); `None` deletes the key.
    pub(crate) value: Option<Vec<u8>>,
    /// The key's leaf value before the change, if known (see [`TrieUpdate::apply`]).
    pub(crate) prior: Option<Vec<u8>>,
}

/// Applies `changes` to a trie whose root is a branch, the subtrees below the root's children
/// updated and hashed on one thread per `workers` source (each a view of the same trie), and
/// returns the new root hash with the written nodes, or `None` when the shortcut does not apply
/// (the root is not a branch, or keeps fewer than two children): then apply the changes with
/// [`TrieUpdate`].
pub(crate) fn update_below_root<S: NodeSource + Send>(
    root: &impl NodeSource,
    workers: Vec<S>,
    changes: &[KeyChange],
) -> Result<Option<(B256, CollectedNodes)>, StoreError> {
    let root_path = Nibbles::default();
    let Some(Node::Branch(root_branch)) = root
        .node_rlp(&root_path)?
        .map(|rlp| Node::decode(&rlp))
        .transpose()?
    else {
        return Ok(None);
    };
    let mut children = root_branch.committed_refs();
    let mut by_nibble: [Vec<&KeyChange>; 16] = Default::default();
    for change in changes {
        by_nibble[change.key.get_unchecked(0) as usize].push(change);
    }
    // Largest subtrees first, each to the least loaded worker.
    let mut order: Vec<u8> = (0..16)
        .filter(|n| !by_nibble[*n as usize].is_empty())
        .collect();
    order.sort_by_key(|n| std::cmp::Reverse(by_nibble[*n as usize].len()));
    let mut shares: Vec<(usize, Vec<u8>)> = workers.iter().map(|_| (0, Vec::new())).collect();
    for n in order {
        if let Some(share) = shares.iter_mut().min_by_key(|(load, _)| *load) {
            share.0 += by_nibble[n as usize].len();
            share.1.push(n);
        }
    }
    type Subtrees = (Vec<(u8, Option<RlpNode>)>, CollectedNodes);
    let run = |source: S, (keys, nibbles): (usize, Vec<u8>)| -> Result<Subtrees, StoreError> {
        let started = std::time::Instant::now();
        // Room for each key's path below the cached levels: growing these maps means rehashing
        // thousands of nodes.
        let nodes = keys * NODES_PER_KEY;
        let mut update = TrieUpdate::with_capacity(source, nodes);
        let mut sink = CollectedNodes(HashMap::with_capacity_and_hasher(nodes, Default::default()));
        let mut refs = Vec::with_capacity(nibbles.len());
        let mut hashing = std::time::Duration::ZERO;
        for n in nibbles {
            let path = Nibbles::from_nibbles([n]);
            for change in &by_nibble[n as usize] {
                update.apply_at(
                    path,
                    change.key.slice(1..),
                    change.value.clone(),
                    change.prior.as_deref(),
                )?;
            }
            let hashed = std::time::Instant::now();
            refs.push((n, update.commit_subtree(path, &mut sink)?));
            hashing += hashed.elapsed();
        }
        update.write_removals(&mut sink)?;
        trace!(
            target: "state_root",
            keys,
            nodes = sink.0.len(),
            edit_ms = (started.elapsed() - hashing).as_secs_f64() * 1e3,
            hash_ms = hashing.as_secs_f64() * 1e3,
            "subtrees updated"
        );
        Ok((refs, sink))
    };
    let results: Vec<Result<Subtrees, StoreError>> = std::thread::scope(|scope| {
        let run = &run;
        let handles: Vec<_> = workers
            .into_iter()
            .zip(shares)
            .map(|(source, share)| scope.spawn(move || run(source, share)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("trie worker panicked"))
            .collect()
    });
    let mut results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    // The other workers' nodes join the largest set.
    results.sort_by_key(|(_, sink)| std::cmp::Reverse(sink.0.len()));
    let mut written = CollectedNodes::default();
    for (refs, sink) in results {
        for (n, child) in refs {
            children[n as usize] = child;
        }
        if written.0.is_empty() {
            written = sink;
        } else {
            written.0.extend(sink.0);
        }
    }
    if children.iter().flatten().count() < 2 {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(600);
    encode_branch(&children, &mut buf);
    let root_hash = keccak256(&buf);
    written.0.insert(root_path, Some(buf));
    Ok(Some((root_hash, written)))
}

/// Committed nodes of one trie read ahead of an update, decoded, by path (`None`: no node
/// there). Reading them while a block executes takes the table reads and decoding off the path
/// from execution to the state root.
#[derive(Debug, Default)]
pub(crate) struct WarmNodes(HashMap<Nibbles, Option<Node>>);

impl WarmNodes {
    /// Reads the nodes from `from` nibbles of `key` (64 nibbles) towards it that updating `key`
    /// will read from the tables: all but a leaf made by `prior` (the key's value before), which
    /// the update replaces unread. The levels above `from`, which the source holds in memory,
    /// are skipped: a node at a prefix of `key` is on its path, and if there is none at `from`
    /// (the path ends above, or an extension spans it), the update reads what it needs itself.
    pub(crate) fn read_path(
        &mut self,
        source: &impl NodeSource,
        key: &Nibbles,
        from: usize,
        prior: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let mut path = key.slice(..from);
        loop {
            let in_memory;
            let node = if source.reads_tables(&path) {
                match self.0.entry(path) {
                    Entry::Occupied(held) => &*held.into_mut(),
                    Entry::Vacant(missing) => &*missing.insert(source.node(&path)?),
                }
            } else {
                in_memory = source.node(&path)?;
                &in_memory
            };
            let rest = key.slice(path.len()..);
            path = match node {
                Some(Node::Branch(branch)) => {
                    let n = rest.get_unchecked(0);
                    match (branch.unchanged_ref(n), prior) {
                        (None, _) => return Ok(()),
                        (Some(child), Some(prior))
                            if is_leaf_ref(child, &rest.slice(1..), prior) =>
                        {
                            return Ok(());
                        }
                        _ => with_nibble(&path, n),
                    }
                }
                Some(Node::Extension { key: ext, .. }) if rest.starts_with(ext) => path.join(ext),
                _ => return Ok(()),
            };
        }
    }

    /// The node read at `path`, if it was read (`Some(None)`: read, and there is none).
    pub(crate) fn get(&self, path: &Nibbles) -> Option<Option<&Node>> {
        self.0.get(path).map(Option::as_ref)
    }

    /// Nodes held.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
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

fn build_node(
    path: Nibbles,
    leaves: &[(Nibbles, Vec<u8>)],
    depth: usize,
    sink: &mut impl NodeSink,
    buf: &mut Vec<u8>,
) -> Result<RlpNode, StoreError> {
    let node = if let [(key, value)] = leaves {
        Node::Leaf {
            key: key.slice(depth..),
            value: value.clone(),
        }
    } else {
        let (first, last) = (&leaves[0].0, &leaves[leaves.len() - 1].0);
        let common = first
            .slice(depth..)
            .common_prefix_length(&last.slice(depth..));
        if common > 0 {
            let child = build_branch(
                path.join(&first.slice(depth..depth + common)),
                leaves,
                depth + common,
                sink,
                buf,
            )?;
            Node::Extension {
                key: first.slice(depth..depth + common),
                child,
            }
        } else {
            return build_branch(path, leaves, depth, sink, buf);
        }
    };
    let rlp = node.encode(buf);
    sink.write(&path, Some(buf))?;
    Ok(rlp)
}

fn build_branch(
    path: Nibbles,
    leaves: &[(Nibbles, Vec<u8>)],
    depth: usize,
    sink: &mut impl NodeSink,
    buf: &mut Vec<u8>,
) -> Result<RlpNode, StoreError> {
    let mut children = BranchRefs::default();
    let mut start = 0;
    while start < leaves.len() {
        let n = leaves[start].0.get_unchecked(depth);
        let end = start + leaves[start..].partition_point(|(k, _)| k.get_unchecked(depth) == n);
        children[n as usize] = Some(build_node(
            with_nibble(&path, n),
            &leaves[start..end],
            depth + 1,
            sink,
            buf,
        )?);
        start = end;
    }
    let rlp = encode_branch(&children, buf);
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

    /// Applies `changes` to `nodes`, below the root on two threads when `parallel` (falling back
    /// to one update as the caller would); returns the root and the nodes read.
    fn apply(nodes: &mut MemNodes, changes: &[KeyChange], parallel: bool) -> (B256, usize) {
        let snapshot = nodes.clone();
        let reads = AtomicUsize::new(0);
        let source = Counted(&snapshot, &reads);
        if parallel
            && let Some((root, written)) =
                update_below_root(&source, vec![source, source], changes).unwrap()
        {
            for (path, rlp) in written.0 {
                nodes.write(&path, rlp.as_deref()).unwrap();
            }
            return (root, reads.into_inner());
        }
        let mut update = TrieUpdate::new(source);
        for change in changes {
            update.apply(change.clone()).unwrap();
        }
        let root = update.commit(nodes).unwrap();
        (root, reads.into_inner())
    }

    #[test]
    fn random_updates_match_full_recomputation_and_leave_no_garbage() {
        let mut seed = 7u64;
        let mut nodes = MemNodes::default();
        let mut model: Map<B256, U256> = Map::new();
        // Small key space so keys are reused, deleted and re-created.
        let keys: Vec<B256> = (0..300u64).map(|i| keccak256(i.to_be_bytes())).collect();
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
    fn read_ahead_holds_each_path_below_the_skipped_levels_but_known_leaves() {
        let mut nodes = MemNodes::default();
        let entries: Map<B256, U256> = (0..2000u64)
            .map(|i| (keccak256(i.to_be_bytes()), U256::from(i + 1)))
            .collect();
        let leaves: Vec<_> = entries
            .iter()
            .map(|(k, v)| (Nibbles::unpack(k), storage_leaf(v)))
            .collect();
        build_trie(&leaves, &mut nodes).unwrap();
        let mut warm = WarmNodes::default();
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
            warm.read_path(&&nodes, &key, 2, prior.as_deref()).unwrap();
            assert!(
                warm.get(&key.slice(..1)).is_none(),
                "levels above `from` are skipped"
            );
            for depth in 2..=key.len() {
                let path = key.slice(..depth);
                let Some(rlp) = nodes.0.get(&node_key(&[], &path)) else {
                    continue;
                };
                let is_leaf = matches!(Node::decode(rlp).unwrap(), Node::Leaf { .. });
                if is_leaf && known {
                    assert!(warm.get(&path).is_none(), "known leaf {path:?} read");
                    leaves_skipped += 1;
                } else {
                    let held = warm.get(&path).flatten().expect("path node not read");
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
