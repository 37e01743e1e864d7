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
    time::Instant,
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
    /// The sender holds as many queued transactions as it may.
    #[error("account queue limit exceeded: {0} queued transactions in pool")]
    QueueLimit(usize),
    /// Nonce too far above the account's: the transaction could not become executable while
    /// the sender holds its most transactions.
    #[error("nonce too high: next nonce {state}, tx nonce {tx}, at most {max} ahead")]
    NonceTooHigh {
        /// Account nonce.
        state: u64,
        /// Transaction nonce.
        tx: u64,
        /// How far ahead a nonce may be.
        max: u64,
    },
    /// The pool is full of better-paying transactions.
    #[error("txpool is full")]
    PoolFull,
    /// The sender's state was read before the block the pool last saw: read it again.
    #[error("sender state is stale")]
    StateStale,
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

#[derive(Debug)]
struct SenderQueue {
    state: SenderState,
    /// The block whose state `state` is.
    state_block: u64,
    txs: BTreeMap<u64, PooledTx>,
    /// When a transaction of this sender last entered the pool: queued transactions of a sender
    /// quiet for the pool's lifetime are dropped.
    last_added: Instant,
}

impl SenderQueue {
    fn new(state: SenderState, state_block: u64) -> Self {
        Self {
            state,
            state_block,
            txs: BTreeMap::new(),
            last_added: Instant::now(),
        }
    }

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

    /// The nonce after the pending run.
    fn next_pending_nonce(&self) -> u64 {
        self.state.nonce + self.pending().count() as u64
    }

    /// Transactions behind a nonce gap.
    fn queued(&self) -> usize {
        self.txs.len() - self.pending().count()
    }

    /// What the sender's transactions may cost together, but for the one at `except`; `None`
    /// when the sum does not fit in 256 bits.
    fn total_cost(&self, except: u64) -> Option<U256> {
        self.txs
            .iter()
            .filter(|(nonce, _)| **nonce != except)
            .try_fold(U256::ZERO, |sum, (_, tx)| {
                sum.checked_add(max_cost(tx.inner())?)
            })
    }
}

#[derive(Debug)]
struct Inner {
    by_hash: HashMap<B256, PooledTx>,
    by_sender: HashMap<Address, SenderQueue>,
    /// Queued transactions over all senders.
    queued: usize,
    /// The last block the pool was revalidated against, and the base fee of the next one.
    head_block: u64,
    base_fee: u64,
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

/// The most a transaction can take from its sender: `gas × fee cap + value`; `None` when that
/// does not fit in 256 bits (no balance covers it).
fn max_cost(tx: &TxEnvelope) -> Option<U256> {
    U256::from(tx.max_fee_per_gas())
        .checked_mul(U256::from(tx.gas_limit()))?
        .checked_add(tx.value())
}

/// How a transaction ranks for eviction: those that cannot execute now (queued behind a nonce
/// gap, or with a fee cap below the base fee) go before executable ones; then the lowest tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    executable: bool,
    tip: u128,
}

impl Rank {
    fn of(tx: &TxEnvelope, executable_nonce: bool, base_fee: u64) -> Self {
        let tip = effective_tip(tx, base_fee);
        Self {
            executable: executable_nonce && tip.is_some(),
            tip: tip.unwrap_or_else(|| {
                tx.max_priority_fee_per_gas()
                    .unwrap_or(tx.max_fee_per_gas())
            }),
        }
    }
}

impl TxPool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        let (pending_hashes, _) = broadcast::channel(4096);
        Self {
            config,
            inner: Mutex::new(Inner {
                by_hash: HashMap::default(),
                by_sender: HashMap::default(),
                queued: 0,
                head_block: 0,
                base_fee: 0,
            }),
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

    /// Adds a transaction that passed [`Self::validate_stateless`], given its sender's state as
    /// of block `state_block`. Returns the hash.
    ///
    /// A state older than the one the pool holds for the sender is ignored; one older than the
    /// pool's last block for a sender the pool does not track is refused with
    /// [`PoolError::StateStale`] (the caller reads it again).
    pub fn add(
        &self,
        tx: PooledTx,
        state: SenderState,
        state_block: u64,
    ) -> Result<B256, PoolError> {
        let hash = *tx.tx_hash();
        {
            let mut inner = self.inner.lock();
            self.insert(&mut inner, tx, state, state_block)?;
        }
        let _ = self.pending_hashes.send(hash);
        self.added.notify_one();
        Ok(hash)
    }

    fn insert(
        &self,
        inner: &mut Inner,
        tx: PooledTx,
        state: SenderState,
        state_block: u64,
    ) -> Result<(), PoolError> {
        let hash = *tx.tx_hash();
        let sender = tx.signer();
        let nonce = tx.nonce();
        if inner.by_hash.contains_key(&hash) {
            return Err(PoolError::AlreadyKnown);
        }
        let head_block = inner.head_block;
        let Inner {
            by_hash,
            by_sender,
            queued,
            ..
        } = &mut *inner;
        let state = match by_sender.get_mut(&sender) {
            Some(queue) if queue.state_block >= state_block => queue.state,
            Some(queue) => {
                // A fresher state: what it shows mined leaves, and the queued count follows.
                *queued = queued.saturating_sub(queue.queued());
                queue.state = state;
                queue.state_block = state_block;
                queue.txs.retain(|n, tx| {
                    let live = *n >= state.nonce;
                    if !live {
                        by_hash.remove(tx.tx_hash());
                    }
                    live
                });
                *queued += queue.queued();
                state
            }
            None if state_block < head_block => return Err(PoolError::StateStale),
            None => state,
        };
        if nonce < state.nonce {
            return Err(PoolError::NonceTooLow {
                state: state.nonce,
                tx: nonce,
            });
        }
        let ahead = self.config.params.max_per_account as u64;
        if nonce - state.nonce >= ahead {
            return Err(PoolError::NonceTooHigh {
                state: state.nonce,
                tx: nonce,
                max: ahead,
            });
        }
        let empty = SenderQueue::new(state, state_block);
        let queue = inner.by_sender.get(&sender).unwrap_or(&empty);
        // The balance must cover all of the sender's transactions together, this one included.
        let want = max_cost(tx.inner()).and_then(|cost| cost.checked_add(queue.total_cost(nonce)?));
        if want.is_none_or(|want| want > state.balance) {
            return Err(PoolError::InsufficientFunds {
                address: sender,
                have: state.balance,
                want: want.unwrap_or(U256::MAX),
            });
        }
        let replaced = match queue.txs.get(&nonce) {
            Some(old) => {
                let bumped = |old: u128, new: u128| new >= old.saturating_add(old / 10);
                let old_tip = old
                    .max_priority_fee_per_gas()
                    .unwrap_or(old.max_fee_per_gas());
                let new_tip = tx
                    .max_priority_fee_per_gas()
                    .unwrap_or(tx.max_fee_per_gas());
                if !bumped(old.max_fee_per_gas(), tx.max_fee_per_gas()) || !bumped(old_tip, new_tip)
                {
                    return Err(PoolError::ReplacementUnderpriced);
                }
                Some(*old.tx_hash())
            }
            None => None,
        };
        let executable = nonce <= queue.next_pending_nonce();
        if replaced.is_none() {
            if queue.txs.len() >= self.config.params.max_per_account {
                return Err(PoolError::AccountLimit(queue.txs.len()));
            }
            if !executable && queue.queued() >= self.config.params.max_queued_per_account {
                return Err(PoolError::QueueLimit(queue.queued()));
            }
            let rank = Rank::of(tx.inner(), executable, inner.base_fee);
            if !executable && inner.queued >= self.config.params.max_queued {
                // The queue is full: only a better-paying queued transaction takes a place.
                Self::evict_one(inner, sender, rank, true)?;
            } else if inner.by_hash.len() >= self.config.params.max_total {
                Self::evict_one(inner, sender, rank, false)?;
            }
        }
        let queue = inner
            .by_sender
            .entry(sender)
            .or_insert_with(|| SenderQueue::new(state, state_block));
        let queued_before = queue.queued();
        queue.txs.insert(nonce, tx.clone());
        queue.last_added = Instant::now();
        let queued_after = queue.queued();
        inner.queued = (inner.queued + queued_after).saturating_sub(queued_before);
        if let Some(old) = replaced {
            inner.by_hash.remove(&old);
        }
        inner.by_hash.insert(hash, tx);
        Ok(())
    }

    /// Makes room for a transaction of `incoming` rank by evicting the lowest-ranked transaction
    /// that has no dependants (the highest nonce of its sender), if it ranks below `incoming`;
    /// with `queued_only`, only a queued one. The incoming transaction's sender keeps its own:
    /// a transaction never pushes out the one it depends on.
    fn evict_one(
        inner: &mut Inner,
        incoming_sender: Address,
        incoming: Rank,
        queued_only: bool,
    ) -> Result<(), PoolError> {
        let base_fee = inner.base_fee;
        let victim = inner
            .by_sender
            .iter()
            .filter(|(sender, _)| **sender != incoming_sender)
            .filter_map(|(sender, q)| {
                let (nonce, tx) = q.txs.last_key_value()?;
                let executable = *nonce < q.next_pending_nonce();
                (!(queued_only && executable))
                    .then(|| (Rank::of(tx.inner(), executable, base_fee), *sender, *nonce))
            })
            .min();
        match victim {
            Some((rank, sender, nonce)) if rank < incoming => {
                Self::remove(inner, &sender, nonce);
                Ok(())
            }
            _ => Err(PoolError::PoolFull),
        }
    }

    /// Removes one transaction, keeping the queued count.
    fn remove(inner: &mut Inner, sender: &Address, nonce: u64) {
        let Some(queue) = inner.by_sender.get_mut(sender) else {
            return;
        };
        let queued_before = queue.queued();
        let Some(tx) = queue.txs.remove(&nonce) else {
            return;
        };
        let queued_after = queue.queued();
        inner.queued = (inner.queued + queued_after).saturating_sub(queued_before);
        if queue.txs.is_empty() {
            inner.by_sender.remove(sender);
        }
        inner.by_hash.remove(tx.tx_hash());
    }

    /// A pooled transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<PooledTx> {
        self.inner.lock().by_hash.get(hash).cloned()
    }

    /// Whether any transaction is executable now (stops at the first: cheaper than
    /// [`Self::counts`], which the sealer need not pay for on every arrival).
    pub fn has_pending(&self) -> bool {
        self.inner
            .lock()
            .by_sender
            .values()
            .any(|q| q.pending().next().is_some())
    }

    /// Number of (pending, queued) transactions.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.inner.lock();
        let pending: usize = inner.by_sender.values().map(|q| q.pending().count()).sum();
        (pending, inner.by_hash.len() - pending)
    }

    /// The sender's account state and the block it is of, if the pool tracks the sender (saves
    /// a database read per submitted transaction).
    pub fn known_state(&self, sender: &Address) -> Option<(SenderState, u64)> {
        self.inner
            .lock()
            .by_sender
            .get(sender)
            .map(|q| (q.state, q.state_block))
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

    /// After block `block`, whose successor has base fee `base_fee`: drops `invalid`
    /// transactions, then re-reads every sender's state and drops what is mined (nonce below the
    /// account's), what the balance no longer covers (in nonce order, with all that follows),
    /// and the queued transactions of senders quiet for the pool's lifetime.
    pub fn on_new_block(
        &self,
        block: u64,
        base_fee: u64,
        invalid: &[B256],
        state_of: impl Fn(&Address) -> SenderState,
    ) {
        let lifetime = std::time::Duration::from_secs(self.config.params.lifetime_secs);
        let mut inner = self.inner.lock();
        inner.head_block = block;
        inner.base_fee = base_fee;
        for hash in invalid {
            if let Some(tx) = inner.by_hash.get(hash).cloned() {
                Self::remove(&mut inner, &tx.signer(), tx.nonce());
            }
        }
        let Inner {
            by_hash,
            by_sender,
            queued,
            ..
        } = &mut *inner;
        *queued = 0;
        by_sender.retain(|sender, queue| {
            queue.state = state_of(sender);
            queue.state_block = block;
            let state = queue.state;
            let expired = queue.last_added.elapsed() >= lifetime;
            let mut budget = Some(state.balance);
            let mut next = state.nonce;
            queue.txs.retain(|nonce, tx| {
                if *nonce < state.nonce {
                    // Mined: its cost is already out of the balance.
                    by_hash.remove(tx.tx_hash());
                    return false;
                }
                let pending = *nonce == next;
                if pending {
                    next += 1;
                }
                budget = budget
                    .zip(max_cost(tx.inner()))
                    .and_then(|(left, cost)| left.checked_sub(cost));
                let keep = budget.is_some() && (pending || !expired);
                if !keep {
                    by_hash.remove(tx.tx_hash());
                }
                keep
            });
            *queued += queue.queued();
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
        tx_with_value(s, nonce, tip, max_fee, U256::from(1))
    }

    fn tx_with_value(
        s: &PrivateKeySigner,
        nonce: u64,
        tip: u128,
        max_fee: u128,
        value: U256,
    ) -> PooledTx {
        let t = TxEip1559 {
            chain_id: CHAIN,
            nonce,
            gas_limit: 21_000,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(Address::repeat_byte(1)),
            value,
            ..Default::default()
        };
        let sig = s.sign_hash_sync(&t.signature_hash()).unwrap();
        Arc::new(Recovered::new_unchecked(
            TxEnvelope::from(t.into_signed(sig)),
            s.address(),
        ))
    }

    fn pool(max_per_account: usize, max_total: usize) -> TxPool {
        TxPool::new(config(PoolParams {
            max_per_account,
            max_total,
            ..Default::default()
        }))
    }

    fn config(params: PoolParams) -> PoolConfig {
        PoolConfig {
            params,
            chain_id: CHAIN,
            block_gas_limit: 30_000_000,
            max_tx_bytes: 128 * 1024,
            spec: SpecId::PRAGUE,
        }
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
        p.add(tx(&a, 0, 5, 100), rich(), 0).unwrap();
        p.add(tx(&a, 1, 50, 100), rich(), 0).unwrap();
        p.add(tx(&b, 0, 10, 100), rich(), 0).unwrap();
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
        p.add(tx(&a, 1, 1, 100), rich(), 0).unwrap();
        assert_eq!(p.counts(), (0, 1));
        assert!(!p.has_pending());
        assert!(p.best_transactions(1).is_empty());
        p.add(tx(&a, 0, 1, 100), rich(), 0).unwrap();
        assert_eq!(p.counts(), (2, 0));
        assert!(p.has_pending());
        assert_eq!(p.pending_nonce(&a.address()), Some(2));
    }

    #[test]
    fn replacement_needs_ten_percent_bump_of_both_fees() {
        let p = pool(16, 100);
        let a = signer(1);
        let first = tx(&a, 0, 100, 1000);
        p.add(first.clone(), rich(), 0).unwrap();
        assert_eq!(p.add(first, rich(), 0), Err(PoolError::AlreadyKnown));
        assert_eq!(
            p.add(tx(&a, 0, 109, 2000), rich(), 0),
            Err(PoolError::ReplacementUnderpriced)
        );
        assert_eq!(
            p.add(tx(&a, 0, 200, 1099), rich(), 0),
            Err(PoolError::ReplacementUnderpriced)
        );
        let better = tx(&a, 0, 110, 1100);
        p.add(better.clone(), rich(), 0).unwrap();
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
                0,
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
                0,
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
        p.add(tx(&a, 0, 1, 100), rich(), 0).unwrap();
        p.add(tx(&a, 1, 1, 100), rich(), 0).unwrap();
        assert_eq!(
            p.add(tx(&a, 2, 1, 100), rich(), 0),
            Err(PoolError::NonceTooHigh {
                state: 0,
                tx: 2,
                max: 2
            })
        );
        p.add(tx(&b, 0, 5, 100), rich(), 0).unwrap();
        // Full: a cheaper newcomer is refused, a better one evicts a's tail (nonce 1).
        assert_eq!(
            p.add(tx(&c, 0, 1, 100), rich(), 0),
            Err(PoolError::PoolFull)
        );
        p.add(tx(&c, 0, 9, 100), rich(), 0).unwrap();
        assert_eq!(p.counts(), (3, 0));
        assert_eq!(p.pending_nonce(&a.address()), Some(1));
    }

    fn funded(balance: u128) -> SenderState {
        SenderState {
            nonce: 0,
            balance: U256::from(balance),
        }
    }

    #[test]
    fn a_cost_beyond_256_bits_is_insufficient_funds() {
        let p = pool(16, 100);
        let a = signer(1);
        // gas × fee cap + value wraps to zero in 256-bit arithmetic.
        let value = U256::ZERO - U256::from(21_000u64 * 100);
        let err = p
            .add(tx_with_value(&a, 0, 1, 100, value), funded(0), 0)
            .unwrap_err();
        assert_eq!(
            err,
            PoolError::InsufficientFunds {
                address: a.address(),
                have: U256::ZERO,
                want: U256::MAX
            }
        );
        assert_eq!(p.counts(), (0, 0));
    }

    #[test]
    fn the_balance_covers_the_senders_transactions_together() {
        let p = pool(16, 100);
        let a = signer(1);
        // Each costs 21,000 × 100 + 1 wei; the balance covers two and a half.
        let one = 21_000 * 100 + 1;
        let state = funded(one * 5 / 2);
        p.add(tx(&a, 0, 1, 100), state, 0).unwrap();
        p.add(tx(&a, 1, 1, 100), state, 0).unwrap();
        assert!(matches!(
            p.add(tx(&a, 2, 1, 100), state, 0),
            Err(PoolError::InsufficientFunds { want, .. }) if want == U256::from(3 * one)
        ));
        // A replacement counts instead of the one it replaces: 110 × 21,000 + 1 more fits.
        p.add(tx(&a, 1, 2, 110), state, 0).unwrap();
        assert!(matches!(
            p.add(tx(&a, 1, 3, 200), state, 0),
            Err(PoolError::InsufficientFunds { .. })
        ));
        // After a block that spent part of the balance, what it no longer covers leaves, in
        // nonce order.
        p.on_new_block(1, 1, &[], |_| SenderState {
            nonce: 0,
            balance: U256::from(one + 1),
        });
        assert_eq!(p.counts(), (1, 0));
        assert_eq!(p.best_transactions(1)[0].nonce(), 0);
    }

    #[test]
    fn queued_transactions_are_bounded_per_sender_and_in_all() {
        let mut params = PoolParams {
            max_per_account: 64,
            max_total: 1_000,
            max_queued_per_account: 4,
            max_queued: 10,
            ..Default::default()
        };
        let p = TxPool::new(config(params.clone()));
        let rich_key = signer(1);
        // Nonces far ahead are refused outright.
        assert_eq!(
            p.add(tx(&rich_key, 64, 1, 100), rich(), 0),
            Err(PoolError::NonceTooHigh {
                state: 0,
                tx: 64,
                max: 64
            })
        );
        for n in 1..=4 {
            p.add(tx(&rich_key, n, 1, 100), rich(), 0).unwrap();
        }
        assert_eq!(
            p.add(tx(&rich_key, 5, 1, 100), rich(), 0),
            Err(PoolError::QueueLimit(4))
        );
        // The global queue: ten places, then only a better-paying queued transaction enters,
        // in place of the lowest-paying queued tail.
        for k in 2..=4 {
            for n in 1..=2 {
                p.add(tx(&signer(k), n, 5, 100), rich(), 0).unwrap();
            }
        }
        assert_eq!(p.counts(), (0, 10));
        assert_eq!(
            p.add(tx(&signer(9), 1, 1, 100), rich(), 0),
            Err(PoolError::PoolFull)
        );
        p.add(tx(&signer(9), 1, 6, 100), rich(), 0).unwrap();
        assert_eq!(p.counts(), (0, 10));
        assert!(p.pending_nonce(&rich_key.address()).is_some());
        // Executable transactions do not count against the queue; filling the gap promotes.
        p.add(tx(&signer(10), 0, 1, 100), rich(), 0).unwrap();
        p.add(tx(&rich_key, 0, 1, 100), rich(), 0).unwrap();
        assert_eq!(p.counts(), (5, 7));
        params.max_queued = 0;
        let p = TxPool::new(config(params));
        assert_eq!(
            p.add(tx(&rich_key, 1, 1, 100), rich(), 0),
            Err(PoolError::PoolFull)
        );
    }

    #[test]
    fn an_honest_sender_gets_in_while_funded_keys_flood_the_queue() {
        let params = PoolParams {
            max_per_account: 64,
            max_total: 200,
            max_queued_per_account: 64,
            max_queued: 32,
            ..Default::default()
        };
        let p = TxPool::new(config(params));
        // 20 keys, each funded for its transactions, send 64 transactions behind a nonce gap
        // with a tip no honest sender pays.
        let mut refused = 0;
        for k in 0..20u8 {
            let attacker = signer(100 + k);
            for n in 1..64 {
                if p.add(tx(&attacker, n, 1_000_000, 1_000_000), rich(), 0)
                    .is_err()
                {
                    refused += 1;
                }
            }
        }
        assert_eq!(p.counts(), (0, 32));
        assert_eq!(refused, 20 * 63 - 32);
        // The pool is not full: an honest transaction with a low tip enters and is executable.
        let honest = signer(1);
        let hash = p
            .add(tx(&honest, 0, 1, 100), funded(21_000 * 100 + 1), 0)
            .unwrap();
        assert_eq!(p.best_transactions(1)[0].tx_hash(), &hash);
    }

    #[test]
    fn a_full_pool_evicts_queued_and_unpayable_before_executable() {
        let p = pool(16, 3);
        let (a, b, c, d) = (signer(1), signer(2), signer(3), signer(4));
        p.add(tx(&a, 0, 1, 100), rich(), 0).unwrap();
        // Queued behind a gap, however high its tip.
        p.add(tx(&b, 1, 90, 100), rich(), 0).unwrap();
        p.add(tx(&c, 0, 2, 100), rich(), 0).unwrap();
        p.add(tx(&d, 0, 2, 100), rich(), 0).unwrap();
        assert_eq!(p.counts(), (3, 0));
        assert!(p.pending_nonce(&b.address()).is_none());
        // A queued newcomer does not push out an executable transaction.
        assert_eq!(
            p.add(tx(&signer(6), 1, 90, 300), rich(), 0),
            Err(PoolError::PoolFull)
        );
        // A fee cap below the base fee cannot pay now: it goes before paying transactions.
        p.on_new_block(1, 150, &[], |_| rich());
        let e = signer(5);
        p.add(tx(&e, 0, 1, 200), rich(), 1).unwrap();
        assert_eq!(p.counts(), (3, 0));
        assert!(
            p.pending_nonce(&a.address()).is_none(),
            "the lowest tip left"
        );
        assert_eq!(p.best_transactions(150).len(), 1);
    }

    #[test]
    fn a_block_that_mined_part_of_a_senders_transactions_keeps_the_rest_it_can_pay() {
        let p = pool(16, 100);
        let a = signer(1);
        let one = 21_000 * 100 + 1;
        p.add(tx(&a, 0, 1, 100), funded(2 * one), 0).unwrap();
        p.add(tx(&a, 1, 1, 100), funded(2 * one), 0).unwrap();
        // Block 1 mined nonce 0: what is left pays for nonce 1 exactly.
        p.on_new_block(1, 1, &[], |_| SenderState {
            nonce: 1,
            balance: U256::from(one),
        });
        assert_eq!(p.counts(), (1, 0));
        assert_eq!(p.best_transactions(1)[0].nonce(), 1);
    }

    #[test]
    fn a_transaction_never_evicts_the_one_it_depends_on() {
        let p = pool(16, 2);
        let (a, b) = (signer(1), signer(2));
        p.add(tx(&a, 0, 1, 100), rich(), 0).unwrap();
        p.add(tx(&b, 0, 5, 100), rich(), 0).unwrap();
        // a's nonce 0 pays least, but a's nonce 1 needs it: b's goes.
        p.add(tx(&a, 1, 9, 100), rich(), 0).unwrap();
        assert_eq!(p.counts(), (2, 0));
        assert_eq!(p.pending_nonce(&a.address()), Some(2));
        assert_eq!(p.pending_nonce(&b.address()), None);
    }

    #[test]
    fn queued_transactions_of_a_quiet_sender_expire() {
        let params = PoolParams {
            lifetime_secs: 0,
            ..Default::default()
        };
        let p = TxPool::new(config(params));
        let a = signer(1);
        p.add(tx(&a, 0, 1, 100), rich(), 0).unwrap();
        p.add(tx(&a, 2, 1, 100), rich(), 0).unwrap();
        assert_eq!(p.counts(), (1, 1));
        p.on_new_block(1, 1, &[], |_| rich());
        assert_eq!(p.counts(), (1, 0));
    }

    #[test]
    fn a_stale_state_never_replaces_a_fresher_one() {
        let p = pool(16, 100);
        let a = signer(1);
        p.add(tx(&a, 0, 1, 100), rich(), 0).unwrap();
        // Block 1 mined nonce 0 (another node's block, say) and left a smaller balance.
        let after = SenderState {
            nonce: 1,
            balance: U256::from(21_000 * 100 + 1),
        };
        p.on_new_block(1, 1, &[], |_| after);
        assert_eq!(p.known_state(&a.address()), None);
        // A state read before block 1 is refused for a sender the pool does not track...
        assert_eq!(
            p.add(tx(&a, 0, 2, 200), rich(), 0),
            Err(PoolError::StateStale)
        );
        p.add(tx(&a, 1, 1, 100), after, 1).unwrap();
        // ...and ignored for one it tracks: nonce 0 is too low, the balance covers one.
        assert_eq!(
            p.add(tx(&a, 0, 2, 200), rich(), 0),
            Err(PoolError::NonceTooLow { state: 1, tx: 0 })
        );
        assert!(matches!(
            p.add(tx(&a, 2, 1, 100), rich(), 0),
            Err(PoolError::InsufficientFunds { .. })
        ));
        assert_eq!(p.known_state(&a.address()), Some((after, 1)));
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
        p.add(tx(&a, 0, 1, 100), rich(), 0).unwrap();
        p.add(tx(&a, 1, 1, 100), rich(), 0).unwrap();
        p.add(tx(&b, 0, 1, 100), rich(), 0).unwrap();
        p.on_new_block(1, 1, &[], |addr| {
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
