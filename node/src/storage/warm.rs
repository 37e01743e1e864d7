//! The account-trie nodes a block will update, read ahead of its commit.
//!
//! A block's state root reads the account-trie nodes on the path to every account it changed.
//! Once the block's transactions have run, a second thread reads (and decodes) those nodes while
//! the block is assembled and its commit prepares the changed leaves, so that the root then only
//! edits and hashes. (During execution the other core is the block roots thread's, which sealing
//! waits for; the accounts execution reads were read into the store's account cache when the
//! pool admitted their transactions.) The nodes are those of the state the reader saw: a commit
//! uses them only if that is still the latest block.

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
    },
    thread::JoinHandle,
};
use tracing::debug;

/// Reads account-trie paths ahead of a block's commit, through a snapshot of its own.
#[derive(Debug)]
pub(super) struct TrieWarmer<'db> {
    reader: Reader<'db>,
}

/// Changed accounts, each with its value before the block (`None`: it did not exist).
pub type ChangedAccounts = Vec<(Address, Option<StoredAccount>)>;

/// Account-trie nodes read ahead of a block's commit, on a thread of their own
/// ([`Reader::trie_read_ahead`]); tests also make them read, in order ([`TrieWarmer::read`]).
#[derive(Debug)]
pub struct WarmTrie {
    state: WarmState,
}

#[derive(Debug)]
enum WarmState {
    Reading(ReadingThread),
    #[cfg(test)]
    Read(ReadNodes),
}

/// The nodes, with the state they were read at.
#[derive(Debug)]
struct ReadNodes {
    /// Hash of the latest block when they were read (`None`: no block yet).
    at: Option<B256>,
    nodes: WarmNodes,
}

/// The thread reading the paths, until it has read them all or is stopped.
#[derive(Debug)]
struct ReadingThread {
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
    #[cfg(test)]
    pub(super) fn read(
        self,
        accounts: impl IntoIterator<Item = (Address, Option<StoredAccount>)>,
    ) -> StoreResult<WarmTrie> {
        Ok(WarmTrie {
            state: WarmState::Read(self.read_nodes(accounts, &AtomicBool::new(false))?),
        })
    }

    /// Reads the paths of `accounts`, in order, until `stop`.
    fn read_nodes(
        self,
        accounts: impl IntoIterator<Item = (Address, Option<StoredAccount>)>,
        stop: &AtomicBool,
    ) -> StoreResult<ReadNodes> {
        let mut nodes = WarmNodes::default();
        let trie = LayeredTrie::committed(&self.reader, TrieId::Accounts);
        for (address, prior) in accounts {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            read_account_path(&mut nodes, &trie, address, prior)?;
        }
        self.into_read(nodes)
    }

    fn into_read(self, nodes: WarmNodes) -> StoreResult<ReadNodes> {
        Ok(ReadNodes {
            at: self.reader.head()?.map(|head| head.hash()),
            nodes,
        })
    }
}

/// Reads the account-trie nodes that changing `address`, whose value before the block was
/// `prior`, will read.
fn read_account_path(
    nodes: &mut WarmNodes,
    trie: &LayeredTrie<'_, '_>,
    address: Address,
    prior: Option<StoredAccount>,
) -> StoreResult<()> {
    // Only accounts without code are expected to have no storage.
    let prior_leaf = prior
        .filter(|account| account.code_hash == KECCAK_EMPTY)
        .map(|account| trie::account_leaf(&account, EMPTY_ROOT_HASH));
    nodes.read_path(
        trie,
        &Nibbles::unpack(keccak256(address)),
        TOP_DEPTH,
        prior_leaf.as_deref(),
    )
}

impl WarmTrie {
    /// Starts the thread reading the paths of `accounts`, over the store's latest state.
    pub(super) fn spawn(shared: Arc<Shared>, accounts: ChangedAccounts) -> StoreResult<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        const NAME: &str = "trie-read-ahead";
        let thread = std::thread::Builder::new()
            .name(NAME.into())
            .spawn(move || TrieWarmer::new(shared.read()?).read_nodes(accounts, &stopped))
            .map_err(|error| StoreError::Thread { name: NAME, error })?;
        Ok(Self {
            state: WarmState::Reading(ReadingThread { stop, thread }),
        })
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
            #[cfg(test)]
            WarmState::Read(read) => read,
            WarmState::Reading(reading) => {
                reading.stop.store(true, Ordering::Relaxed);
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
