//! The account-trie nodes a block will update, read ahead of its commit.
//!
//! A block's state root reads the account-trie nodes on the path to every account it changed.
//! The accounts are known transaction by transaction as the block executes; a second thread
//! reads (and decodes) those nodes once the transactions have run, while the block is assembled
//! and its commit prepares the changed leaves, so that the root then only edits and hashes.
//! (During execution the other core is the block roots thread's, which sealing waits for.) The
//! nodes are those of the state the reader saw: a commit uses them only if that is still the
//! latest block.
//!
//! The builder also hands over the accounts its next transactions name (senders and
//! recipients) before it executes them. The thread reads those at once, into the store's
//! account cache, so that execution finds them in memory; their trie paths wait with the rest.

use super::{
    Reader, Shared, StoreError, StoreResult, StoredAccount, overlay::LayeredTrie, overlay::TrieId,
    top_nodes::TOP_DEPTH,
};
use crate::trie::{self, WarmNodes};
use alloy::primitives::{
    Address, B256, KECCAK256_EMPTY as KECCAK_EMPTY, keccak256, map::AddressSet,
};
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles};
use std::{
    collections::VecDeque,
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

/// What the reading thread is handed.
#[derive(Debug)]
enum Request {
    /// Accounts the block's next transactions name: read them, then their trie paths.
    Upcoming(Vec<Address>),
    /// Accounts the block changed: read their trie paths.
    Changed(ChangedAccounts),
    /// The block's transactions have run: the paths may be read now.
    Executed,
}

/// The thread reading the accounts handed to it, until stopped (or, dropped uncommitted, until
/// it has read those).
#[derive(Debug)]
struct ReadingThread {
    to_thread: mpsc::Sender<Request>,
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
            state: WarmState::Read(self.read_nodes(accounts)?),
        })
    }

    #[cfg(test)]
    fn read_nodes(
        self,
        accounts: impl IntoIterator<Item = (Address, Option<StoredAccount>)>,
    ) -> StoreResult<ReadNodes> {
        let mut nodes = WarmNodes::default();
        let trie = LayeredTrie::committed(&self.reader, TrieId::Accounts);
        for (address, prior) in accounts {
            read_account_path(&mut nodes, &trie, address, prior)?;
        }
        self.into_read(nodes)
    }

    /// Serves `requests` until they hang up and every path is read, or until `stop`. Requests go
    /// before paths, and paths wait until the transactions have run: execution waits for no
    /// trie node, but may be about to read an account, and the block's roots thread, which
    /// sealing does wait for, shares the other core with this one meanwhile.
    fn serve(self, requests: mpsc::Receiver<Request>, stop: &AtomicBool) -> StoreResult<ReadNodes> {
        let mut nodes = WarmNodes::default();
        let trie = LayeredTrie::committed(&self.reader, TrieId::Accounts);
        let state = self.reader.state_at(None);
        let mut paths = VecDeque::new();
        let mut queued = AddressSet::default();
        let mut executed = false;
        while !stop.load(Ordering::Relaxed) {
            let request = match paths.is_empty() || !executed {
                true => match requests.recv() {
                    Ok(request) => Some(request),
                    // Hung up on: the paths left are read.
                    Err(_) if !executed => Some(Request::Executed),
                    Err(_) => None,
                },
                false => requests.try_recv().ok(),
            };
            match request {
                Some(Request::Upcoming(addresses)) => {
                    for address in addresses {
                        if queued.insert(address) {
                            let prior = state.account(&address)?;
                            paths.push_back((address, prior));
                        }
                    }
                }
                Some(Request::Changed(changed)) => paths.extend(
                    changed
                        .into_iter()
                        .filter(|(address, _)| queued.insert(*address)),
                ),
                Some(Request::Executed) => executed = true,
                None => match paths.pop_front() {
                    Some((address, prior)) => read_account_path(&mut nodes, &trie, address, prior)?,
                    // Hung up on, and every path read.
                    None => break,
                },
            }
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
    /// Starts the reading thread, over the store's latest state.
    pub(super) fn spawn(shared: Arc<Shared>) -> StoreResult<Self> {
        let (to_thread, requests) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        const NAME: &str = "trie-read-ahead";
        let thread = std::thread::Builder::new()
            .name(NAME.into())
            .spawn(move || TrieWarmer::new(shared.read()?).serve(requests, &stopped))
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
        self.request(Request::Changed(accounts));
    }

    /// Tells the reading thread that the block's transactions have run: it reads the trie paths
    /// handed to it from now on.
    pub fn executed(&self) {
        self.request(Request::Executed);
    }

    /// Hands the accounts the block's next transactions name to the reading thread, to read
    /// ahead of their execution.
    pub fn upcoming(&self, accounts: Vec<Address>) {
        self.request(Request::Upcoming(accounts));
    }

    fn request(&self, request: Request) {
        #[cfg_attr(not(test), allow(irrefutable_let_patterns))]
        if let WarmState::Reading(reading) = &self.state {
            // The thread only ends when stopped or hung up on.
            let _ = reading.to_thread.send(request);
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
            #[cfg(test)]
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
