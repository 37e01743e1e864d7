//! The account-trie nodes a block will update, read while it executes.
//!
//! A block's state root reads the account-trie nodes on the path to every account it changed.
//! The accounts are known transaction by transaction as the block executes, so a second thread
//! can read (and decode) those nodes meanwhile, and on while the block is assembled and its
//! commit prepares the changed leaves; the root then only edits and hashes. The nodes are those
//! of the state the reader saw: a commit uses them only if that is still the latest block.

use super::{
    Reader, Shared, StoreError, StoreResult, StoredAccount, overlay::LayeredTrie, overlay::TrieId,
    top_nodes::TOP_DEPTH,
};
use crate::trie::{self, WarmNodes};
use alloy::primitives::{Address, B256, KECCAK256_EMPTY as KECCAK_EMPTY, keccak256};
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
};
use tracing::debug;

/// Reads account-trie paths ahead of a block's commit, through a snapshot of its own.
#[derive(Debug)]
pub struct TrieWarmer<'db> {
    reader: Reader<'db>,
}

/// Changed accounts, each with its value before the block (`None`: it did not exist).
pub type ChangedAccounts = Vec<(Address, Option<StoredAccount>)>;

/// Account-trie nodes read ahead of a block's commit: still being read on a thread of their own
/// ([`Reader::trie_read_ahead`]), or read ([`TrieWarmer::read`]).
#[derive(Debug)]
pub struct WarmTrie {
    state: WarmState,
}

#[derive(Debug)]
enum WarmState {
    Reading(ReadingThread),
    Read(ReadNodes),
}

/// The nodes, with the state they were read at.
#[derive(Debug)]
struct ReadNodes {
    /// Hash of the latest block when they were read (`None`: no block yet).
    at: Option<B256>,
    nodes: WarmNodes,
}

/// The thread reading the accounts handed to it, until stopped (or, dropped uncommitted, until
/// it has read those).
#[derive(Debug)]
struct ReadingThread {
    to_thread: mpsc::Sender<ChangedAccounts>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<StoreResult<ReadNodes>>,
}

impl<'db> TrieWarmer<'db> {
    pub(super) fn new(reader: Reader<'db>) -> Self {
        Self { reader }
    }

    /// Reads the account-trie nodes that changing each of `accounts` will read, for
    /// [`super::NewBlock::warm_trie`]. An account's leaf is not read if it is the one its value
    /// before the block (without storage) makes: the state root replaces that without reading
    /// it.
    pub fn read(
        self,
        accounts: impl IntoIterator<Item = (Address, Option<StoredAccount>)>,
    ) -> StoreResult<WarmTrie> {
        Ok(WarmTrie {
            state: WarmState::Read(self.read_nodes(accounts)?),
        })
    }

    fn read_nodes(
        self,
        accounts: impl IntoIterator<Item = (Address, Option<StoredAccount>)>,
    ) -> StoreResult<ReadNodes> {
        let mut nodes = WarmNodes::default();
        let trie = LayeredTrie::committed(&self.reader, TrieId::Accounts);
        for (address, prior) in accounts {
            // Only accounts without code are expected to have no storage.
            let prior_leaf = prior
                .filter(|account| account.code_hash == KECCAK_EMPTY)
                .map(|account| trie::account_leaf(&account, EMPTY_ROOT_HASH));
            nodes.read_path(
                &trie,
                &Nibbles::unpack(keccak256(address)),
                TOP_DEPTH,
                prior_leaf.as_deref(),
            )?;
        }
        Ok(ReadNodes {
            at: self.reader.head()?.map(|head| head.hash()),
            nodes,
        })
    }
}

impl WarmTrie {
    /// Starts the reading thread, over the store's latest state.
    pub(super) fn spawn(shared: Arc<Shared>) -> StoreResult<Self> {
        let (to_thread, changed) = mpsc::channel::<ChangedAccounts>();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        const NAME: &str = "trie-read-ahead";
        let thread = std::thread::Builder::new()
            .name(NAME.into())
            .spawn(move || {
                TrieWarmer::new(shared.read()?).read_nodes(
                    changed
                        .into_iter()
                        .flatten()
                        .take_while(|_| !stopped.load(Ordering::Relaxed)),
                )
            })
            .map_err(|error| StoreError::Thread { name: NAME, error })?;
        Ok(Self {
            state: WarmState::Reading(ReadingThread {
                to_thread,
                stop,
                thread,
            }),
        })
    }

    /// Hands `accounts`, changed by the block, to the reading thread (if it still reads).
    pub fn read(&self, accounts: ChangedAccounts) {
        if let WarmState::Reading(reading) = &self.state {
            // The thread only ends when stopped or hung up on.
            let _ = reading.to_thread.send(accounts);
        }
    }

    /// Whether these nodes, read, were read at `reader`'s latest block.
    #[cfg(test)]
    pub(super) fn is_current_at(&self, reader: &Reader<'_>) -> bool {
        match &self.state {
            WarmState::Read(read) => reader.head().unwrap().map(|head| head.hash()) == read.at,
            WarmState::Reading(_) => panic!("still reading"),
        }
    }

    /// Stops reading; the nodes read, if they were read at `reader`'s latest block.
    pub(super) fn into_nodes_at(self, reader: &Reader<'_>) -> StoreResult<Option<WarmNodes>> {
        let read = match self.state {
            WarmState::Read(read) => read,
            WarmState::Reading(reading) => {
                reading.stop.store(true, Ordering::Relaxed);
                drop(reading.to_thread);
                match reading.thread.join() {
                    Ok(Ok(read)) => read,
                    // Only a shortcut: the commit reads (and reports failures of) the same nodes.
                    Ok(Err(error)) => {
                        debug!(target: "storage", %error, "trie read-ahead failed");
                        return Ok(None);
                    }
                    Err(_) => {
                        debug!(target: "storage", "trie read-ahead thread panicked");
                        return Ok(None);
                    }
                }
            }
        };
        let latest = reader.head()?.map(|head| head.hash());
        if latest != read.at {
            debug!(target: "storage", "trie nodes read ahead are of an older state; unused");
            return Ok(None);
        }
        Ok(Some(read.nodes))
    }
}
