//! Dev block production: a single local sealer that seals on an interval, or, with a block time
//! of zero, as soon as transactions arrive. The consensus engine replaces this driver; the
//! builder and storage underneath stay the same.

use crate::node::Node;
use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};
use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::watch;
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

/// How long the sealer waits after a failed block before it tries again.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// The dev sealer, on a thread of its own: RPC work runs on the runtime's threads and can
/// never hold up a block waiting for a free one.
#[derive(Debug)]
pub struct Sealer {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl Sealer {
    /// Starts sealing blocks: every `block_time`, or on arrival of transactions when it is zero.
    pub fn spawn(node: Arc<Node>, block_time: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("sealer".into())
            .spawn(move || runtime.block_on(run(&node, block_time, stopped)))?;
        Ok(Self { stop, thread })
    }

    /// Stops after the block being sealed, if any, is committed.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.thread.join();
    }
}

/// Seals one block on this thread; `None` if it failed (logged). A panic while sealing is
/// caught: the sealer thread must outlive any one block.
fn seal(node: &Node) -> Option<usize> {
    let sealed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        node.seal_next_block(now_secs())
    }));
    match sealed {
        Ok(Ok(report)) => Some(report.block.transactions.len()),
        Ok(Err(e)) => {
            error!(target: "dev", %e, "sealing failed");
            None
        }
        Err(_) => {
            error!(target: "dev", "sealing panicked");
            None
        }
    }
}

async fn run(node: &Node, block_time: Duration, mut stopped: watch::Receiver<bool>) {
    if block_time.is_zero() {
        loop {
            tokio::select! {
                _ = node.pool.added.notified() => {}
                _ = stopped.changed() => return,
            }
            // A queued transaction or a replacement wakes the sealer too; only an executable
            // one is worth a block.
            if !node.pool.has_pending() {
                continue;
            }
            // Seal while blocks take transactions and executable ones are left (a full block
            // leaves some behind). A block that takes none, or fails, ends the run: the pool's
            // next arrival starts another, so nothing in the pool can keep the sealer spinning.
            loop {
                match seal(node) {
                    Some(0) => break,
                    Some(_) if node.pool.has_pending() => {}
                    Some(_) => break,
                    None => {
                        tokio::time::sleep(RETRY_DELAY).await;
                        break;
                    }
                }
            }
        }
    } else {
        let mut interval = tokio::time::interval(block_time);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stopped.changed() => return,
            }
            seal(node);
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
