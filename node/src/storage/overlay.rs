//! Committed blocks the state tables do not hold yet.
//!
//! A committed block is durable in the block log and kept here, in memory, until the persister
//! has written it to the tables. Every read consults these blocks (newest first) before the
//! tables, so a block is fully visible (header, body, receipts, state, trie nodes) the moment it
//! is committed. Staging a block computes its state root from its changes over this overlay and
//! the tables, keeping the new trie nodes in memory: nothing on the commit path writes to the
//! large tables.

use super::top_nodes::{TOP_DEPTH, TopNodes};
use super::{
    CommittedBlock, OpenTable, PriorState, Reader, StoreResult, StoredAccount,
    tables::{ACCOUNTS_TRIE, STORAGES_TRIE},
};
use crate::trie;
use alloy::primitives::{Address, B256, U256, keccak256, map::HashMap};
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles};
use revm::{bytecode::Bytecode, database::states::StateChangeset};
use std::sync::Arc;

/// Trie node edits of one block: `Some(rlp)` written, `None` removed.
type NodeEdits = HashMap<Nibbles, Option<Vec<u8>>>;

/// Edits to one account's storage trie.
#[derive(Debug, Default)]
pub(super) struct StorageTrieEdits {
    /// The trie was emptied before `nodes` were written.
    pub(super) cleared: bool,
    /// Nodes written or removed.
    pub(super) nodes: NodeEdits,
}

impl StorageTrieEdits {
    /// The trie emptied, nothing written yet.
    fn cleared() -> Self {
        Self {
            cleared: true,
            nodes: HashMap::default(),
        }
    }
}

/// The trie nodes a block changed.
#[derive(Debug, Default)]
pub(super) struct TrieEdits {
    /// Account trie.
    pub(super) accounts: NodeEdits,
    /// Storage tries by hashed address.
    pub(super) storages: HashMap<B256, StorageTrieEdits>,
}

impl TrieEdits {
    /// `Some(node)` if these edits decide the node at `path` (including "removed" and "in a
    /// cleared trie"), `None` to look further down.
    fn lookup(&self, trie: &TrieId, path: &Nibbles) -> Option<Option<&[u8]>> {
        match trie {
            TrieId::Accounts => self.accounts.get(path).map(Option::as_deref),
            TrieId::Storage(hashed) => {
                let edits = self.storages.get(hashed)?;
                match edits.nodes.get(path) {
                    Some(node) => Some(node.as_deref()),
                    None if edits.cleared => Some(None),
                    None => None,
                }
            }
        }
    }
}

/// Which stored trie.
#[derive(Debug, Clone, Copy)]
pub(super) enum TrieId {
    /// The account trie.
    Accounts,
    /// The storage trie of the account with this hashed address.
    Storage(B256),
}

impl TrieId {
    fn table_and_prefix(&self) -> (&'static str, &[u8]) {
        match self {
            TrieId::Accounts => (ACCOUNTS_TRIE, &[]),
            TrieId::Storage(hashed) => (STORAGES_TRIE, hashed.as_slice()),
        }
    }
}

/// A trie as of a reader's snapshot: staged edits, then the pending blocks newest first, then
/// the tables (through the caches of the account trie's nodes).
pub(super) struct LayeredTrie<'a, 'db> {
    pub(super) reader: &'a Reader<'db>,
    pub(super) staged: Option<&'a TrieEdits>,
    pub(super) trie: TrieId,
    table: OpenTable<'a>,
}

/// The layer of a [`LayeredTrie`] that decides a node.
enum Layer<'a> {
    /// Staged or pending edits: the node's RLP (`None`: removed).
    Edits(Option<&'a [u8]>),
    /// The tables' levels cached in memory.
    Top,
    /// The tables (for the account trie, through the cache of nodes read ahead).
    Tables,
}

impl trie::NodeSource for LayeredTrie<'_, '_> {
    fn node_rlp(&self, path: &Nibbles) -> StoreResult<Option<Vec<u8>>> {
        match self.layer(path) {
            Layer::Edits(node) => Ok(node.map(<[u8]>::to_vec)),
            Layer::Top => Ok(self.top_node(path)?.map(|node| node.rlp())),
            Layer::Tables => match self.deep_cached(path) {
                Some(node) => Ok(node.map(|node| node.rlp())),
                None => self.table_rlp(path),
            },
        }
    }

    fn node(&self, path: &Nibbles) -> StoreResult<Option<trie::Node>> {
        self.decoded_node(path, false)
    }

    fn reads_tables(&self, path: &Nibbles) -> bool {
        // The cached levels never go to the tables: no need to look through the layers.
        !self.top_cached(path) && matches!(self.layer(path), Layer::Tables)
    }
}

impl<'a, 'db> LayeredTrie<'a, 'db> {
    /// Trie `trie` as `reader` sees it, without staged edits.
    pub(super) fn committed(reader: &'a Reader<'db>, trie: TrieId) -> Self {
        Self {
            reader,
            staged: None,
            trie,
            table: OpenTable::new(trie.table_and_prefix().0),
        }
    }

    /// The account trie with `staged` edits over `reader`'s.
    fn accounts(reader: &'a Reader<'db>, staged: &'a TrieEdits) -> Self {
        Self {
            staged: Some(staged),
            ..Self::committed(reader, TrieId::Accounts)
        }
    }

    fn root(&self) -> StoreResult<B256> {
        Ok(trie::NodeSource::node_rlp(self, &Nibbles::default())?
            .map(keccak256)
            .unwrap_or(EMPTY_ROOT_HASH))
    }

    /// The first layer that decides the node at `path`: staged edits, pending blocks newest
    /// first, then the tables (the cached levels, or not).
    fn layer(&self, path: &Nibbles) -> Layer<'_> {
        let edits = self.staged.and_then(|edits| edits.lookup(&self.trie, path));
        if let Some(node) = edits {
            return Layer::Edits(node);
        }
        let mut pending = self.reader.pending.iter().rev();
        if let Some(node) = pending.find_map(|pending| pending.tries.lookup(&self.trie, path)) {
            return Layer::Edits(node);
        }
        if self.top_cached(path) {
            Layer::Top
        } else {
            Layer::Tables
        }
    }

    /// Whether the node at `path` is in the tables' levels kept in memory.
    fn top_cached(&self, path: &Nibbles) -> bool {
        matches!(self.trie, TrieId::Accounts) && TopNodes::covers(path)
    }

    /// Reads every node of the levels the top-node cache keeps into it (nodes a pending block
    /// decides are skipped: the cache mirrors the tables). Returns the nodes visited.
    pub(super) fn load_top_levels(&self) -> StoreResult<usize> {
        let mut paths = vec![Nibbles::default()];
        let mut visited = 0;
        while let Some(path) = paths.pop() {
            visited += 1;
            let below = |child: Nibbles| TopNodes::covers(&child).then_some(child);
            match trie::NodeSource::node(self, &path)? {
                Some(trie::Node::Branch(branch)) => paths.extend(
                    branch
                        .children()
                        .filter_map(|n| below(trie::with_nibble(&path, n))),
                ),
                Some(trie::Node::Extension { key, .. }) => paths.extend(below(path.join(&key))),
                Some(trie::Node::Leaf { .. }) | None => {}
            }
        }
        Ok(visited)
    }

    /// The tables' node at a cached `path`, from the cache (filled from the tables on a miss).
    fn top_node(&self, path: &Nibbles) -> StoreResult<Option<trie::Node>> {
        let (top, at) = (self.reader.top_nodes, self.reader.tables_head);
        if let Some(node) = top.get(at, path) {
            return Ok(node);
        }
        let node = self.table_node(path)?;
        top.fill(at, path, node.as_ref());
        Ok(node)
    }

    /// The tables' node at an account-trie `path` below the cached levels, if it was read ahead
    /// (`Some(None)`: there is none).
    fn deep_cached(&self, path: &Nibbles) -> Option<Option<trie::Node>> {
        match self.trie {
            TrieId::Accounts => self.reader.deep_nodes.get(self.reader.tables_head, path),
            TrieId::Storage(_) => None,
        }
    }

    /// The node at `path`, decoded; one read from the account trie's tables below the cached
    /// levels is remembered in the cache of deep nodes if `remember`.
    fn decoded_node(&self, path: &Nibbles, remember: bool) -> StoreResult<Option<trie::Node>> {
        match self.layer(path) {
            Layer::Edits(node) => node.map(trie::Node::decode).transpose(),
            Layer::Top => self.top_node(path),
            Layer::Tables => match self.deep_cached(path) {
                Some(node) => Ok(node),
                None => {
                    let node = self.table_node(path)?;
                    if remember && matches!(self.trie, TrieId::Accounts) {
                        let (deep, at) = (self.reader.deep_nodes, self.reader.tables_head);
                        deep.fill(at, path, node.as_ref());
                    }
                    Ok(node)
                }
            },
        }
    }

    /// Reads into the cache of deep nodes the account-trie nodes below the cached levels that
    /// changing the account with hashed key `key` (64 nibbles) will read: all on its path but a
    /// leaf made by `prior` (the account's leaf now), which the state root replaces unread.
    /// Nodes that pending blocks decide are followed, not cached: the cache mirrors the tables.
    pub(super) fn read_ahead(&self, key: &Nibbles, prior: Option<&[u8]>) -> StoreResult<()> {
        debug_assert!(matches!(self.trie, TrieId::Accounts));
        trie::walk_path(key, TOP_DEPTH, prior, |path| self.decoded_node(path, true))
    }

    /// The tables' node at `path`.
    fn table_rlp(&self, path: &Nibbles) -> StoreResult<Option<Vec<u8>>> {
        let (_, prefix) = self.trie.table_and_prefix();
        self.reader
            .get_in(&self.table, trie::node_key(prefix, path))
    }

    /// The tables' node at `path`, decoded.
    pub(super) fn table_node(&self, path: &Nibbles) -> StoreResult<Option<trie::Node>> {
        let (_, prefix) = self.trie.table_and_prefix();
        self.reader.get_decoded_in(
            &self.table,
            trie::node_key(prefix, path),
            trie::Node::decode,
        )
    }
}

/// A slot map of one account in one block.
#[derive(Debug, Default)]
struct PendingStorage {
    /// Storage was wiped before `slots` were set.
    wiped: bool,
    slots: HashMap<B256, U256>,
}

/// A block's state changes, indexed by key.
#[derive(Debug)]
pub(super) struct StateIndex {
    accounts: HashMap<Address, Option<StoredAccount>>,
    storage: HashMap<Address, PendingStorage>,
    contracts: HashMap<B256, Bytecode>,
}

impl StateIndex {
    /// Indexes `changes`.
    pub(super) fn new(changes: &StateChangeset) -> Self {
        let accounts = changes
            .accounts
            .iter()
            .map(|(a, info)| (*a, info.as_ref().map(StoredAccount::from)))
            .collect();
        let storage = changes
            .storage
            .iter()
            .map(|change| {
                let slots = change
                    .storage
                    .iter()
                    .map(|(slot, value)| (B256::from(*slot), *value))
                    .collect();
                (
                    change.address,
                    PendingStorage {
                        wiped: change.wipe_storage,
                        slots,
                    },
                )
            })
            .collect();
        let contracts = changes.contracts.iter().cloned().collect();
        Self {
            accounts,
            storage,
            contracts,
        }
    }

    /// The account after the block, if the block changed it (`Some(None)`: removed).
    pub(super) fn account(&self, address: &Address) -> Option<Option<StoredAccount>> {
        self.accounts.get(address).copied()
    }

    /// The accounts the block changed, with their values after it (`None`: removed).
    pub(super) fn changed_accounts(
        &self,
    ) -> impl Iterator<Item = (&Address, &Option<StoredAccount>)> {
        self.accounts.iter()
    }

    /// The slot after the block, if the block decided it (set, or wiped to zero).
    pub(super) fn storage(&self, address: &Address, slot: &B256) -> Option<U256> {
        let storage = self.storage.get(address)?;
        match storage.slots.get(slot) {
            Some(value) => Some(*value),
            None if storage.wiped => Some(U256::ZERO),
            None => None,
        }
    }

    /// Code the block deployed.
    pub(super) fn code(&self, hash: &B256) -> Option<Bytecode> {
        self.contracts.get(hash).cloned()
    }
}

/// A committed block the tables do not hold yet, indexed for reads.
#[derive(Debug)]
pub(super) struct PendingBlock {
    /// The block as committed.
    pub(super) block: Arc<CommittedBlock>,
    /// Its state changes by key.
    pub(super) state: StateIndex,
    /// Trie nodes the block changed.
    pub(super) tries: TrieEdits,
    tx_index: HashMap<B256, u32>,
}

impl PendingBlock {
    /// Indexes a staged block.
    pub(super) fn new(block: Arc<CommittedBlock>, state: StateIndex, tries: TrieEdits) -> Self {
        let tx_index = block
            .transactions
            .iter()
            .enumerate()
            .map(|(i, tx)| (*tx.tx_hash(), i as u32))
            .collect();
        Self {
            block,
            state,
            tries,
            tx_index,
        }
    }

    /// Block number.
    pub(super) fn number(&self) -> u64 {
        self.block.header.number
    }

    /// Index of transaction `hash` in this block.
    pub(super) fn transaction_index(&self, hash: &B256) -> Option<u32> {
        self.tx_index.get(hash).copied()
    }
}

/// Threads that update the account trie's subtrees at most.
const MAX_TRIE_WORKERS: usize = 4;
/// Changed accounts below which the account trie is updated on the calling thread alone.
const MIN_PARALLEL_KEYS: usize = 256;

/// Computes the state root after `changes` (indexed as `index`) on top of `reader`'s latest
/// state, returning it with the trie nodes the change writes. Reads only the nodes on the changed
/// keys' paths (from memory where they were read ahead), and not the leaves `prior` values make.
pub(super) fn stage_state_root(
    reader: &Reader<'_>,
    changes: &StateChangeset,
    index: &StateIndex,
    prior: &PriorState,
) -> StoreResult<(B256, TrieEdits)> {
    let started = std::time::Instant::now();
    let mut staged = TrieEdits::default();
    let mut storage_roots: HashMap<B256, B256> = HashMap::default();
    let mut touched: HashMap<Address, B256> = HashMap::default();

    for change in &changes.storage {
        let hashed_address = keccak256(change.address);
        touched.insert(change.address, hashed_address);
        if change.wipe_storage {
            staged
                .storages
                .insert(hashed_address, StorageTrieEdits::cleared());
        }
        let prior_slots = prior
            .storage
            .get(&change.address)
            .filter(|_| !change.wipe_storage);
        let slots: Vec<trie::KeyChange> = change
            .storage
            .iter()
            .map(|(slot, value)| trie::KeyChange {
                key: Nibbles::unpack(keccak256(B256::from(*slot))),
                value: (!value.is_zero()).then(|| trie::storage_leaf(value)),
                prior: prior_slots
                    .and_then(|slots| slots.get(slot))
                    .map(trie::storage_leaf),
            })
            .collect();
        let mut written = trie::CollectedNodes::default();
        let root = trie::update_trie(
            LayeredTrie {
                staged: Some(&staged),
                ..LayeredTrie::committed(reader, TrieId::Storage(hashed_address))
            },
            &slots,
            &mut written,
        )?;
        staged
            .storages
            .entry(hashed_address)
            .or_default()
            .nodes
            .extend(written.0);
        storage_roots.insert(hashed_address, root);
    }

    let latest = reader.state_at(None);
    let changed = &index.accounts;
    for address in changed.keys() {
        touched
            .entry(*address)
            .or_insert_with(|| keccak256(address));
    }
    let mut removed = Vec::new();
    let mut leaves: Vec<trie::KeyChange> = Vec::with_capacity(touched.len());
    // One view of the storage tries, pointed at each account's in turn: they share a table,
    // opened once.
    let mut storage_trie = LayeredTrie {
        staged: Some(&staged),
        ..LayeredTrie::committed(reader, TrieId::Storage(B256::ZERO))
    };
    for (address, hashed_address) in &touched {
        let account = match changed.get(address) {
            Some(account) => *account,
            None => latest.account(address)?,
        };
        let key = Nibbles::unpack(hashed_address);
        match account {
            Some(account) => {
                let (storage_root, prior_storage_root) = match storage_roots.get(hashed_address) {
                    Some(root) => (*root, None),
                    None => {
                        storage_trie.trie = TrieId::Storage(*hashed_address);
                        let root = storage_trie.root()?;
                        (root, Some(root))
                    }
                };
                leaves.push(trie::KeyChange {
                    key,
                    value: Some(trie::account_leaf(&account, storage_root)),
                    // An account whose storage the block changed had another storage root
                    // before: its prior leaf is left unknown.
                    prior: prior
                        .accounts
                        .get(address)
                        .zip(prior_storage_root)
                        .map(|(account, root)| trie::account_leaf(account, root)),
                });
            }
            None => {
                removed.push(*hashed_address);
                leaves.push(trie::KeyChange {
                    key,
                    value: None,
                    prior: None,
                });
            }
        }
    }
    let prepared = started.elapsed();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_TRIE_WORKERS));
    let (root, written) = if workers > 1 && leaves.len() >= MIN_PARALLEL_KEYS {
        // Each worker reads through a snapshot of its own: a transaction serves one read at a
        // time. Newer snapshots agree: only blocks in `reader.pending` can have been persisted.
        let forks = (0..workers)
            .map(|_| reader.fork())
            .collect::<StoreResult<Vec<_>>>()?;
        let views = forks
            .iter()
            .map(|fork| LayeredTrie::accounts(fork, &staged))
            .collect();
        trie::update_trie_in_parallel(LayeredTrie::accounts(reader, &staged), views, &leaves)?
    } else {
        let mut written = trie::CollectedNodes::default();
        let root = trie::update_trie(
            LayeredTrie::accounts(reader, &staged),
            &leaves,
            &mut written,
        )?;
        (root, written)
    };
    tracing::trace!(
        target: "state_root",
        prepare_ms = prepared.as_secs_f64() * 1e3,
        accounts_ms = (started.elapsed() - prepared).as_secs_f64() * 1e3,
        "state root staged"
    );
    staged.accounts = written.0;
    // A removed account's storage trie goes with it.
    for hashed_address in removed {
        staged
            .storages
            .insert(hashed_address, StorageTrieEdits::cleared());
    }
    Ok((root, staged))
}
