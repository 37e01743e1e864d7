//! Dev block production: a single local sealer that seals on an interval, or, with a block time
//! of zero, as soon as transactions arrive. The consensus engine replaces this driver; the
//! builder and storage underneath stay the same.

use crate::node::Node;
use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};
use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tracing::error;

/// The standard test mnemonic (anvil's and hardhat's), whose first ten accounts the dev
/// genesis funds.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// The first `count` accounts of [`DEV_MNEMONIC`].
pub fn dev_accounts(count: u32) -> eyre::Result<Vec<PrivateKeySigner>> {
    (0..count)
        .map(|i| {
            Ok(MnemonicBuilder::<English>::default()
                .phrase(DEV_MNEMONIC)
                .index(i)?
                .build()?)
        })
        .collect()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

async fn seal(node: &Arc<Node>) {
    let node = node.clone();
    match tokio::task::spawn_blocking(move || node.seal_next_block(now_secs())).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => error!(target: "dev", %e, "sealing failed"),
        Err(e) => error!(target: "dev", %e, "sealing task panicked"),
    }
}

/// Seals blocks forever: every `block_time`, or on arrival of transactions when it is zero.
pub async fn run_sealer(node: Arc<Node>, block_time: Duration) {
    if block_time.is_zero() {
        loop {
            node.pool.added.notified().await;
            // Seal until everything executable is in (a full block may leave some behind).
            while node.pool.counts().0 > 0 {
                seal(&node).await;
            }
        }
    } else {
        let mut interval = tokio::time::interval(block_time);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            interval.tick().await;
            seal(&node).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_accounts_match_the_well_known_test_keys() {
        let accounts = dev_accounts(10).unwrap();
        assert_eq!(
            accounts[0].address(),
            alloy::primitives::address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
        assert_eq!(
            accounts[9].address(),
            alloy::primitives::address!("0xa0Ee7A142d267C1f36714E4a8F75612F20a79720")
        );
        let spec = crate::chainspec::ChainSpec::dev();
        for a in &accounts {
            assert!(spec.genesis.alloc.contains_key(&a.address()));
        }
    }
}
