//! Polling filters (`eth_newFilter`, `eth_newBlockFilter`, `eth_newPendingTransactionFilter`),
//! their limits and their expiry.

use super::error::{RpcResult, invalid_params, server_error};
use alloy::{
    primitives::{B256, U256},
    rpc::types::Filter,
};
use parking_lot::{Mutex, RwLock};
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::broadcast;

/// A filter unused for this long is removed (geth's default).
pub(crate) const FILTER_TIMEOUT: Duration = Duration::from_secs(300);
/// Most filters installed at once.
pub(crate) const MAX_FILTERS: usize = 10_000;
/// Most addresses plus topic values one log filter may name (its matching cost and memory).
pub(crate) const MAX_FILTER_CRITERIA: usize = 1_000;

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

/// The installed filters. Each has a lock of its own: a slow poll holds up no other filter.
#[derive(Debug)]
pub(crate) struct Filters {
    timeout: Duration,
    installed: RwLock<HashMap<U256, Arc<Mutex<Installed>>>>,
}

impl Default for Filters {
    fn default() -> Self {
        Self::with_timeout(FILTER_TIMEOUT)
    }
}

/// Refuses a log filter naming more addresses and topics than [`MAX_FILTER_CRITERIA`].
pub(crate) fn check_criteria(filter: &Filter) -> RpcResult<()> {
    let criteria = filter.address.len() + filter.topics.iter().map(|t| t.len()).sum::<usize>();
    if criteria > MAX_FILTER_CRITERIA {
        return Err(invalid_params(format!(
            "filter names {criteria} addresses and topics, more than {MAX_FILTER_CRITERIA}"
        )));
    }
    Ok(())
}

impl Filters {
    /// No filters; each expires when unused for `timeout`.
    pub(crate) fn with_timeout(timeout: Duration) -> Self {
        Self {
            timeout,
            installed: RwLock::default(),
        }
    }

    /// Installs a filter and returns its id; an error when [`MAX_FILTERS`] are installed.
    pub(crate) fn install(&self, kind: FilterKind) -> RpcResult<U256> {
        if self.installed.read().len() >= MAX_FILTERS {
            self.expire();
        }
        let mut installed = self.installed.write();
        if installed.len() >= MAX_FILTERS {
            return Err(server_error(format!(
                "too many filters installed (limit {MAX_FILTERS})"
            )));
        }
        // Random, as geth's: another client cannot guess an id to poll or remove the filter.
        let id = loop {
            let id = U256::from_be_bytes(rand::random::<[u8; 32]>()) >> 128;
            if !installed.contains_key(&id) {
                break id;
            }
        };
        installed.insert(
            id,
            Arc::new(Mutex::new(Installed {
                kind,
                last_poll: Instant::now(),
            })),
        );
        Ok(id)
    }

    /// Removes a filter; `false` if there was none.
    pub(crate) fn uninstall(&self, id: U256) -> bool {
        self.installed.write().remove(&id).is_some()
    }

    /// Runs `f` on a filter, refreshing its expiry; `None` if it does not exist.
    pub(crate) fn with<T>(&self, id: U256, f: impl FnOnce(&mut FilterKind) -> T) -> Option<T> {
        let filter = self.installed.read().get(&id).cloned()?;
        let mut filter = filter.lock();
        filter.last_poll = Instant::now();
        Some(f(&mut filter.kind))
    }

    /// Removes the filters unused for their timeout (one being polled is in use).
    pub(crate) fn expire(&self) {
        self.installed.write().retain(|_, filter| {
            filter
                .try_lock()
                .is_none_or(|f| f.last_poll.elapsed() < self.timeout)
        });
    }

    /// Number of installed filters.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.installed.read().len()
    }
}

/// Expires filters every tenth of their timeout, until `filters` is dropped.
pub(crate) fn spawn_expiry(filters: &Arc<Filters>) {
    let period = filters.timeout / 10;
    let filters = Arc::downgrade(filters);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let Some(filters) = filters.upgrade() else {
                return;
            };
            filters.expire();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_are_bounded_and_criteria_counted() {
        let filters = Filters::default();
        for _ in 0..MAX_FILTERS {
            filters
                .install(FilterKind::Blocks { last_block: 0 })
                .unwrap();
        }
        assert!(
            filters
                .install(FilterKind::Blocks { last_block: 0 })
                .is_err()
        );
        assert_eq!(filters.len(), MAX_FILTERS);
        let addresses: Vec<_> = (0..=MAX_FILTER_CRITERIA as u64)
            .map(|i| alloy::primitives::Address::with_last_byte(i as u8).create(i))
            .collect();
        assert!(check_criteria(&Filter::new().address(addresses[1..].to_vec())).is_ok());
        assert!(check_criteria(&Filter::new().address(addresses)).is_err());
    }

    #[test]
    fn unused_filters_expire_and_polled_ones_stay() {
        let filters = Filters::with_timeout(Duration::from_millis(50));
        let polled = filters
            .install(FilterKind::Blocks { last_block: 0 })
            .unwrap();
        let idle = filters
            .install(FilterKind::Blocks { last_block: 0 })
            .unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert!(filters.with(polled, |_| ()).is_some());
        std::thread::sleep(Duration::from_millis(30));
        filters.expire();
        assert!(filters.with(idle, |_| ()).is_none());
        assert!(filters.with(polled, |_| ()).is_some());
    }
}
