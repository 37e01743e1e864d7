//! Chain storage in MDBX.
//!
//! Committing a block stages it (its state root computed over the committed state, new trie
//! nodes kept in memory), appends it to the durable block log in one small write, and makes it
//! readable from memory ([`overlay`]). A background persister then writes the header, body,
//! senders, receipts, transaction index, state changes (plain and hashed), per-block changesets,
//! history index and trie nodes of one or more blocks to the tables in one MDBX write
//! transaction, and drops them from memory. A crash at any instant loses no committed block: the
//! log holds every block the tables do not, and opening the store replays it. Historical state
//! (archive) is answered from the changesets: the value of a key after block `n` is the "before"
//! value recorded by the first block after `n` that changed it, or the current value if none did.

mod codec;
mod deep_nodes;
mod generations;
mod hot;
mod log;
mod overlay;
mod state;
mod top_nodes;

pub use codec::StoredAccount;
pub use state::StateDb;

use crate::trie;
use alloy::{
    consensus::{Header, ReceiptEnvelope, Sealable, Sealed, TxEnvelope},
    eips::{Decodable2718, Encodable2718},
    primitives::{
        Address, B256, Bytes, KECCAK256_EMPTY as KECCAK_EMPTY, U256, keccak256, map::HashMap,
    },
    rlp::{Decodable, Encodable},
};
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles};
use codec::*;
use deep_nodes::DeepNodes;
use hot::HotAccounts;
use libmdbx::{
    Database, DatabaseOptions, Mode, NoWriteMap, RO, RW, ReadWriteOptions, SyncMode, Table,
    TableFlags, Transaction, WriteFlags,
};
use log::BlockLog;
use overlay::{LayeredTrie, PendingBlock, StateIndex, TrieEdits, TrieId};
use parking_lot::{Condvar, Mutex, RwLock};
use revm::database::states::StateChangeset;
use std::{
    collections::HashSet,
    path::Path,
    sync::{
        Arc,
        mpsc::{Receiver, SyncSender, TrySendError},
    },
    thread::JoinHandle,
};
use top_nodes::TopNodes;
use tracing::{debug, error};

/// A header with its hash.
pub type SealedHeader = Sealed<Header>;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// MDBX failed.
    #[error("database error: {0}")]
    Mdbx(#[from] libmdbx::Error),
    /// Stored bytes could not be decoded: the database is damaged or from another version.
    #[error("corrupt database entry in {table}: {detail}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// What failed.
        detail: String,
    },
    /// The data directory holds a different chain.
    #[error("data directory holds chain with genesis {found}, expected {expected}")]
    GenesisMismatch {
        /// Genesis hash in the database.
        found: B256,
        /// Genesis hash of the configured chain.
        expected: B256,
    },
    /// Writing committed blocks to the tables failed; they are safe in the block log and will be
    /// written when the store is next opened.
    #[error("persisting blocks failed: {0}")]
    Persist(String),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {error}")]
    DataDir {
        /// Directory.
        path: String,
        /// Underlying error.
        error: std::io::Error,
    },
    /// A thread of the store's could not be started.
    #[error("cannot start the {name} thread: {error}")]
    Thread {
        /// The thread's name.
        name: &'static str,
        /// Underlying error.
        error: std::io::Error,
    },
}

impl revm::database::DBErrorMarker for StoreError {}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Names of the MDBX tables.
mod tables {
    pub(super) const META: &str = "Meta";
    pub(super) const HEADERS: &str = "Headers";
    pub(super) const CANONICAL_HASHES: &str = "CanonicalHashes";
    pub(super) const HEADER_NUMBERS: &str = "HeaderNumbers";
    pub(super) const BODIES: &str = "BlockBodies";
    pub(super) const SENDERS: &str = "TransactionSenders";
    pub(super) const RECEIPTS: &str = "Receipts";
    pub(super) const TX_LOOKUP: &str = "TransactionLookup";
    pub(super) const PLAIN_ACCOUNTS: &str = "PlainAccountState";
    pub(super) const PLAIN_STORAGE: &str = "PlainStorageState";
    pub(super) const BYTECODES: &str = "Bytecodes";
    pub(super) const HASHED_ACCOUNTS: &str = "HashedAccounts";
    pub(super) const HASHED_STORAGE: &str = "HashedStorages";
    pub(super) const ACCOUNTS_TRIE: &str = "AccountsTrie";
    pub(super) const STORAGES_TRIE: &str = "StoragesTrie";
    pub(super) const SYSTEM_LOGS: &str = "SystemLogs";
    pub(super) const ACCOUNT_CHANGESETS: &str = "AccountChangeSets";
    pub(super) const STORAGE_CHANGESETS: &str = "StorageChangeSets";
    pub(super) const ACCOUNT_HISTORY: &str = "AccountsHistory";
    pub(super) const STORAGE_HISTORY: &str = "StoragesHistory";

    pub(super) const ALL: [&str; 20] = [
        META,
        HEADERS,
        CANONICAL_HASHES,
        HEADER_NUMBERS,
        BODIES,
        SENDERS,
        RECEIPTS,
        TX_LOOKUP,
        PLAIN_ACCOUNTS,
        PLAIN_STORAGE,
        BYTECODES,
        HASHED_ACCOUNTS,
        HASHED_STORAGE,
        ACCOUNTS_TRIE,
        STORAGES_TRIE,
        SYSTEM_LOGS,
        ACCOUNT_CHANGESETS,
        STORAGE_CHANGESETS,
        ACCOUNT_HISTORY,
        STORAGE_HISTORY,
    ];
}
use tables::*;

const META_HEAD: &[u8] = b"head";

/// Everything a block commits, except its state root, which [`Store::commit_block`] computes
/// from the state after `changes` are applied.
#[derive(Debug)]
pub struct NewBlock {
    /// The header; `state_root` is overwritten.
    pub header: Header,
    /// Transactions in order.
    pub transactions: Vec<TxEnvelope>,
    /// Recovered sender of each transaction.
    pub senders: Vec<Address>,
    /// Receipt of each transaction.
    pub receipts: Vec<ReceiptEnvelope>,
    /// State changes made by the block.
    pub changes: StateChangeset,
    /// Logs of the block-boundary system calls (in no receipt; kept so `eth_getLogs` finds them).
    pub system_logs: Vec<alloy::primitives::Log>,
    /// What the changed accounts and slots held before the block, as execution read them.
    pub prior: PriorState,
}

/// What the accounts and slots a block changed held before it.
///
/// Only a hint for the state root, which replaces a changed key's leaf without reading it when
/// the reference its parent holds is the hash of the leaf these values make: a missing or wrong
/// value costs a read, never a wrong root.
#[derive(Debug, Default, Clone)]
pub struct PriorState {
    /// Changed accounts that existed before the block.
    pub accounts: HashMap<Address, StoredAccount>,
    /// Changed slots that were non-zero before the block, by account (none for an account whose
    /// storage the block cleared).
    pub storage: HashMap<Address, HashMap<U256, U256>>,
}

/// A committed block: its sealed header (state root filled in) and contents.
#[derive(Debug)]
pub struct CommittedBlock {
    /// Sealed header.
    pub header: SealedHeader,
    /// Transactions in order.
    pub transactions: Vec<TxEnvelope>,
    /// Recovered sender of each transaction.
    pub senders: Vec<Address>,
    /// Receipt of each transaction.
    pub receipts: Vec<ReceiptEnvelope>,
    /// State changes made by the block.
    pub changes: StateChangeset,
    /// Logs of the block-boundary system calls.
    pub system_logs: Vec<alloy::primitives::Log>,
}

/// MDBX reader slots.
const MAX_READERS: u32 = 2048;

/// Blocks the persister writes to the tables in one transaction, at most.
const MAX_PERSIST_BATCH: usize = 16;
/// Committed blocks waiting for the persister before `commit_block` waits for it: bounds the
/// memory the overlay holds if the disk falls behind.
const MAX_QUEUED_BLOCKS: usize = 8;

/// The chain database.
pub struct Store {
    shared: Arc<Shared>,
    /// Serializes commits: staging reads the head the commit extends.
    commit_lock: Mutex<()>,
    /// Hands committed blocks to the persister (`None` once the store is closing, or when
    /// persistence is paused in tests).
    persist_tx: Option<SyncSender<Arc<PendingBlock>>>,
    persister: Option<JoinHandle<()>>,
}

/// What the committing side and the persister share.
struct Shared {
    db: Database<NoWriteMap>,
    log: BlockLog,
    /// Committed blocks the tables do not hold yet, oldest first.
    pending: RwLock<Vec<Arc<PendingBlock>>>,
    progress: Mutex<PersistProgress>,
    persisted: Condvar,
    /// The account trie's top levels as the tables hold them.
    top_nodes: TopNodes,
    /// Account-trie nodes below the top levels, read ahead for pooled transactions.
    deep_nodes: DeepNodes,
    /// Accounts recently changed or read, as of the newest committed block.
    hot_accounts: HotAccounts,
}

#[derive(Debug, Default)]
struct PersistProgress {
    /// Newest block the tables hold.
    through: u64,
    /// Why the persister stopped, if it did.
    error: Option<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database in `dir`, replaying blocks the block log holds
    /// beyond the tables. Exclusive: a second node on the same directory fails here instead of
    /// corrupting it.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        Self::open_with(dir, true)
    }

    fn open_with(dir: &Path, persist: bool) -> StoreResult<Self> {
        let options = DatabaseOptions {
            max_tables: Some(tables::ALL.len() as u64 + 4),
            // A reader slot per open read transaction: more than the blocking threads (512)
            // that RPC reads can hold at once, so sealing always finds one.
            max_readers: Some(MAX_READERS),
            exclusive: true,
            mode: Mode::ReadWrite(ReadWriteOptions {
                // Durable: the block log may drop a block only once the tables hold it.
                sync_mode: SyncMode::Durable,
                max_size: Some(1 << 40),
                growth_step: Some(64 << 20),
                ..Default::default()
            }),
            ..Default::default()
        };
        let db = Database::open_with_options(dir, options)?;
        let txn = db.begin_rw_txn()?;
        for name in tables::ALL {
            txn.create_table(Some(name), TableFlags::empty())?;
        }
        txn.commit()?;
        let log = BlockLog::open(&dir.join("log"))?;
        let shared = Arc::new(Shared {
            db,
            log,
            pending: RwLock::new(Vec::new()),
            progress: Mutex::new(PersistProgress::default()),
            persisted: Condvar::new(),
            top_nodes: TopNodes::default(),
            deep_nodes: DeepNodes::default(),
            hot_accounts: HotAccounts::default(),
        });
        let tables_head = shared.read()?.tables_head;
        shared.reset_caches(tables_head);
        let through = tables_head.unwrap_or_default();
        shared.progress.lock().through = through;
        let (persist_tx, persister) = if persist {
            let (tx, rx) = std::sync::mpsc::sync_channel(MAX_QUEUED_BLOCKS);
            let worker = shared.clone();
            let handle = std::thread::Builder::new()
                .name("persister".into())
                .spawn(move || persist_loop(&worker, rx))
                .map_err(|error| StoreError::DataDir {
                    path: dir.display().to_string(),
                    error,
                })?;
            (Some(tx), Some(handle))
        } else {
            (None, None)
        };
        let store = Self {
            shared,
            commit_lock: Mutex::new(()),
            persist_tx,
            persister,
        };
        let replay = store.shared.log.blocks_after(through)?;
        for block in replay {
            let logged_root = block.header.state_root;
            let number = block.header.number;
            let committed = store.commit_staged(block, Some(logged_root))?;
            debug!(target: "storage", number, hash = %committed.header.hash(), "replayed block from the log");
        }
        store.load_top_nodes()?;
        Ok(store)
    }

    /// Reads the account trie's top levels into memory, so that the first blocks find them
    /// there as later ones do (at most [`top_nodes::TOP_DEPTH`] levels: bounded whatever the
    /// size of the state).
    fn load_top_nodes(&self) -> StoreResult<()> {
        let started = std::time::Instant::now();
        let reader = self.read()?;
        let nodes = LayeredTrie::committed(&reader, TrieId::Accounts).load_top_levels()?;
        debug!(
            target: "storage",
            nodes,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "top trie levels loaded"
        );
        Ok(())
    }

    /// Writes the genesis block if the database is empty, or checks that it holds the same
    /// genesis. Returns the head header.
    pub fn init_genesis(
        &self,
        genesis: &alloy::genesis::Genesis,
        header: &Header,
    ) -> StoreResult<SealedHeader> {
        if let Some(head) = self.read()?.head()? {
            let found = self.read()?.canonical_hash(0)?.unwrap_or_default();
            let expected = header.hash_slow();
            if found != expected {
                return Err(StoreError::GenesisMismatch { found, expected });
            }
            return Ok(head);
        }
        let changes = trie::genesis_changeset(&genesis.alloc);
        let txn = self.shared.db.begin_rw_txn()?;
        apply_state(&txn, 0, &changes)?;
        let mut header = header.clone();
        let expected_root = header.state_root;
        header.state_root = rebuild_state_root(&txn)?;
        if header.state_root != expected_root {
            return Err(corrupt(
                ACCOUNTS_TRIE,
                format!("genesis root {} != {expected_root}", header.state_root),
            ));
        }
        let sealed = header.seal_slow();
        write_block_data(&txn, &sealed, &[], &[], &[], &[])?;
        txn.commit()?;
        self.shared.reset_caches(Some(0));
        self.load_top_nodes()?;
        Ok(sealed)
    }

    /// A consistent read-only view of the database.
    pub fn read(&self) -> StoreResult<Reader<'_>> {
        self.shared.read()
    }

    /// Commits a block: computes its state root, makes it durable in the block log and readable,
    /// and queues it for the tables.
    pub fn commit_block(&self, block: NewBlock) -> StoreResult<Arc<CommittedBlock>> {
        self.commit_staged(block, None)
    }

    /// Stages, logs (unless `replayed_root` says the block came from the log, whose root it must
    /// reproduce) and publishes a block.
    fn commit_staged(
        &self,
        block: NewBlock,
        replayed_root: Option<B256>,
    ) -> StoreResult<Arc<CommittedBlock>> {
        let _commit = self.commit_lock.lock();
        if let Some(error) = &self.shared.progress.lock().error {
            return Err(StoreError::Persist(error.clone()));
        }
        let started = std::time::Instant::now();
        let state = StateIndex::new(&block.changes);
        let reader = self.read()?;
        let (root, tries) =
            overlay::stage_state_root(&reader, &block.changes, &state, &block.prior)?;
        drop(reader);
        let staged = started.elapsed();
        let NewBlock {
            mut header,
            transactions,
            senders,
            receipts,
            changes,
            system_logs,
            prior: _,
        } = block;
        if let Some(logged) = replayed_root
            && logged != root
        {
            return Err(corrupt(
                "Blocks",
                format!(
                    "block {} replays to root {root}, logged {logged}",
                    header.number
                ),
            ));
        }
        header.state_root = root;
        let committed = Arc::new(CommittedBlock {
            header: header.seal_slow(),
            transactions,
            senders,
            receipts,
            changes,
            system_logs,
        });
        if replayed_root.is_none() {
            let persisted = self.shared.progress.lock().through;
            self.shared.log.append(&committed, persisted)?;
        }
        let pending = Arc::new(PendingBlock::new(committed.clone(), state, tries));
        self.shared.pending.write().push(pending.clone());
        self.shared
            .hot_accounts
            .commit(committed.header.number, pending.state.changed_accounts());
        if let Some(tx) = &self.persist_tx {
            match tx.try_send(pending) {
                Ok(()) => {}
                Err(TrySendError::Full(pending)) => {
                    debug!(target: "storage", "persister behind; waiting");
                    tx.send(pending)
                        .map_err(|_| StoreError::Persist("persister stopped".into()))?;
                }
                Err(TrySendError::Disconnected(_)) => {
                    return Err(StoreError::Persist("persister stopped".into()));
                }
            }
        }
        debug!(
            target: "storage",
            number = committed.header.number,
            root_ms = staged.as_secs_f64() * 1e3,
            log_ms = (started.elapsed() - staged).as_secs_f64() * 1e3,
            "block committed"
        );
        Ok(committed)
    }

    /// Computes the state root the block would have, without committing anything (for verifying
    /// a proposed block).
    pub fn state_root_after(&self, changes: &StateChangeset) -> StoreResult<B256> {
        // Staging relies on no block being committed meanwhile (see `Reader::fork`).
        let _commit = self.commit_lock.lock();
        let state = StateIndex::new(changes);
        let prior = PriorState::default();
        Ok(overlay::stage_state_root(&self.read()?, changes, &state, &prior)?.0)
    }

    /// Reads what a block that changes `address` will read: its latest account, into the
    /// account cache, and the account-trie nodes on its path below the cached top levels, into
    /// the cache of deep nodes. A block changes the accounts its transactions name; reading them
    /// while the transactions wait in the pool keeps those reads (a few microseconds each from a
    /// large state's tables) off the sealing path.
    pub fn prefetch_account(&self, address: &Address) -> StoreResult<()> {
        let reader = self.read()?;
        let account = reader.state_at(None).account(address)?;
        // Only accounts without code are expected to have no storage; the leaf of any other is
        // read too.
        let leaf = account
            .filter(|account| account.code_hash == KECCAK_EMPTY)
            .map(|account| trie::account_leaf(&account, EMPTY_ROOT_HASH));
        LayeredTrie::committed(&reader, TrieId::Accounts)
            .read_ahead(&Nibbles::unpack(keccak256(address)), leaf.as_deref())
    }

    /// Whether the account cache holds `address`'s latest account.
    #[cfg(test)]
    pub(crate) fn caches_account(&self, address: &Address) -> bool {
        self.shared.hot_accounts.knows_latest(address)
    }

    /// Waits until the tables hold every committed block.
    pub fn flush(&self) -> StoreResult<()> {
        let mut progress = self.shared.progress.lock();
        loop {
            if let Some(error) = &progress.error {
                return Err(StoreError::Persist(error.clone()));
            }
            if self.shared.pending.read().is_empty() {
                return Ok(());
            }
            self.shared.persisted.wait(&mut progress);
        }
    }
}

impl Drop for Store {
    /// Lets the persister write what is queued, then stops it.
    fn drop(&mut self) {
        self.persist_tx.take();
        if let Some(persister) = self.persister.take() {
            let _ = persister.join();
        }
    }
}

impl Shared {
    /// Empties the in-memory caches of the tables' state, now at block `head`.
    fn reset_caches(&self, head: Option<u64>) {
        self.top_nodes.reset(head);
        self.deep_nodes.reset(head);
        self.hot_accounts.reset(head);
    }

    fn read(self: &Arc<Self>) -> StoreResult<Reader<'_>> {
        // Taken together under the lock: the persister drops blocks from `pending` only after the
        // tables hold them, so every block is in one or the other.
        let pending = self.pending.read();
        Reader::new(self.db.begin_ro_txn()?, pending.clone(), self)
    }
}

/// The persister: writes queued blocks to the tables, several per transaction when it is behind.
fn persist_loop(shared: &Shared, queue: Receiver<Arc<PendingBlock>>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_PERSIST_BATCH {
            match queue.try_recv() {
                Ok(block) => batch.push(block),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let result = persist_blocks(&shared.db, &batch);
        let through = batch.last().map(|b| b.number()).unwrap_or_default();
        match result {
            Ok(()) => {
                debug!(
                    target: "storage",
                    through,
                    blocks = batch.len(),
                    persist_ms = started.elapsed().as_secs_f64() * 1e3,
                    "blocks persisted"
                );
                // The caches move on before the blocks leave `pending`: a reader finds each node
                // in one or the other.
                let from = batch.first().map(|b| b.number() - 1);
                let edits = || batch.iter().map(|b| &b.tries);
                shared.top_nodes.advance(from, through, edits());
                shared.deep_nodes.advance(from, through, edits());
                shared.pending.write().retain(|p| p.number() > through);
                shared.progress.lock().through = through;
                shared.persisted.notify_all();
            }
            Err(e) => {
                error!(target: "storage", %e, through, "persisting blocks failed; they stay in the block log");
                shared.progress.lock().error = Some(e.to_string());
                shared.persisted.notify_all();
                return;
            }
        }
    }
}

/// Writes blocks, in order, to the tables in one durable transaction.
fn persist_blocks(db: &Database<NoWriteMap>, blocks: &[Arc<PendingBlock>]) -> StoreResult<()> {
    let txn = db.begin_rw_txn()?;
    for pending in blocks {
        let CommittedBlock {
            header,
            transactions,
            senders,
            receipts,
            changes,
            system_logs,
        } = &*pending.block;
        apply_state(&txn, pending.number(), changes)?;
        write_trie_edits(&txn, &pending.tries)?;
        write_block_data(&txn, header, transactions, senders, receipts, system_logs)?;
    }
    txn.commit()?;
    Ok(())
}

/// Writes a block's trie node edits.
fn write_trie_edits(txn: &Transaction<'_, RW, NoWriteMap>, edits: &TrieEdits) -> StoreResult<()> {
    use trie::NodeSink;
    for (hashed_address, storage) in &edits.storages {
        let mut trie = &DbTrie::storage(txn, hashed_address)?;
        if storage.cleared {
            trie.clear()?;
        }
        for (path, rlp) in &storage.nodes {
            trie.write(path, rlp.as_deref())?;
        }
    }
    let mut accounts = &DbTrie::accounts(txn)?;
    for (path, rlp) in &edits.accounts {
        accounts.write(path, rlp.as_deref())?;
    }
    Ok(())
}

/// Writes a sealed block's header, body, senders, receipts, system logs and transaction index,
/// and makes it the tables' head.
fn write_block_data(
    txn: &Transaction<'_, RW, NoWriteMap>,
    sealed: &SealedHeader,
    transactions: &[TxEnvelope],
    senders: &[Address],
    receipts: &[ReceiptEnvelope],
    system_logs: &[alloy::primitives::Log],
) -> StoreResult<()> {
    let number = sealed.number;
    let hash = sealed.hash();

    let mut buf = Vec::with_capacity(1024);
    sealed.inner().encode(&mut buf);
    txn.put(
        &txn.open_table(Some(HEADERS))?,
        block_key(number),
        &buf,
        WriteFlags::UPSERT,
    )?;
    txn.put(
        &txn.open_table(Some(CANONICAL_HASHES))?,
        block_key(number),
        hash,
        WriteFlags::UPSERT,
    )?;
    txn.put(
        &txn.open_table(Some(HEADER_NUMBERS))?,
        hash,
        block_key(number),
        WriteFlags::UPSERT,
    )?;

    buf.clear();
    alloy::rlp::encode_list::<TxEnvelope, _>(transactions, &mut buf);
    txn.put(
        &txn.open_table(Some(BODIES))?,
        block_key(number),
        &buf,
        WriteFlags::UPSERT,
    )?;
    let sender_bytes: Vec<u8> = senders.iter().flat_map(|s| s.0.0).collect();
    txn.put(
        &txn.open_table(Some(SENDERS))?,
        block_key(number),
        &sender_bytes,
        WriteFlags::UPSERT,
    )?;
    let encoded_receipts: Vec<Bytes> = receipts.iter().map(|r| r.encoded_2718().into()).collect();
    buf.clear();
    encoded_receipts.encode(&mut buf);
    txn.put(
        &txn.open_table(Some(RECEIPTS))?,
        block_key(number),
        &buf,
        WriteFlags::UPSERT,
    )?;
    if !system_logs.is_empty() {
        buf.clear();
        alloy::rlp::encode_list::<alloy::primitives::Log, _>(system_logs, &mut buf);
        txn.put(
            &txn.open_table(Some(SYSTEM_LOGS))?,
            block_key(number),
            &buf,
            WriteFlags::UPSERT,
        )?;
    }
    let lookup = txn.open_table(Some(TX_LOOKUP))?;
    for (index, tx) in transactions.iter().enumerate() {
        txn.put(
            &lookup,
            tx.tx_hash(),
            tx_location(number, index as u32),
            WriteFlags::UPSERT,
        )?;
    }
    txn.put(
        &txn.open_table(Some(META))?,
        META_HEAD,
        block_key(number),
        WriteFlags::UPSERT,
    )?;
    debug!(target: "storage", number, %hash, txs = transactions.len(), "block written");
    Ok(())
}

/// Applies a block's state changes: plain and hashed state, changesets, history index, code.
fn apply_state(
    txn: &Transaction<'_, RW, NoWriteMap>,
    number: u64,
    changes: &StateChangeset,
) -> StoreResult<()> {
    let plain_accounts = txn.open_table(Some(PLAIN_ACCOUNTS))?;
    let hashed_accounts = txn.open_table(Some(HASHED_ACCOUNTS))?;
    let plain_storage = txn.open_table(Some(PLAIN_STORAGE))?;
    let hashed_storage = txn.open_table(Some(HASHED_STORAGE))?;
    let account_changesets = txn.open_table(Some(ACCOUNT_CHANGESETS))?;
    let storage_changesets = txn.open_table(Some(STORAGE_CHANGESETS))?;
    let account_history = txn.open_table(Some(ACCOUNT_HISTORY))?;
    let storage_history = txn.open_table(Some(STORAGE_HISTORY))?;

    // Genesis has no earlier state to record: queries at any block read changes after it.
    let keep_history = number > 0;
    for (address, info) in &changes.accounts {
        if keep_history {
            let old: Option<Vec<u8>> = txn.get(&plain_accounts, address)?;
            txn.put(
                &account_changesets,
                account_changeset_key(number, address),
                old.unwrap_or_default(),
                WriteFlags::UPSERT,
            )?;
            txn.put(
                &account_history,
                account_history_key(address, number),
                [],
                WriteFlags::UPSERT,
            )?;
        }
        let hashed = keccak256(address);
        match info {
            Some(info) => {
                let enc = StoredAccount::from(info).encode();
                txn.put(&plain_accounts, address, enc, WriteFlags::UPSERT)?;
                txn.put(&hashed_accounts, hashed, enc, WriteFlags::UPSERT)?;
            }
            None => {
                txn.del(&plain_accounts, address, None)?;
                txn.del(&hashed_accounts, hashed, None)?;
            }
        }
    }

    let record_old = |address: &Address,
                      slot: &B256,
                      old: &U256,
                      recorded: &mut HashSet<B256>|
     -> StoreResult<()> {
        if keep_history && recorded.insert(*slot) {
            txn.put(
                &storage_changesets,
                storage_changeset_key(number, address, slot),
                encode_word(old),
                WriteFlags::UPSERT,
            )?;
            txn.put(
                &storage_history,
                storage_history_key(address, slot, number),
                [],
                WriteFlags::UPSERT,
            )?;
        }
        Ok(())
    };

    for change in &changes.storage {
        let address = change.address;
        let hashed_address = keccak256(address);
        let mut recorded = HashSet::new();
        if change.wipe_storage {
            let mut wiped = Vec::new();
            let mut cursor = txn.cursor(&plain_storage)?;
            let mut entry = cursor.set_range::<Vec<u8>, Vec<u8>>(address.as_slice())?;
            while let Some((key, value)) = entry {
                if !key.starts_with(address.as_slice()) {
                    break;
                }
                wiped.push((B256::from_slice(&key[20..]), decode_word(&value)));
                entry = cursor.next()?;
            }
            drop(cursor);
            for (slot, old) in wiped {
                record_old(&address, &slot, &old, &mut recorded)?;
                txn.del(&plain_storage, storage_key(&address, &slot), None)?;
                txn.del(
                    &hashed_storage,
                    hashed_storage_key(&hashed_address, &keccak256(slot)),
                    None,
                )?;
            }
        }
        for (slot, value) in &change.storage {
            let slot = B256::from(*slot);
            let key = storage_key(&address, &slot);
            let old = txn
                .get::<Vec<u8>>(&plain_storage, key)?
                .map(|v| decode_word(&v))
                .unwrap_or_default();
            record_old(&address, &slot, &old, &mut recorded)?;
            let hashed_key = hashed_storage_key(&hashed_address, &keccak256(slot));
            if value.is_zero() {
                txn.del(&plain_storage, key, None)?;
                txn.del(&hashed_storage, hashed_key, None)?;
            } else {
                txn.put(&plain_storage, key, encode_word(value), WriteFlags::UPSERT)?;
                txn.put(
                    &hashed_storage,
                    hashed_key,
                    encode_word(value),
                    WriteFlags::UPSERT,
                )?;
            }
        }
    }

    let bytecodes = txn.open_table(Some(BYTECODES))?;
    for (hash, code) in &changes.contracts {
        txn.put(
            &bytecodes,
            hash,
            code.original_byte_slice(),
            WriteFlags::UPSERT,
        )?;
    }
    Ok(())
}

/// A trie in one of the trie tables: the account trie (empty prefix) or one account's storage
/// trie (prefix: its hashed address).
struct DbTrie<'t, 'db> {
    txn: &'t Transaction<'db, RW, NoWriteMap>,
    table: Table<'t>,
    prefix: Vec<u8>,
}

impl<'t, 'db> DbTrie<'t, 'db> {
    fn accounts(txn: &'t Transaction<'db, RW, NoWriteMap>) -> StoreResult<Self> {
        Ok(Self {
            txn,
            table: txn.open_table(Some(ACCOUNTS_TRIE))?,
            prefix: vec![],
        })
    }

    fn storage(
        txn: &'t Transaction<'db, RW, NoWriteMap>,
        hashed_address: &B256,
    ) -> StoreResult<Self> {
        Ok(Self {
            txn,
            table: txn.open_table(Some(STORAGES_TRIE))?,
            prefix: hashed_address.to_vec(),
        })
    }

    /// Removes every node of this trie.
    fn clear(&self) -> StoreResult<()> {
        let mut cursor = self.txn.cursor(&self.table)?;
        while let Some((key, ())) = cursor.set_range::<Vec<u8>, ()>(&self.prefix)? {
            if !key.starts_with(&self.prefix) {
                break;
            }
            cursor.del(WriteFlags::empty())?;
        }
        Ok(())
    }
}

impl trie::NodeSink for &DbTrie<'_, '_> {
    fn write(&mut self, path: &alloy_trie::Nibbles, rlp: Option<&[u8]>) -> StoreResult<()> {
        let key = trie::node_key(&self.prefix, path);
        match rlp {
            Some(rlp) => self.txn.put(&self.table, key, rlp, WriteFlags::UPSERT)?,
            None => {
                self.txn.del(&self.table, key, None)?;
            }
        }
        Ok(())
    }
}

/// Builds every trie from the hashed state (genesis: the trie tables are empty).
fn rebuild_state_root(txn: &Transaction<'_, RW, NoWriteMap>) -> StoreResult<B256> {
    use alloy_trie::Nibbles;
    let mut storage_roots: std::collections::HashMap<B256, B256> = Default::default();
    /// One account's storage leaves, in key order.
    type StorageLeaves = (B256, Vec<(Nibbles, Vec<u8>)>);
    let mut pending: Option<StorageLeaves> = None;
    let mut finish = |entry: Option<StorageLeaves>| -> StoreResult<()> {
        if let Some((address, leaves)) = entry {
            let trie = DbTrie::storage(txn, &address)?;
            storage_roots.insert(address, trie::build_trie(&leaves, &mut &trie)?);
        }
        Ok(())
    };
    let hashed_storage = txn.open_table(Some(HASHED_STORAGE))?;
    for item in txn
        .cursor(&hashed_storage)?
        .iter_start::<Vec<u8>, Vec<u8>>()
    {
        let (key, value) = item?;
        let address = B256::from_slice(&key[..32]);
        if pending.as_ref().is_none_or(|(a, _)| *a != address) {
            finish(pending.take())?;
            pending = Some((address, Vec::new()));
        }
        if let Some((_, leaves)) = pending.as_mut() {
            leaves.push((
                Nibbles::unpack(&key[32..]),
                trie::storage_leaf(&decode_word(&value)),
            ));
        }
    }
    finish(pending.take())?;
    let hashed_accounts = txn.open_table(Some(HASHED_ACCOUNTS))?;
    let mut leaves = Vec::new();
    for item in txn
        .cursor(&hashed_accounts)?
        .iter_start::<Vec<u8>, Vec<u8>>()
    {
        let (key, value) = item?;
        let hashed = B256::from_slice(&key);
        let acc =
            StoredAccount::decode(&value).ok_or_else(|| corrupt(HASHED_ACCOUNTS, "account"))?;
        let storage_root = storage_roots
            .get(&hashed)
            .copied()
            .unwrap_or(alloy_trie::EMPTY_ROOT_HASH);
        leaves.push((
            Nibbles::unpack(hashed),
            trie::account_leaf(&acc, storage_root),
        ));
    }
    trie::build_trie(&leaves, &mut &DbTrie::accounts(txn)?)
}

/// A read-only snapshot of the database: the tables, and the committed blocks they do not hold
/// yet.
pub struct Reader<'db> {
    txn: Transaction<'db, RO, NoWriteMap>,
    /// Committed blocks past the tables' head, oldest first.
    pending: Vec<Arc<PendingBlock>>,
    /// The newest block the snapshot's tables hold.
    tables_head: Option<u64>,
    top_nodes: &'db TopNodes,
    deep_nodes: &'db DeepNodes,
    /// The store, for readers on threads of their own.
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

fn corrupt(table: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        table,
        detail: detail.to_string(),
    }
}

/// A table of a reader's snapshot, opened on first use and kept: opening a table looks it up by
/// name, which costs as much as a small read. For readers of many keys of one table.
pub(super) struct OpenTable<'r> {
    name: &'static str,
    table: std::cell::OnceCell<Table<'r>>,
}

impl<'r> OpenTable<'r> {
    /// Table `name`, not opened yet.
    pub(super) fn new(name: &'static str) -> Self {
        Self {
            name,
            table: std::cell::OnceCell::new(),
        }
    }

    /// The table, in `reader`'s snapshot (the reader every call must pass).
    fn open(&self, reader: &'r Reader<'_>) -> StoreResult<&Table<'r>> {
        if let Some(table) = self.table.get() {
            return Ok(table);
        }
        let table = reader.table(self.name)?;
        Ok(self.table.get_or_init(|| table))
    }
}

impl<'db> Reader<'db> {
    fn table(&self, name: &str) -> StoreResult<Table<'_>> {
        Ok(self.txn.open_table(Some(name))?)
    }

    fn get(&self, name: &str, key: impl AsRef<[u8]>) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.txn.get(&self.table(name)?, key)?)
    }

    /// The value at `key` of a table this reader opened.
    fn get_in<'r>(
        &'r self,
        table: &OpenTable<'r>,
        key: impl AsRef<[u8]>,
    ) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.txn.get(table.open(self)?, key)?)
    }

    /// The value at `key`, decoded straight from the snapshot's pages (no copy).
    fn get_decoded<T>(
        &self,
        name: &str,
        key: impl AsRef<[u8]>,
        decode: impl FnOnce(&[u8]) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let table = self.table(name)?;
        let value: Option<std::borrow::Cow<'_, [u8]>> = self.txn.get(&table, key)?;
        value.map(|value| decode(&value)).transpose()
    }

    /// [`Self::get_decoded`] in a table this reader opened.
    fn get_decoded_in<'r, T>(
        &'r self,
        table: &OpenTable<'r>,
        key: impl AsRef<[u8]>,
        decode: impl FnOnce(&[u8]) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let value: Option<std::borrow::Cow<'_, [u8]>> = self.txn.get(table.open(self)?, key)?;
        value.map(|value| decode(&value)).transpose()
    }

    /// A second view of the same committed blocks, through a snapshot of its own that is at
    /// least as new (for reading on another thread).
    fn fork(&self) -> StoreResult<Reader<'_>> {
        Reader::new(
            self.txn.db().begin_ro_txn()?,
            self.pending.clone(),
            &self.shared,
        )
    }

    fn new<'s>(
        txn: Transaction<'db, RO, NoWriteMap>,
        pending: Vec<Arc<PendingBlock>>,
        shared: &'s Arc<Shared>,
    ) -> StoreResult<Self>
    where
        's: 'db,
    {
        let mut reader = Reader {
            txn,
            pending,
            tables_head: None,
            top_nodes: &shared.top_nodes,
            deep_nodes: &shared.deep_nodes,
            shared: shared.clone(),
        };
        reader.tables_head = reader
            .get(META, META_HEAD)?
            .map(|v| decode_u64(&v).ok_or_else(|| corrupt(META, "head")))
            .transpose()?;
        Ok(reader)
    }

    /// Block `number` if it is committed but not yet in the tables.
    fn pending_block(&self, number: u64) -> Option<&PendingBlock> {
        let first = self.pending.first()?.number();
        let index = usize::try_from(number.checked_sub(first)?).ok()?;
        self.pending.get(index).map(|p| &**p)
    }

    /// Number of the newest committed block.
    pub fn head_number(&self) -> Option<u64> {
        self.pending
            .last()
            .map(|newest| newest.number())
            .or(self.tables_head)
    }

    /// The newest committed header.
    pub fn head(&self) -> StoreResult<Option<SealedHeader>> {
        match self.head_number() {
            Some(n) => self.sealed_header(n),
            None => Ok(None),
        }
    }

    /// Header of block `number`.
    pub fn header(&self, number: u64) -> StoreResult<Option<Header>> {
        if let Some(pending) = self.pending_block(number) {
            return Ok(Some(pending.block.header.inner().clone()));
        }
        self.get(HEADERS, block_key(number))?
            .map(|v| Header::decode(&mut v.as_slice()).map_err(|e| corrupt(HEADERS, e)))
            .transpose()
    }

    /// Header of block `number` with its hash.
    pub fn sealed_header(&self, number: u64) -> StoreResult<Option<SealedHeader>> {
        if let Some(pending) = self.pending_block(number) {
            return Ok(Some(pending.block.header.clone()));
        }
        let (Some(header), Some(hash)) = (self.header(number)?, self.canonical_hash(number)?)
        else {
            return Ok(None);
        };
        Ok(Some(Sealed::new_unchecked(header, hash)))
    }

    /// Hash of canonical block `number`.
    pub fn canonical_hash(&self, number: u64) -> StoreResult<Option<B256>> {
        if let Some(pending) = self.pending_block(number) {
            return Ok(Some(pending.block.header.hash()));
        }
        Ok(self
            .get(CANONICAL_HASHES, block_key(number))?
            .map(|v| B256::from_slice(&v)))
    }

    /// Number of the block with `hash`.
    pub fn block_number(&self, hash: B256) -> StoreResult<Option<u64>> {
        if let Some(pending) = self.pending.iter().find(|p| p.block.header.hash() == hash) {
            return Ok(Some(pending.number()));
        }
        self.get(HEADER_NUMBERS, hash)?
            .map(|v| decode_u64(&v).ok_or_else(|| corrupt(HEADER_NUMBERS, "number")))
            .transpose()
    }

    /// Transactions of block `number`.
    pub fn transactions(&self, number: u64) -> StoreResult<Option<Vec<TxEnvelope>>> {
        if let Some(pending) = self.pending_block(number) {
            return Ok(Some(pending.block.transactions.clone()));
        }
        self.get(BODIES, block_key(number))?
            .map(|v| Vec::<TxEnvelope>::decode(&mut v.as_slice()).map_err(|e| corrupt(BODIES, e)))
            .transpose()
    }

    /// Senders of block `number`'s transactions.
    pub fn senders(&self, number: u64) -> StoreResult<Option<Vec<Address>>> {
        if let Some(pending) = self.pending_block(number) {
            return Ok(Some(pending.block.senders.clone()));
        }
        Ok(self
            .get(SENDERS, block_key(number))?
            .map(|v| v.chunks_exact(20).map(Address::from_slice).collect()))
    }

    /// Receipts of block `number`.
    pub fn receipts(&self, number: u64) -> StoreResult<Option<Vec<ReceiptEnvelope>>> {
        if let Some(pending) = self.pending_block(number) {
            return Ok(Some(pending.block.receipts.clone()));
        }
        let Some(v) = self.get(RECEIPTS, block_key(number))? else {
            return Ok(None);
        };
        let encoded = Vec::<Bytes>::decode(&mut v.as_slice()).map_err(|e| corrupt(RECEIPTS, e))?;
        encoded
            .iter()
            .map(|b| {
                ReceiptEnvelope::decode_2718(&mut b.as_ref()).map_err(|e| corrupt(RECEIPTS, e))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Logs of block `number`'s system calls.
    pub fn system_logs(&self, number: u64) -> StoreResult<Vec<alloy::primitives::Log>> {
        if let Some(pending) = self.pending_block(number) {
            return Ok(pending.block.system_logs.clone());
        }
        self.get(SYSTEM_LOGS, block_key(number))?
            .map(|v| {
                Vec::<alloy::primitives::Log>::decode(&mut v.as_slice())
                    .map_err(|e| corrupt(SYSTEM_LOGS, e))
            })
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// `(block number, index)` of a mined transaction.
    pub fn transaction_location(&self, hash: B256) -> StoreResult<Option<(u64, u32)>> {
        for pending in &self.pending {
            if let Some(index) = pending.transaction_index(&hash) {
                return Ok(Some((pending.number(), index)));
            }
        }
        self.get(TX_LOOKUP, hash)?
            .map(|v| decode_tx_location(&v).ok_or_else(|| corrupt(TX_LOOKUP, "location")))
            .transpose()
    }

    /// State as of the end of block `number` (`None`: the latest state).
    pub fn state_at(&self, number: Option<u64>) -> StateDb<'_, 'db> {
        StateDb::new(self, number)
    }

    /// An EIP-1186 proof of an account and some of its storage slots in the latest state, read
    /// from the stored tries.
    pub fn proof(
        &self,
        address: Address,
        slots: &[B256],
    ) -> StoreResult<alloy::rpc::types::EIP1186AccountProofResponse> {
        use alloy::rpc::types::{EIP1186StorageProof, serde_helpers::JsonStorageKey};
        use alloy_trie::Nibbles;
        let hashed = keccak256(address);
        let account = self
            .state_at(None)
            .account(&address)?
            .unwrap_or(StoredAccount {
                code_hash: revm::primitives::KECCAK_EMPTY,
                ..Default::default()
            });
        let accounts = LayeredTrie::committed(self, TrieId::Accounts);
        let storage = LayeredTrie::committed(self, TrieId::Storage(hashed));
        let storage_hash = trie::NodeSource::node_rlp(&storage, &Nibbles::default())?
            .map(keccak256)
            .unwrap_or(alloy_trie::EMPTY_ROOT_HASH);
        let storage_proof = slots
            .iter()
            .map(|slot| {
                Ok(EIP1186StorageProof {
                    key: JsonStorageKey::Hash(*slot),
                    value: self.state_at(None).storage(&address, slot)?,
                    proof: trie::proof(&storage, &Nibbles::unpack(keccak256(slot)))?,
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok(alloy::rpc::types::EIP1186AccountProofResponse {
            address,
            balance: account.balance,
            code_hash: account.code_hash,
            nonce: account.nonce,
            storage_hash,
            account_proof: trie::proof(&accounts, &Nibbles::unpack(hashed))?,
            storage_proof,
        })
    }

    /// The state root recomputed from scratch from the *plain* tables, independently of the
    /// hashed tables and stored tries the commit path uses: a cross-check for tests (after
    /// [`Store::flush`], as it reads the tables alone).
    pub fn full_state_root_from_plain_state(&self) -> StoreResult<B256> {
        let accounts_table = self.table(PLAIN_ACCOUNTS)?;
        let storage_table = self.table(PLAIN_STORAGE)?;
        let mut storage: std::collections::HashMap<Address, Vec<(B256, U256)>> = Default::default();
        for item in self
            .txn
            .cursor(&storage_table)?
            .iter_start::<Vec<u8>, Vec<u8>>()
        {
            let (k, v) = item?;
            storage
                .entry(Address::from_slice(&k[..20]))
                .or_default()
                .push((B256::from_slice(&k[20..]), decode_word(&v)));
        }
        let mut accounts = Vec::new();
        for item in self
            .txn
            .cursor(&accounts_table)?
            .iter_start::<Vec<u8>, Vec<u8>>()
        {
            let (k, v) = item?;
            let address = Address::from_slice(&k);
            let acc =
                StoredAccount::decode(&v).ok_or_else(|| corrupt(PLAIN_ACCOUNTS, "account"))?;
            let storage_root = alloy_trie::root::storage_root_unhashed(
                storage.remove(&address).unwrap_or_default(),
            );
            accounts.push((
                address,
                alloy_trie::TrieAccount {
                    nonce: acc.nonce,
                    balance: acc.balance,
                    storage_root,
                    code_hash: acc.code_hash,
                },
            ));
        }
        Ok(alloy_trie::root::state_root_unhashed(accounts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chainspec::ChainSpec;
    use revm::{
        database::states::PlainStorageChangeset, primitives::KECCAK_EMPTY, state::AccountInfo,
    };

    fn account(balance: u64, nonce: u64) -> Option<AccountInfo> {
        Some(AccountInfo::new(
            U256::from(balance),
            nonce,
            KECCAK_EMPTY,
            Default::default(),
        ))
    }

    fn block_on(store: &Store, parent: &SealedHeader, changes: StateChangeset) -> SealedHeader {
        block_with_prior(store, parent, changes, PriorState::default())
    }

    /// Commits a block with `prior` values.
    fn block_with_prior(
        store: &Store,
        parent: &SealedHeader,
        changes: StateChangeset,
        prior: PriorState,
    ) -> SealedHeader {
        let header = Header {
            number: parent.number + 1,
            parent_hash: parent.hash(),
            timestamp: parent.timestamp + 1,
            ..Default::default()
        };
        store
            .commit_block(NewBlock {
                header,
                transactions: vec![],
                senders: vec![],
                receipts: vec![],
                changes,
                system_logs: vec![],
                prior,
            })
            .unwrap()
            .header
            .clone()
    }

    /// What `changes` change held at `store`'s latest block, as the builder reports it; every
    /// fifth value off by one (`seed` picks which), which the state root must not be misled by.
    fn prior_values(store: &Store, changes: &StateChangeset, seed: u64) -> PriorState {
        let reader = store.read().unwrap();
        let state = reader.state_at(None);
        let mut skew = seed;
        let mut next = move |value: U256| {
            skew += 1;
            if skew.is_multiple_of(5) {
                value + U256::from(1)
            } else {
                value
            }
        };
        let mut prior = PriorState::default();
        for (address, _) in &changes.accounts {
            if let Some(mut account) = state.account(address).unwrap() {
                account.balance = next(account.balance);
                prior.accounts.insert(*address, account);
            }
        }
        for change in &changes.storage {
            let mut slots = HashMap::default();
            for (slot, _) in &change.storage {
                let value = state.storage(&change.address, &B256::from(*slot)).unwrap();
                if !value.is_zero() {
                    slots.insert(*slot, next(value));
                }
            }
            prior.storage.insert(change.address, slots);
        }
        prior
    }

    /// Asserts that every node the cache of deep nodes holds is the one the tables hold;
    /// returns how many it holds.
    fn assert_deep_nodes_mirror_tables(store: &Store) -> usize {
        let reader = store.read().unwrap();
        let trie = LayeredTrie::committed(&reader, TrieId::Accounts);
        let cached = store.shared.deep_nodes.entries(reader.tables_head);
        for (path, node) in &cached {
            let table = trie.table_node(path).unwrap();
            assert_eq!(
                node.as_ref().map(trie::Node::rlp),
                table.as_ref().map(trie::Node::rlp),
                "{path:?}"
            );
        }
        cached.len()
    }

    /// `n` addresses whose hashes share their first five nibbles in pairs: their account-trie
    /// paths go below the cached top levels (a branch at the fifth level, leaves below).
    fn deep_pairs(n: usize) -> Vec<Address> {
        let mut by_prefix = HashMap::<[u8; 3], Address>::default();
        let mut pairs = Vec::new();
        for i in 0u64.. {
            let address = Address::from_word(keccak256((i + (7 << 40)).to_be_bytes()));
            let hash = keccak256(address);
            // Five nibbles: two bytes and the high half of the third.
            let prefix = [hash[0], hash[1], hash[2] & 0xf0];
            if let Some(other) = by_prefix.remove(&prefix) {
                pairs.extend([other, address]);
                if pairs.len() >= n {
                    return pairs;
                }
            } else {
                by_prefix.insert(prefix, address);
            }
        }
        unreachable!()
    }

    #[test]
    fn archive_reads_return_values_as_of_each_block() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ChainSpec::dev();
        let store = Store::open(dir.path()).unwrap();
        let genesis = store
            .init_genesis(&spec.genesis, spec.genesis_header())
            .unwrap();
        assert_eq!(genesis.state_root, spec.genesis_header().state_root);
        let a = Address::repeat_byte(0xaa);
        let slot = B256::with_last_byte(1);
        let storage = |v: u64| PlainStorageChangeset {
            address: a,
            wipe_storage: false,
            storage: vec![(U256::from(1), U256::from(v))],
        };
        let b1 = block_on(
            &store,
            &genesis,
            StateChangeset {
                accounts: vec![(a, account(100, 1))],
                storage: vec![storage(5)],
                contracts: vec![],
            },
        );
        let b2 = block_on(
            &store,
            &b1,
            StateChangeset {
                accounts: vec![(a, account(70, 2))],
                storage: vec![storage(0)],
                contracts: vec![],
            },
        );
        let b3 = block_on(
            &store,
            &b2,
            StateChangeset {
                accounts: vec![(a, None)],
                storage: vec![],
                contracts: vec![],
            },
        );

        let r = store.read().unwrap();
        let at = |n| {
            r.state_at(Some(n))
                .account(&a)
                .unwrap()
                .map(|x| (x.balance.to::<u64>(), x.nonce))
        };
        assert_eq!(at(0), None);
        assert_eq!(at(1), Some((100, 1)));
        assert_eq!(at(2), Some((70, 2)));
        assert_eq!(at(3), None);
        assert_eq!(
            r.state_at(Some(1)).storage(&a, &slot).unwrap(),
            U256::from(5)
        );
        assert_eq!(r.state_at(Some(2)).storage(&a, &slot).unwrap(), U256::ZERO);
        assert_eq!(r.state_at(None).storage(&a, &slot).unwrap(), U256::ZERO);
        // Each root differs and the head is the last block.
        assert_ne!(b1.state_root, b2.state_root);
        assert_eq!(
            b3.state_root, genesis.state_root,
            "deleting the only new account restores the genesis state"
        );
        assert_eq!(r.head().unwrap().unwrap().hash(), b3.hash());
        assert_eq!(r.block_number(b2.hash()).unwrap(), Some(2));
    }

    /// Asserts that the top-node cache holds every account-trie node of the cached levels, as
    /// the tables hold it; returns how many there are.
    fn assert_top_levels_cached(store: &Store) -> usize {
        let reader = store.read().unwrap();
        let table = reader.table(ACCOUNTS_TRIE).unwrap();
        let mut cached = 0;
        for item in reader
            .txn
            .cursor(&table)
            .unwrap()
            .iter_start::<Vec<u8>, Vec<u8>>()
        {
            let (key, rlp) = item.unwrap();
            let path = alloy_trie::Nibbles::from_nibbles(&key);
            if !top_nodes::TopNodes::covers(&path) {
                continue;
            }
            let node = store
                .shared
                .top_nodes
                .get(reader.tables_head, &path)
                .flatten()
                .unwrap_or_else(|| panic!("{path:?} not cached"));
            assert_eq!(node.rlp(), rlp, "{path:?}");
            cached += 1;
        }
        cached
    }

    #[test]
    fn top_trie_levels_are_cached_from_genesis_and_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut genesis = ChainSpec::dev().genesis;
        for i in 0..3000u64 {
            genesis.alloc.insert(
                Address::from_word(keccak256(i.to_be_bytes())),
                alloy::genesis::GenesisAccount::default().with_balance(U256::from(i + 1)),
            );
        }
        let spec = ChainSpec::from_genesis(genesis, ChainSpec::dev().params).unwrap();
        let head = {
            let store = Store::open(dir.path()).unwrap();
            let genesis = store
                .init_genesis(&spec.genesis, spec.genesis_header())
                .unwrap();
            // 16 + 256 + 2,816 paths at most, down to the fourth level where the 3,000 keys fan
            // out; the fourth holds only a few.
            assert!(assert_top_levels_cached(&store) > 16 + 256 + 1000);
            let head = block_on(
                &store,
                &genesis,
                StateChangeset {
                    accounts: vec![(Address::repeat_byte(1), account(1, 0))],
                    storage: vec![],
                    contracts: vec![],
                },
            );
            store.flush().unwrap();
            head
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.read().unwrap().tables_head, Some(head.number));
        assert!(assert_top_levels_cached(&store) > 16 + 256 + 1000);
    }

    #[test]
    fn reopen_resumes_and_foreign_genesis_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ChainSpec::dev();
        let head = {
            let store = Store::open(dir.path()).unwrap();
            let genesis = store
                .init_genesis(&spec.genesis, spec.genesis_header())
                .unwrap();
            block_on(
                &store,
                &genesis,
                StateChangeset {
                    accounts: vec![(Address::repeat_byte(1), account(1, 0))],
                    storage: vec![],
                    contracts: vec![],
                },
            )
        };
        let store = Store::open(dir.path()).unwrap();
        let resumed = store
            .init_genesis(&spec.genesis, spec.genesis_header())
            .unwrap();
        assert_eq!(
            (resumed.hash(), resumed.state_root),
            (head.hash(), head.state_root)
        );
        let mut other = spec.genesis_header().clone();
        other.timestamp = 42;
        assert!(matches!(
            store.init_genesis(&spec.genesis, &other),
            Err(StoreError::GenesisMismatch { .. })
        ));
    }

    #[test]
    fn incremental_root_equals_full_recomputation_over_random_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ChainSpec::dev();
        let store = Store::open(dir.path()).unwrap();
        let mut head = store
            .init_genesis(&spec.genesis, spec.genesis_header())
            .unwrap();
        // The same blocks on a store whose persister never runs: each is staged over all the
        // blocks before it in memory, then recovered from the block log alone.
        let paused_dir = tempfile::tempdir().unwrap();
        let paused = Store::open_with(paused_dir.path(), false).unwrap();
        let mut paused_head = paused
            .init_genesis(&spec.genesis, spec.genesis_header())
            .unwrap();
        let mut snapshots = Vec::new();
        let mut deep_cached = 0;
        let mut seed = 42u64;
        let mut rand = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        // A small address space so accounts are created, changed, deleted and created again;
        // some of it in pairs whose paths go below the cached top levels of the account trie.
        let addresses: Vec<Address> = (0..40u8)
            .map(Address::repeat_byte)
            .chain(deep_pairs(24))
            .collect();
        let big = Address::repeat_byte(0xbb);
        for block in 0..40 {
            let mut changes = StateChangeset::default();
            let mut used = HashSet::new();
            for _ in 0..1 + rand(12) {
                let a = addresses[rand(addresses.len() as u64) as usize];
                if !used.insert(a) {
                    continue;
                }
                match rand(6) {
                    // Destroyed (or created and self-destructed within the block): gone, storage wiped.
                    0 => {
                        changes.accounts.push((a, None));
                        changes.storage.push(PlainStorageChangeset {
                            address: a,
                            wipe_storage: true,
                            storage: vec![],
                        });
                    }
                    // Emptied of storage but alive.
                    1 => {
                        changes.accounts.push((a, account(rand(1000), rand(5))));
                        changes.storage.push(PlainStorageChangeset {
                            address: a,
                            wipe_storage: true,
                            storage: vec![(U256::from(rand(4)), U256::from(1 + rand(9)))],
                        });
                    }
                    // Balance or nonce change only.
                    2 => changes
                        .accounts
                        .push((a, account(rand(1_000_000), rand(100)))),
                    // Storage writes, some to zero (slot deleted).
                    _ => {
                        changes.accounts.push((a, account(1 + rand(1000), rand(5))));
                        let slots = (0..1 + rand(6))
                            .map(|_| {
                                (
                                    U256::from(rand(8)),
                                    U256::from(rand(3) * (1 + rand(1 << 20))),
                                )
                            })
                            .collect();
                        changes.storage.push(PlainStorageChangeset {
                            address: a,
                            wipe_storage: false,
                            storage: dedup(slots),
                        });
                    }
                }
            }
            // Every few blocks, hundreds of accounts at once (the account trie is then updated
            // on several threads): created, changed and removed again.
            if block % 4 == 3 {
                for i in 0..400u64 {
                    let a = Address::from_word(keccak256((i + 1000 * rand(2)).to_be_bytes()));
                    if used.insert(a) {
                        let info = (rand(3) > 0).then(|| account(1 + rand(1000), 0)).flatten();
                        changes.accounts.push((a, info));
                    }
                }
            }
            // A contract with large storage, touched every few blocks.
            if block % 5 == 0 {
                changes.accounts.push((big, account(1, 1)));
                let slots = (0..300u64)
                    .map(|i| (U256::from(i + rand(600)), U256::from(rand(4) * (i + 1))))
                    .collect();
                changes.storage.push(PlainStorageChangeset {
                    address: big,
                    wipe_storage: false,
                    storage: dedup(slots),
                });
            }
            // Half the changed accounts' paths read ahead, as the pool does for a transaction's
            // sender and callee (the other half the commit reads itself); on the paused store,
            // through the blocks in memory.
            for (address, _) in changes.accounts.iter().step_by(2) {
                store.prefetch_account(address).unwrap();
                paused.prefetch_account(address).unwrap();
            }
            let prior = prior_values(&store, &changes, block);
            paused_head = block_with_prior(&paused, &paused_head, changes.clone(), prior.clone());
            head = block_with_prior(&store, &head, changes, prior);
            assert_eq!(paused_head.hash(), head.hash(), "block {}", head.number);
            store.flush().unwrap();
            // Rewritten by the blocks persisted since they were read.
            deep_cached += assert_deep_nodes_mirror_tables(&store);
            snapshots.push(snapshot(&store.read().unwrap(), &addresses, head.number));
            let full = store
                .read()
                .unwrap()
                .full_state_root_from_plain_state()
                .unwrap();
            assert_eq!(head.state_root, full, "block {}", head.number);
        }
        assert!(deep_cached > 100, "{deep_cached} deep nodes cached");
        // The state root the verifier path computes without committing agrees too.
        let changes = StateChangeset {
            accounts: vec![(big, None)],
            storage: vec![PlainStorageChangeset {
                address: big,
                wipe_storage: true,
                storage: vec![],
            }],
            contracts: vec![],
        };
        let predicted = store.state_root_after(&changes).unwrap();
        assert_eq!(block_on(&store, &head, changes).state_root, predicted);

        // Every block served from memory reads as the persisted one does, at every height.
        let reader = paused.read().unwrap();
        assert_eq!(reader.tables_head, Some(0));
        for (number, expected) in snapshots.iter().enumerate() {
            assert_eq!(&snapshot(&reader, &addresses, number as u64 + 1), expected);
        }
        drop(reader);
        drop(paused);
        // Reopened, the store replays the log (checking each root) and persists it.
        let recovered = Store::open(paused_dir.path()).unwrap();
        assert_eq!(
            recovered.read().unwrap().head().unwrap().unwrap().hash(),
            paused_head.hash()
        );
        recovered.flush().unwrap();
        let reader = recovered.read().unwrap();
        assert_eq!(reader.tables_head, Some(paused_head.number));
        assert_eq!(
            reader.full_state_root_from_plain_state().unwrap(),
            paused_head.state_root
        );
        for (number, expected) in snapshots.iter().enumerate() {
            assert_eq!(&snapshot(&reader, &addresses, number as u64 + 1), expected);
        }
    }

    /// Block `number` as a reader sees it: its hash and the accounts and slots 0..8 of
    /// `addresses` after it.
    fn snapshot(reader: &Reader<'_>, addresses: &[Address], number: u64) -> String {
        let state = reader.state_at(Some(number));
        let mut out = format!("{:?}\n", reader.canonical_hash(number).unwrap());
        for a in addresses.iter().chain([&Address::repeat_byte(0xbb)]) {
            let slots: Vec<U256> = (0..8u64)
                .map(|i| state.storage(a, &B256::from(U256::from(i))).unwrap())
                .collect();
            out += &format!("{a} {:?} {slots:?}\n", state.account(a).unwrap());
        }
        out
    }

    fn dedup(slots: Vec<(U256, U256)>) -> Vec<(U256, U256)> {
        let map: std::collections::BTreeMap<U256, U256> = slots.into_iter().collect();
        map.into_iter().collect()
    }
}
