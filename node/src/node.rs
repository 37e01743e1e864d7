//! The node core: storage, pool and builder wired together, the canonical head, and the
//! stream of committed blocks that RPC subscriptions and filters follow.

use crate::{
    builder::{BlockAttributes, BlockBuilder, BuildError},
    chainspec::ChainSpec,
    pool::{PoolConfig, PoolError, SenderState, TxPool},
    storage::{CommittedBlock, Reader, SealedHeader, Store, StoreError},
};
use alloy::{
    consensus::{Transaction, TxEnvelope, transaction::SignerRecoverable},
    eips::Decodable2718,
    primitives::{Address, B256, keccak256},
};
use parking_lot::{Mutex, RwLock};
use revm::primitives::hardfork::SpecId;
use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::broadcast;
use tracing::info;

/// Why a submitted raw transaction was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Not a valid EIP-2718 encoding.
    #[error("invalid transaction: {0}")]
    Decode(String),
    /// The signature does not recover.
    #[error("invalid sender: {0}")]
    InvalidSender(String),
    /// The pool refused it.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A block this node sealed, and where the sealing time went.
#[derive(Debug)]
pub struct SealReport {
    /// The committed block.
    pub block: Arc<CommittedBlock>,
    /// Choosing the pool's transactions and executing them into a block.
    pub build: Duration,
    /// Computing the block's state root and making it durable.
    pub commit: Duration,
}

/// The running chain.
#[derive(Debug)]
pub struct Node {
    /// Chain specification.
    pub spec: Arc<ChainSpec>,
    /// Storage.
    pub store: Store,
    /// Transaction pool.
    pub pool: TxPool,
    /// Block builder (and the EVM factory).
    pub builder: BlockBuilder,
    head: RwLock<SealedHeader>,
    blocks: broadcast::Sender<Arc<CommittedBlock>>,
    proposer: Address,
    sealing: Mutex<()>,
}

impl Node {
    /// Opens the chain in `datadir`, writing genesis on first start.
    /// `proposer` is the validator this node seals blocks as (its pool receives the rewards).
    pub fn open(spec: ChainSpec, datadir: &Path, proposer: Address) -> Result<Self, StoreError> {
        let spec = Arc::new(spec);
        std::fs::create_dir_all(datadir).map_err(|error| StoreError::DataDir {
            path: datadir.display().to_string(),
            error,
        })?;
        let store = Store::open(&datadir.join("db"))?;
        let head = store.init_genesis(&spec.genesis, spec.genesis_header())?;
        let pool = TxPool::new(PoolConfig {
            params: spec.params.tx_pool.clone(),
            chain_id: spec.chain_id(),
            block_gas_limit: head.gas_limit,
            max_tx_bytes: spec.params.max_tx_bytes,
            spec: SpecId::PRAGUE,
        });
        let (blocks, _) = broadcast::channel(256);
        info!(target: "node", number = head.number, hash = %head.hash(), state_root = %head.state_root, "chain head");
        Ok(Self {
            builder: BlockBuilder::new(spec.clone()),
            spec,
            store,
            pool,
            head: RwLock::new(head),
            blocks,
            proposer,
            sealing: Mutex::new(()),
        })
    }

    /// The canonical head.
    pub fn head(&self) -> SealedHeader {
        self.head.read().clone()
    }

    /// Committed blocks, in order.
    pub fn subscribe_blocks(&self) -> broadcast::Receiver<Arc<CommittedBlock>> {
        self.blocks.subscribe()
    }

    /// Account nonce and balance in the latest state.
    pub fn sender_state(reader: &Reader<'_>, address: &Address) -> Result<SenderState, StoreError> {
        Ok(reader
            .state_at(None)
            .account(address)?
            .map(|a| SenderState {
                nonce: a.nonce,
                balance: a.balance,
            })
            .unwrap_or_default())
    }

    /// The current epoch's active validator set with each one's total stake, read from the
    /// staking precompile's storage without an EVM call (what the consensus engine uses).
    pub fn active_set(&self) -> Result<Vec<(Address, alloy::primitives::U256)>, StoreError> {
        struct StakingSlots<'a, 'r, 'db>(&'a crate::storage::StateDb<'r, 'db>);
        impl computechain_precompiles::layout::Slots for StakingSlots<'_, '_, '_> {
            type Error = StoreError;
            fn load(
                &mut self,
                slot: alloy::primitives::U256,
            ) -> Result<alloy::primitives::U256, StoreError> {
                self.0.storage(
                    &computechain_precompiles::STAKING_ADDRESS,
                    &B256::from(slot),
                )
            }
        }
        let reader = self.store.read()?;
        let state = reader.state_at(None);
        computechain_precompiles::layout::epoch_set(&mut StakingSlots(&state))
    }

    /// Decodes, recovers, validates and pools a raw transaction.
    pub fn submit_raw(&self, raw: &[u8]) -> Result<B256, SubmitError> {
        let tx =
            TxEnvelope::decode_2718_exact(raw).map_err(|e| SubmitError::Decode(e.to_string()))?;
        let recovered = tx
            .try_into_recovered()
            .map_err(|e| SubmitError::InvalidSender(e.to_string()))?;
        let base_fee = self.builder.next_base_fee(&self.head.read());
        self.pool.validate_stateless(&recovered, base_fee)?;
        // What the block including the transaction will read of its sender and callee (their
        // accounts, and their account-trie paths) is read now, so that the block finds it in
        // memory: the sender's with its first transaction in the pool.
        if let Some(callee) = recovered.to() {
            self.store.prefetch_account(&callee)?;
        }
        let tx = Arc::new(recovered);
        // A state read just before a block lands is stale for a sender the pool does not track
        // yet; it is read again (a block lands at most once per read).
        for _ in 0..3 {
            let (state, block) = match self.pool.known_state(&tx.signer()) {
                Some(known) => known,
                None => {
                    let reader = self.store.read()?;
                    let state = Self::sender_state(&reader, &tx.signer())?;
                    self.store.prefetch_account(&tx.signer())?;
                    (state, reader.head_number().unwrap_or_default())
                }
            };
            match self.pool.add(tx.clone(), state, block) {
                Err(PoolError::StateStale) => continue,
                result => return Ok(result?),
            }
        }
        Err(PoolError::StateStale.into())
    }

    /// Builds, commits and announces the next block at `timestamp` (bumped past the parent's if
    /// needed) from the pool's best transactions. Runs on the calling thread: call it from a
    /// blocking thread, never from an async task.
    pub fn seal_next_block(&self, timestamp: u64) -> Result<SealReport, BuildError> {
        let _sealing = self.sealing.lock();
        let started = Instant::now();
        let parent = self.head();
        let attrs = BlockAttributes {
            timestamp: timestamp.max(parent.timestamp + 1),
            proposer: self.proposer,
            prev_randao: keccak256(parent.hash()),
        };
        let candidates = self
            .pool
            .best_transactions(self.builder.next_base_fee(&parent));
        let built = {
            let reader = self.store.read()?;
            self.builder.build(&reader, &parent, &attrs, candidates)?
        };
        let invalid: Vec<B256> = built.invalid.iter().map(|(h, _)| *h).collect();
        let build = started.elapsed();
        let committed = self.store.commit_block(built.block)?;
        let commit = started.elapsed() - build;
        let header = &committed.header;
        *self.head.write() = header.clone();
        {
            let reader = self.store.read()?;
            self.pool.on_new_block(
                header.number,
                self.builder.next_base_fee(header),
                &invalid,
                |a| Self::sender_state(&reader, a).unwrap_or_default(),
            );
        }
        info!(
            target: "node",
            number = header.number,
            hash = %header.hash(),
            txs = committed.transactions.len(),
            gas_used = header.gas_used,
            build_ms = build.as_secs_f64() * 1e3,
            commit_ms = commit.as_secs_f64() * 1e3,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "sealed block"
        );
        let _ = self.blocks.send(committed.clone());
        Ok(SealReport {
            block: committed,
            build,
            commit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::{
        consensus::{SignableTransaction, TxEip1559},
        eips::Encodable2718,
        primitives::{TxKind, U256, address},
        signers::SignerSync,
    };

    fn transfer(node: &Node, chain_id: u64, to: Address) -> Vec<u8> {
        let signer = &crate::dev::dev_accounts(1).unwrap()[0];
        let tx = TxEip1559 {
            chain_id,
            gas_limit: 21_000,
            max_fee_per_gas: node.builder.next_base_fee(&node.head()).into(),
            to: TxKind::Call(to),
            value: U256::from(1),
            ..Default::default()
        };
        let signature = signer.sign_hash_sync(&tx.signature_hash()).unwrap();
        TxEnvelope::from(tx.into_signed(signature)).encoded_2718()
    }

    #[test]
    fn admission_reads_the_callee_into_the_account_cache() {
        let dir = tempfile::tempdir().unwrap();
        let dev = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        let node = Node::open(ChainSpec::dev(), dir.path(), dev).unwrap();
        let (callee, other) = (Address::repeat_byte(0x42), Address::repeat_byte(0x43));
        assert!(!node.store.caches_account(&callee));
        // Refused (wrong chain): nothing read.
        assert!(
            node.submit_raw(&transfer(&node, node.spec.chain_id() + 1, other))
                .is_err()
        );
        assert!(!node.store.caches_account(&other));
        node.submit_raw(&transfer(&node, node.spec.chain_id(), callee))
            .unwrap();
        assert!(node.store.caches_account(&callee));
        assert!(
            node.store.caches_account(&dev),
            "the sender, read to validate"
        );
        let sealed = node.seal_next_block(1).unwrap();
        assert_eq!(sealed.block.transactions.len(), 1);
        let reader = node.store.read().unwrap();
        let account = reader.state_at(None).account(&callee).unwrap().unwrap();
        assert_eq!(account.balance, U256::from(1));
    }

    #[test]
    fn active_set_is_read_from_precompile_state() {
        let dir = tempfile::tempdir().unwrap();
        let dev = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        let node = Node::open(ChainSpec::dev(), dir.path(), dev).unwrap();
        let thousand = U256::from(1000u64) * U256::from(10u64).pow(U256::from(18));
        assert_eq!(node.active_set().unwrap(), vec![(dev, thousand)]);
        // Sealing credits rewards without changing stake.
        node.seal_next_block(1).unwrap();
        assert_eq!(node.active_set().unwrap(), vec![(dev, thousand)]);
    }
}
