//! Polling filters (`eth_newFilter`, `eth_newBlockFilter`, `eth_newPendingTransactionFilter`)
//! and their expiry.

use alloy::{
    primitives::{B256, U256},
    rpc::types::Filter,
};
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};
use tokio::sync::broadcast;

/// A filter unused for this long is removed (geth's default).
const FILTER_TIMEOUT: Duration = Duration::from_secs(300);

/// What a filter watches, and where its last poll ended.
#[derive(Debug)]
pub(crate) enum FilterKind {
    /// New block hashes after `last_block`.
    Blocks {
        /// Last block reported.
        last_block: u64,
    },
    /// Logs matching the filter in blocks after `last_block`.
    Logs {
        /// The criteria.
        filter: Box<Filter>,
        /// Last block reported.
        last_block: u64,
    },
    /// Hashes of transactions entering the pool.
    PendingTransactions(broadcast::Receiver<B256>),
}

#[derive(Debug)]
struct Installed {
    kind: FilterKind,
    last_poll: Instant,
}

/// The installed filters.
#[derive(Debug, Default)]
pub(crate) struct Filters {
    next_id: AtomicU64,
    installed: Mutex<HashMap<U256, Installed>>,
}

impl Filters {
    /// Installs a filter and returns its id.
    pub(crate) fn install(&self, kind: FilterKind) -> U256 {
        let id = U256::from(self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let mut installed = self.installed.lock();
        installed.retain(|_, f| f.last_poll.elapsed() < FILTER_TIMEOUT);
        installed.insert(
            id,
            Installed {
                kind,
                last_poll: Instant::now(),
            },
        );
        id
    }

    /// Removes a filter; `false` if there was none.
    pub(crate) fn uninstall(&self, id: U256) -> bool {
        self.installed.lock().remove(&id).is_some()
    }

    /// Runs `f` on a filter, refreshing its expiry; `None` if it does not exist.
    pub(crate) fn with<T>(&self, id: U256, f: impl FnOnce(&mut FilterKind) -> T) -> Option<T> {
        let mut installed = self.installed.lock();
        let entry = installed.get_mut(&id)?;
        entry.last_poll = Instant::now();
        Some(f(&mut entry.kind))
    }
}
