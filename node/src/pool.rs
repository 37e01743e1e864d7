//! The transaction pool: validation on submit, pending/queued by nonce, ordering by effective
//! tip, replacement, limits with eviction, and revalidation after each block.

use crate::chainspec::PoolParams;
use alloy::{
    consensus::{Transaction, TxEnvelope, transaction::Recovered},
    primitives::{Address, B256, U256, map::HashMap},
};
use alloy_evm::FromRecoveredTx;
use parking_lot::Mutex;
use revm::{
    context::TxEnv, context_interface::cfg::gas::calculate_initial_tx_gas_for_tx,
    primitives::hardfork::SpecId,
};
use std::{
    cmp::Ordering,
    collections::{BTreeMap, BinaryHeap},
    sync::Arc,
};
use tokio::sync::{Notify, broadcast};

/// A transaction in the pool, with its recovered sender.
pub type PooledTx = Arc<Recovered<TxEnvelope>>;

/// Why the pool refused a transaction. Messages are geth's, so tools that match on them work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Same hash already in the pool.
    #[error("already known")]
    AlreadyKnown,
    /// Nonce below the account's.
    #[error("nonce too low: next nonce {state}, tx nonce {tx}")]
    NonceTooLow {
        /// Account nonce.
        state: u64,
        /// Transaction nonce.
        tx: u64,
    },
    /// Balance below `gas * fee cap + value`.
    #[error(
        "insufficient funds for gas * price + value: address {address} have {have} want {want}"
    )]
    InsufficientFunds {
        /// Sender.
        address: Address,
        /// Balance.
        have: U256,
        /// Cost.
        want: U256,
    },
    /// Replacement without a 10% bump of both fee fields.
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// Wrong or missing EIP-155 chain id.
    #[error("invalid chain id")]
    InvalidChainId,
    /// Gas limit below intrinsic gas.
    #[error("intrinsic gas too low: gas {gas}, minimum needed {needed}")]
    IntrinsicGas {
        /// Gas limit.
        gas: u64,
        /// Intrinsic gas.
        needed: u64,
    },
    /// Gas limit above the block gas limit.
    #[error("exceeds block gas limit")]
    GasLimit,
    /// Encoded size above the limit.
    #[error("oversized data: transaction size {size}, limit {limit}")]
    Oversized {
        /// Size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Fee cap below the next block's base fee.
    #[error(
        "max fee per gas less than block base fee: address {address}, maxFeePerGas: {fee_cap}, baseFee: {base_fee}"
    )]
    FeeCapBelowBaseFee {
        /// Sender.
        address: Address,
        /// Fee cap.
        fee_cap: u128,
        /// Base fee.
        base_fee: u64,
    },
    /// Priority fee above the fee cap.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// Priority fee under the pool's minimum.
    #[error("transaction underpriced: tip {tip} below minimum {min}")]
    Underpriced {
        /// Tip.
        tip: u128,
        /// Minimum.
        min: u128,
    },
    /// Blob (EIP-4844) transactions: ComputeChain has no blob data availability.
    #[error("transaction type not supported: blob transactions are not accepted on this chain")]
    BlobNotSupported,
    /// Init code above EIP-3860's limit.
    #[error("max initcode size exceeded: code size {size}, limit {limit}")]
    InitCodeTooLarge {
        /// Size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Nonce would overflow.
    #[error("nonce has max value")]
    NonceMax,
    /// The sender holds as many transactions as it may.
    #[error("account limit exceeded: {0} transactions in pool")]
    AccountLimit(usize),
    /// The pool is full of better-paying transactions.
    #[error("txpool is full")]
    PoolFull,
}

/// Account state the pool validates against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderState {
    /// Next nonce.
    pub nonce: u64,
    /// Balance.
    pub balance: U256,
}

/// Limits and chain facts the pool checks.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Genesis pool parameters.
    pub params: PoolParams,
    /// Chain id transactions must carry.
    pub chain_id: u64,
    /// Block gas limit.
    pub block_gas_limit: u64,
    /// Largest encoded transaction.
    pub max_tx_bytes: usize,
    /// EVM spec (for intrinsic gas).
    pub spec: SpecId,
}

#[derive(Debug, Default)]
struct SenderQueue {
    state: SenderState,
    txs: BTreeMap<u64, PooledTx>,
}

impl SenderQueue {
    /// Transactions executable now: the contiguous run from the account nonce.
    fn pending(&self) -> impl Iterator<Item = &PooledTx> {
        let mut next = self.state.nonce;
        self.txs
            .range(self.state.nonce..)
            .map_while(move |(nonce, tx)| {
                (*nonce == next).then(|| {
                    next += 1;
                    tx
                })
            })
    }
}

#[derive(Debug, Default)]
struct Inner {
    by_hash: HashMap<B256, PooledTx>,
    by_sender: HashMap<Address, SenderQueue>,
}

/// The transaction pool.
#[derive(Debug)]
pub struct TxPool {
    config: PoolConfig,
    inner: Mutex<Inner>,
    /// Woken whenever a transaction is added (drives instant sealing).
    pub added: Notify,
    pending_hashes: broadcast::Sender<B256>,
}

fn effective_tip(tx: &TxEnvelope, base_fee: u64) -> Option<u128> {
    tx.effective_tip_per_gas(base_fee)
}

fn max_cost(tx: &TxEnvelope) -> U256 {
    U256::from(tx.max_fee_per_gas()) * U256::from(tx.gas_limit()) + tx.value()
}

impl TxPool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        let (pending_hashes, _) = broadcast::channel(4096);
        Self {
            config,
            inner: Mutex::default(),
            added: Notify::new(),
            pending_hashes,
        }
    }

    /// Hashes of transactions as they enter the pool.
    pub fn subscribe_pending(&self) -> broadcast::Receiver<B256> {
        self.pending_hashes.subscribe()
    }

    /// Checks that need no state: type, chain id, size, gas, fees.
    pub fn validate_stateless(
        &self,
        tx: &Recovered<TxEnvelope>,
        base_fee: u64,
    ) -> Result<(), PoolError> {
        let inner = tx.inner();
        if inner.is_eip4844() {
            return Err(PoolError::BlobNotSupported);
        }
        match inner.chain_id() {
            Some(id) if id == self.config.chain_id => {}
            // Pre-EIP-155 legacy transactions carry no chain id and replay across chains.
            _ => return Err(PoolError::InvalidChainId),
        }
        let size = inner.eip2718_encoded_length();
        if size > self.config.max_tx_bytes {
            return Err(PoolError::Oversized {
                size,
                limit: self.config.max_tx_bytes,
            });
        }
        if inner.gas_limit() > self.config.block_gas_limit {
            return Err(PoolError::GasLimit);
        }
        if inner.nonce() == u64::MAX {
            return Err(PoolError::NonceMax);
        }
        if inner.kind().is_create()
            && inner.input().len() > revm::primitives::eip3860::MAX_INITCODE_SIZE
        {
            return Err(PoolError::InitCodeTooLarge {
                size: inner.input().len(),
                limit: revm::primitives::eip3860::MAX_INITCODE_SIZE,
            });
        }
        let tip = inner
            .max_priority_fee_per_gas()
            .unwrap_or(inner.max_fee_per_gas());
        if tip > inner.max_fee_per_gas() {
            return Err(PoolError::TipAboveFeeCap);
        }
        let min_tip = self.config.params.min_priority_fee.saturating_to::<u128>();
        if tip < min_tip {
            return Err(PoolError::Underpriced { tip, min: min_tip });
        }
        if inner.max_fee_per_gas() < base_fee as u128 {
            return Err(PoolError::FeeCapBelowBaseFee {
                address: tx.signer(),
                fee_cap: inner.max_fee_per_gas(),
                base_fee,
            });
        }
        let env = TxEnv::from_recovered_tx(inner, tx.signer());
        let gas = calculate_initial_tx_gas_for_tx(&env, self.config.spec, None);
        let needed = (gas.initial_regular_gas + gas.initial_state_gas).max(gas.floor_gas);
        if inner.gas_limit() < needed {
            return Err(PoolError::IntrinsicGas {
                gas: inner.gas_limit(),
                needed,
            });
        }
        Ok(())
    }

    /// Adds a transaction that passed [`Self::validate_stateless`], given its sender's current
    /// state. Returns the hash.
    pub fn add(&self, tx: PooledTx, state: SenderState) -> Result<B256, PoolError> {
        let hash = *tx.tx_hash();
        let sender = tx.signer();
        let nonce = tx.nonce();
        {
            let mut inner = self.inner.lock();
            if inner.by_hash.contains_key(&hash) {
                return Err(PoolError::AlreadyKnown);
            }
            if nonce < state.nonce {
                return Err(PoolError::NonceTooLow {
                    state: state.nonce,
                    tx: nonce,
                });
            }
            let cost = max_cost(tx.inner());
            if cost > state.balance {
                return Err(PoolError::InsufficientFunds {
                    address: sender,
                    have: state.balance,
                    want: cost,
                });
            }
            let queue = inner.by_sender.entry(sender).or_default();
            queue.state = state;
            let replaced = match queue.txs.get(&nonce) {
                Some(old) => {
                    let bumped = |old: u128, new: u128| new >= old.saturating_add(old / 10);
                    let old_tip = old
                        .max_priority_fee_per_gas()
                        .unwrap_or(old.max_fee_per_gas());
                    let new_tip = tx
                        .max_priority_fee_per_gas()
                        .unwrap_or(tx.max_fee_per_gas());
                    if !bumped(old.max_fee_per_gas(), tx.max_fee_per_gas())
                        || !bumped(old_tip, new_tip)
                    {
                        return Err(PoolError::ReplacementUnderpriced);
                    }
                    Some(*old.tx_hash())
                }
                None => {
                    if queue.txs.len() >= self.config.params.max_per_account {
                        return Err(PoolError::AccountLimit(queue.txs.len()));
                    }
                    None
                }
            };
            if replaced.is_none() && inner.by_hash.len() >= self.config.params.max_total {
                Self::evict_one(&mut inner, &tx)?;
            }
            let queue = inner.by_sender.entry(sender).or_default();
            queue.txs.insert(nonce, tx.clone());
            if let Some(old) = replaced {
                inner.by_hash.remove(&old);
            }
            inner.by_hash.insert(hash, tx);
        }
        let _ = self.pending_hashes.send(hash);
        self.added.notify_one();
        Ok(hash)
    }

    /// Makes room for `incoming` by evicting the lowest-paying transaction that has no
    /// dependants (the highest nonce of its sender), if `incoming` pays more.
    fn evict_one(inner: &mut Inner, incoming: &PooledTx) -> Result<(), PoolError> {
        let price = |tx: &PooledTx| {
            tx.max_priority_fee_per_gas()
                .unwrap_or(tx.max_fee_per_gas())
        };
        let victim = inner
            .by_sender
            .iter()
            .filter_map(|(sender, q)| {
                q.txs
                    .last_key_value()
                    .map(|(n, tx)| (*sender, *n, price(tx)))
            })
            .min_by_key(|(_, _, p)| *p);
        match victim {
            Some((sender, nonce, p)) if p < price(incoming) => {
                let queue = inner
                    .by_sender
                    .get_mut(&sender)
                    .expect("victim's queue exists");
                let tx = queue.txs.remove(&nonce).expect("victim exists");
                if queue.txs.is_empty() {
                    inner.by_sender.remove(&sender);
                }
                inner.by_hash.remove(tx.tx_hash());
                Ok(())
            }
            _ => Err(PoolError::PoolFull),
        }
    }

    /// A pooled transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<PooledTx> {
        self.inner.lock().by_hash.get(hash).cloned()
    }

    /// Number of (pending, queued) transactions.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        let pending: usize = inner.by_sender.values().map(|q| q.pending().count()).sum();
        (pending, inner.by_hash.len() - pending)
    }

    /// The sender's account state as of the last block, if the pool tracks the sender (saves a
    /// database read per submitted transaction).
    pub fn known_state(&self, sender: &Address) -> Option<SenderState> {
        self.inner.lock().by_sender.get(sender).map(|q| q.state)
    }

    /// The nonce after the sender's pending transactions, if it has any in the pool.
    pub fn pending_nonce(&self, sender: &Address) -> Option<u64> {
        let inner = self.inner.lock();
        let queue = inner.by_sender.get(sender)?;
        Some(queue.state.nonce + queue.pending().count() as u64)
    }

    /// Executable transactions in block order: highest effective tip first, each sender's in
    /// nonce order. Transactions whose fee cap is below `base_fee` wait.
    pub fn best_transactions(&self, base_fee: u64) -> Vec<PooledTx> {
        let runs: Vec<Vec<PooledTx>> = {
            let inner = self.inner.lock();
            inner
                .by_sender
                .values()
                .map(|q| q.pending().cloned().collect())
                .collect()
        };
        #[derive(PartialEq, Eq)]
        struct Head {
            tip: u128,
            run: usize,
            pos: usize,
        }
        impl Ord for Head {
            fn cmp(&self, other: &Self) -> Ordering {
                self.tip
                    .cmp(&other.tip)
                    .then_with(|| other.run.cmp(&self.run))
            }
        }
        impl PartialOrd for Head {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        let mut heap = BinaryHeap::new();
        for (run, txs) in runs.iter().enumerate() {
            if let Some(tip) = txs
                .first()
                .and_then(|tx| effective_tip(tx.inner(), base_fee))
            {
                heap.push(Head { tip, run, pos: 0 });
            }
        }
        let mut out = Vec::new();
        while let Some(Head { run, pos, .. }) = heap.pop() {
            out.push(runs[run][pos].clone());
            if let Some(tip) = runs[run]
                .get(pos + 1)
                .and_then(|tx| effective_tip(tx.inner(), base_fee))
            {
                heap.push(Head {
                    tip,
                    run,
                    pos: pos + 1,
                });
            }
        }
        out
    }

    /// After a block: drops `invalid` transactions, then re-reads every sender's state and drops
    /// what is mined (nonce below the account's) or no longer affordable.
    pub fn on_new_block(&self, invalid: &[B256], state_of: impl Fn(&Address) -> SenderState) {
        let mut inner = self.inner.lock();
        let Inner { by_hash, by_sender } = &mut *inner;
        for hash in invalid {
            if let Some(tx) = by_hash.remove(hash)
                && let Some(q) = by_sender.get_mut(&tx.signer())
            {
                q.txs.remove(&tx.nonce());
            }
        }
        by_sender.retain(|sender, queue| {
            queue.state = state_of(sender);
            let state = queue.state;
            queue.txs.retain(|nonce, tx| {
                let keep = *nonce >= state.nonce && max_cost(tx.inner()) <= state.balance;
                if !keep {
                    by_hash.remove(tx.tx_hash());
                }
                keep
            });
            !queue.txs.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::{
        consensus::{SignableTransaction, TxEip1559, TxLegacy},
        primitives::{TxKind, keccak256},
        signers::{SignerSync, local::PrivateKeySigner},
    };

    const CHAIN: u64 = 7357;

    fn signer(i: u8) -> PrivateKeySigner {
        PrivateKeySigner::from_bytes(&keccak256([i])).unwrap()
    }

    fn tx(s: &PrivateKeySigner, nonce: u64, tip: u128, max_fee: u128) -> PooledTx {
        let t = TxEip1559 {
            chain_id: CHAIN,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(Address::repeat_byte(1)),
            value: U256::from(1),
            ..Default::default()
        };
        let sig = s.sign_hash_sync(&t.signature_hash()).unwrap();
        Arc::new(Recovered::new_unchecked(
            TxEnvelope::from(t.into_signed(sig)),
            s.address(),
        ))
    }

    fn pool(max_per_account: usize, max_total: usize) -> TxPool {
        TxPool::new(PoolConfig {
            params: PoolParams {
                max_per_account,
                max_total,
                min_priority_fee: U256::ZERO,
            },
            chain_id: CHAIN,
            block_gas_limit: 30_000_000,
            max_tx_bytes: 128 * 1024,
            spec: SpecId::PRAGUE,
        })
    }

    fn rich() -> SenderState {
        SenderState {
            nonce: 0,
            balance: U256::from(10u128.pow(21)),
        }
    }

    #[test]
    fn orders_by_tip_and_keeps_each_senders_nonce_order() {
        let p = pool(16, 100);
        let (a, b) = (signer(1), signer(2));
        p.add(tx(&a, 0, 5, 100), rich()).unwrap();
        p.add(tx(&a, 1, 50, 100), rich()).unwrap();
        p.add(tx(&b, 0, 10, 100), rich()).unwrap();
        let best: Vec<(Address, u64)> = p
            .best_transactions(1)
            .iter()
            .map(|t| (t.signer(), t.nonce()))
            .collect();
        assert_eq!(
            best,
            vec![(b.address(), 0), (a.address(), 0), (a.address(), 1)]
        );
        // Below the base fee, a transaction waits.
        assert_eq!(p.best_transactions(101).len(), 0);
    }

    #[test]
    fn gaps_are_queued_until_filled() {
        let p = pool(16, 100);
        let a = signer(1);
        p.add(tx(&a, 1, 1, 100), rich()).unwrap();
        assert_eq!(p.counts(), (0, 1));
        assert!(p.best_transactions(1).is_empty());
        p.add(tx(&a, 0, 1, 100), rich()).unwrap();
        assert_eq!(p.counts(), (2, 0));
        assert_eq!(p.pending_nonce(&a.address()), Some(2));
    }

    #[test]
    fn replacement_needs_ten_percent_bump_of_both_fees() {
        let p = pool(16, 100);
        let a = signer(1);
        let first = tx(&a, 0, 100, 1000);
        p.add(first.clone(), rich()).unwrap();
        assert_eq!(p.add(first, rich()), Err(PoolError::AlreadyKnown));
        assert_eq!(
            p.add(tx(&a, 0, 109, 2000), rich()),
            Err(PoolError::ReplacementUnderpriced)
        );
        assert_eq!(
            p.add(tx(&a, 0, 200, 1099), rich()),
            Err(PoolError::ReplacementUnderpriced)
        );
        let better = tx(&a, 0, 110, 1100);
        p.add(better.clone(), rich()).unwrap();
        assert_eq!(p.counts(), (1, 0));
        assert_eq!(p.best_transactions(1)[0].tx_hash(), better.tx_hash());
    }

    #[test]
    fn state_checks_use_geth_messages() {
        let p = pool(16, 100);
        let a = signer(1);
        let err = p
            .add(
                tx(&a, 0, 1, 100),
                SenderState {
                    nonce: 3,
                    balance: U256::MAX,
                },
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "nonce too low: next nonce 3, tx nonce 0");
        let err = p
            .add(
                tx(&a, 3, 1, 100),
                SenderState {
                    nonce: 3,
                    balance: U256::from(5),
                },
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("insufficient funds for gas * price + value"),
            "{err}"
        );
    }

    #[test]
    fn limits_evict_the_lowest_paying_tail() {
        let p = pool(2, 3);
        let (a, b, c) = (signer(1), signer(2), signer(3));
        p.add(tx(&a, 0, 1, 100), rich()).unwrap();
        p.add(tx(&a, 1, 1, 100), rich()).unwrap();
        assert_eq!(
            p.add(tx(&a, 2, 1, 100), rich()),
            Err(PoolError::AccountLimit(2))
        );
        p.add(tx(&b, 0, 5, 100), rich()).unwrap();
        // Full: a cheaper newcomer is refused, a better one evicts a's tail (nonce 1).
        assert_eq!(p.add(tx(&c, 0, 1, 100), rich()), Err(PoolError::PoolFull));
        p.add(tx(&c, 0, 9, 100), rich()).unwrap();
        assert_eq!(p.counts(), (3, 0));
        assert_eq!(p.pending_nonce(&a.address()), Some(1));
    }

    #[test]
    fn stateless_validation_rejects_bad_transactions() {
        let p = pool(16, 100);
        let a = signer(1);
        let ok = tx(&a, 0, 1, 100);
        assert_eq!(p.validate_stateless(&ok, 1), Ok(()));
        assert!(matches!(
            p.validate_stateless(&ok, 101),
            Err(PoolError::FeeCapBelowBaseFee { .. })
        ));
        assert_eq!(
            p.validate_stateless(&tx(&a, 0, 200, 100), 1),
            Err(PoolError::TipAboveFeeCap)
        );
        // Wrong chain id, and legacy without EIP-155.
        let legacy = TxLegacy {
            chain_id: None,
            nonce: 0,
            gas_price: 100,
            gas_limit: 21_000,
            to: TxKind::Call(Address::ZERO),
            ..Default::default()
        };
        let sig = a.sign_hash_sync(&legacy.signature_hash()).unwrap();
        let unprotected =
            Recovered::new_unchecked(TxEnvelope::from(legacy.into_signed(sig)), a.address());
        assert_eq!(
            p.validate_stateless(&unprotected, 1),
            Err(PoolError::InvalidChainId)
        );
        // Intrinsic gas: a creation with data needs more than 21,000.
        let create = TxEip1559 {
            chain_id: CHAIN,
            gas_limit: 21_000,
            max_fee_per_gas: 100,
            to: TxKind::Create,
            input: vec![1u8; 100].into(),
            ..Default::default()
        };
        let sig = a.sign_hash_sync(&create.signature_hash()).unwrap();
        let create =
            Recovered::new_unchecked(TxEnvelope::from(create.into_signed(sig)), a.address());
        assert!(matches!(
            p.validate_stateless(&create, 1),
            Err(PoolError::IntrinsicGas { .. })
        ));
    }

    #[test]
    fn new_block_drops_mined_and_unaffordable() {
        let p = pool(16, 100);
        let (a, b) = (signer(1), signer(2));
        p.add(tx(&a, 0, 1, 100), rich()).unwrap();
        p.add(tx(&a, 1, 1, 100), rich()).unwrap();
        p.add(tx(&b, 0, 1, 100), rich()).unwrap();
        p.on_new_block(&[], |addr| {
            if *addr == a.address() {
                SenderState {
                    nonce: 1,
                    balance: U256::MAX,
                }
            } else {
                SenderState {
                    nonce: 0,
                    balance: U256::ZERO,
                }
            }
        });
        assert_eq!(p.counts(), (1, 0));
        assert_eq!(p.best_transactions(1)[0].nonce(), 1);
    }
}
