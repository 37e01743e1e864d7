//! Block building: given a parent and a time, execute transactions on revm through alloy-evm's
//! Ethereum block executor and produce the block's contents. The builder never decides *when*
//! to seal; that belongs to the dev sealer today and the consensus engine later.

use crate::{
    block_roots::{self, BloomlessReceiptBuilder},
    block_state::BlockState,
    chainspec::ChainSpec,
    evm::ComputeEvmFactory,
    storage::{NewBlock, Reader, SealedHeader, StoreError},
};
use alloy::{
    consensus::{
        EMPTY_OMMER_ROOT_HASH, Header, ReceiptEnvelope, Transaction, TxEnvelope,
        constants::EMPTY_WITHDRAWALS, transaction::Recovered,
    },
    eips::{
        eip6110::{DEPOSIT_REQUEST_TYPE, MAINNET_DEPOSIT_CONTRACT_ADDRESS},
        eip7840::BlobParams,
    },
    primitives::{Address, B256, Bytes, U256, map::AddressSet},
};
use alloy_evm::{
    EvmEnv, EvmFactory,
    block::{
        BlockExecutionError, BlockExecutor, BlockExecutorFactory, BlockValidationError,
        InternalBlockExecutionError,
    },
    eth::{
        EthBlockExecutionCtx, EthBlockExecutorFactory, NextEvmEnvAttributes, spec::EthExecutorSpec,
    },
};
use computechain_precompiles::{STAKING_ADDRESS, SYSTEM_ADDRESS, interfaces::IStaking};
use revm::{
    DatabaseCommit,
    context::result::{EVMError, InvalidTransaction},
    database::{DatabaseCommitExt, WrapDatabaseRef},
};
use std::{borrow::Cow, collections::VecDeque, sync::Arc};
use tracing::{trace, warn};

/// Transactions handed to the roots thread at a time: one wake-up per batch, not per
/// transaction.
const ROOTS_BATCH: usize = 256;
/// Transactions handed to the roots thread at a time once the block's last [`ROOTS_BATCH`] are
/// known. The last batch is hashed after execution ends, so it is what sealing waits for (a
/// batch of 256 ERC-20 transfers: about 0.8 ms).
const ROOTS_TAIL_BATCH: usize = 64;
/// Transactions taken from the source ahead of execution, at most: enough to know when the
/// block's last [`ROOTS_BATCH`] are being executed.
const LOOKAHEAD: usize = 2 * ROOTS_BATCH;

/// A block's candidate transactions, taken from their source up to [`LOOKAHEAD`] ahead of
/// execution.
struct Lookahead<I> {
    source: I,
    ahead: VecDeque<Arc<Recovered<TxEnvelope>>>,
    /// The source has run out: `ahead` holds every transaction left.
    drained: bool,
}

impl<I: Iterator<Item = Arc<Recovered<TxEnvelope>>>> Lookahead<I> {
    fn new(source: I) -> Self {
        Self {
            source,
            ahead: VecDeque::with_capacity(LOOKAHEAD),
            drained: false,
        }
    }

    /// Whether at most `n` transactions are left (taken from the source or not).
    fn at_most_left(&self, n: usize) -> bool {
        self.drained && self.ahead.len() <= n
    }
}

impl<I: Iterator<Item = Arc<Recovered<TxEnvelope>>>> Iterator for Lookahead<I> {
    type Item = Arc<Recovered<TxEnvelope>>;

    /// The next transaction; when half the window has run, the next half is taken from the
    /// source.
    fn next(&mut self) -> Option<Self::Item> {
        if !self.drained && self.ahead.len() <= LOOKAHEAD / 2 {
            let taken = self.ahead.len();
            self.ahead
                .extend(self.source.by_ref().take(LOOKAHEAD - taken));
            self.drained = self.ahead.len() < LOOKAHEAD;
        }
        self.ahead.pop_front()
    }
}

/// What the consensus side supplies for a new block.
#[derive(Debug, Clone)]
pub struct BlockAttributes {
    /// Block timestamp (must exceed the parent's).
    pub timestamp: u64,
    /// The validator proposing the block: its pool receives the block reward and the fees.
    pub proposer: Address,
    /// PREVRANDAO value (consensus-derived; not a safe source of randomness).
    pub prev_randao: B256,
}

/// Errors that stop a block from being built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Execution failed for a reason other than an invalid transaction.
    #[error("block execution failed: {0}")]
    Execution(String),
    /// The requested timestamp does not advance the chain.
    #[error("timestamp {timestamp} is not after parent timestamp {parent}")]
    Timestamp {
        /// Requested.
        timestamp: u64,
        /// Parent's.
        parent: u64,
    },
}

/// A built block waiting to be committed, with the transactions it had to drop.
#[derive(Debug)]
pub struct BuiltBlock {
    /// The block contents (the store fills in the state root on commit).
    pub block: NewBlock,
    /// Transactions that failed validation against the block's state, with the reason.
    pub invalid: Vec<(B256, String)>,
}

/// Builds blocks on top of a parent.
#[derive(Debug, Clone)]
pub struct BlockBuilder {
    spec: Arc<ChainSpec>,
    executors: EthBlockExecutorFactory<BloomlessReceiptBuilder, Arc<ChainSpec>, ComputeEvmFactory>,
}

impl BlockBuilder {
    /// A builder for `spec`'s chain.
    pub fn new(spec: Arc<ChainSpec>) -> Self {
        let executors = EthBlockExecutorFactory::new(
            BloomlessReceiptBuilder,
            spec.clone(),
            ComputeEvmFactory::for_blocks(),
        );
        Self { spec, executors }
    }

    /// Base fee of the block after `parent`.
    pub fn next_base_fee(&self, parent: &Header) -> u64 {
        parent
            .next_block_base_fee(self.spec.base_fee_params())
            .unwrap_or_default()
    }

    /// The EVM environment of the block after `parent`.
    pub fn next_env(&self, parent: &Header, attrs: &BlockAttributes) -> EvmEnv {
        EvmEnv::for_eth_next_block(
            parent,
            NextEvmEnvAttributes {
                timestamp: attrs.timestamp,
                // Priority fees go to the staking pool, which credits the proposer's validator.
                suggested_fee_recipient: STAKING_ADDRESS,
                prev_randao: attrs.prev_randao,
                gas_limit: parent.gas_limit,
                slot_number: None,
            },
            self.next_base_fee(parent),
            &*self.spec,
            self.spec.chain_id(),
            Some(BlobParams::prague()),
        )
    }

    /// The EVM environment of an existing block (for calls at that block).
    pub fn env_at(&self, header: &Header) -> EvmEnv {
        EvmEnv::for_eth_block(
            header,
            &*self.spec,
            self.spec.chain_id(),
            Some(BlobParams::prague()),
        )
    }

    /// Block-boundary work: mints the block reward and the unburned share of the base fee
    /// (`baseFeeBurnBps`) into the staking pool and credits the proposer's validator with them
    /// plus the priority fees the block paid into the pool; records
    /// the block's signers for uptime; at an epoch boundary, fixes the next epoch's active set.
    /// Returns the system calls' logs.
    fn distribute_rewards<E>(
        &self,
        executor: &mut E,
        number: u64,
        proposer: Address,
        fees: U256,
        base_fees: U256,
    ) -> Result<Vec<alloy::primitives::Log>, BuildError>
    where
        E: BlockExecutor<Transaction = TxEnvelope, Receipt = ReceiptEnvelope>,
        E::Evm: alloy_evm::Evm<DB: DatabaseCommit + DatabaseCommitExt>,
    {
        use alloy::sol_types::SolCall;
        use alloy_evm::Evm as _;
        use computechain_precompiles::layout::slot;
        use revm::Database as _;
        let evm = executor.evm_mut();
        // One source for the reward, burn and epoch parameters: the staking precompile's state,
        // which its own methods and views read too.
        evm.db_mut()
            .basic(STAKING_ADDRESS)
            .map_err(|e| BuildError::Execution(format!("staking account: {e}")))?;
        let mut param = |index: u64| {
            evm.db_mut()
                .storage(STAKING_ADDRESS, U256::from(index))
                .map_err(|e| BuildError::Execution(format!("staking parameter {index}: {e}")))
        };
        let block_reward = param(slot::BLOCK_REWARD)?;
        let burn_bps = param(slot::BASE_FEE_BURN_BPS)?.min(U256::from(10_000));
        let epoch_length = param(slot::EPOCH_LENGTH)?.saturating_to::<u64>().max(1);
        // EIP-1559 burns the whole base fee; the pool's share is minted back.
        let unburned = base_fees * (U256::from(10_000) - burn_bps) / U256::from(10_000);
        let minted = block_reward.saturating_add(unburned);
        evm.db_mut()
            .increment_balances([(STAKING_ADDRESS, minted.saturating_to::<u128>())])
            .map_err(|_| BuildError::Execution("block reward mint failed".into()))?;
        let mut logs = staking_system_call(
            evm,
            IStaking::distributeRewardsCall {
                proposer,
                amount: minted + fees,
            }
            .abi_encode(),
        )?;
        // Until the consensus engine supplies the signer sets of certificates, the proposer is
        // the block's one signer.
        logs.extend(staking_system_call(
            evm,
            IStaking::recordSignersCall {
                signers: vec![proposer],
            }
            .abi_encode(),
        )?);
        if number.is_multiple_of(epoch_length) {
            logs.extend(staking_system_call(
                evm,
                IStaking::advanceEpochCall {}.abi_encode(),
            )?);
        }
        Ok(logs)
    }

    /// Executes `transactions` (in the order given, skipping those that do not fit or are
    /// invalid) on top of `parent`, whose state `reader` must see as latest.
    pub fn build(
        &self,
        reader: &Reader<'_>,
        parent: &SealedHeader,
        attrs: &BlockAttributes,
        transactions: impl IntoIterator<Item = Arc<Recovered<TxEnvelope>>>,
    ) -> Result<BuiltBlock, BuildError> {
        if attrs.timestamp <= parent.timestamp {
            return Err(BuildError::Timestamp {
                timestamp: attrs.timestamp,
                parent: parent.timestamp,
            });
        }
        let started = std::time::Instant::now();
        let env = self.next_env(parent, attrs);
        let gas_limit = parent.gas_limit;
        let base_fee = env.block_env.basefee;
        let state_db = reader.state_at(None);
        let transactions = transactions.into_iter();
        let tx_count_hint = transactions.size_hint().0;
        // A transaction touches two accounts, commonly: its sender and its recipient.
        let mut state = BlockState::with_capacity(WrapDatabaseRef(&state_db), 2 * tx_count_hint);
        std::thread::scope(|scope| {
            let evm = self.executors.evm_factory().create_evm(&mut state, env);
            let ctx = EthBlockExecutionCtx {
                parent_hash: parent.hash(),
                parent_beacon_block_root: Some(B256::ZERO),
                ommers: &[],
                withdrawals: Some(Cow::Owned(vec![])),
                extra_data: Bytes::new(),
                tx_count_hint: Some(tx_count_hint),
                slot_number: None,
            };
            let mut executor = self.executors.create_executor(evm, ctx);
            executor
                .apply_pre_execution_changes()
                .map_err(|e| BuildError::Execution(e.to_string()))?;
            // The block's body, roots and blooms are assembled on a second thread while the
            // transactions execute.
            let (to_roots, items) = std::sync::mpsc::channel();
            let deposit_contract = self
                .spec
                .deposit_contract_address()
                .unwrap_or(MAINNET_DEPOSIT_CONTRACT_ADDRESS);
            let roots_thread = scope.spawn(move || block_roots::compute(items, deposit_contract));
            let mut invalid = Vec::new();
            let mut gas_used = 0u64;
            // Priority fees paid into the staking pool (the block's fee recipient).
            let mut fees = U256::ZERO;
            let mut skipped_senders = AddressSet::default();
            let mut batch = Vec::with_capacity(ROOTS_BATCH);
            let mut transactions = Lookahead::new(transactions);
            while let Some(tx) = transactions.next() {
                if !skipped_senders.is_empty() && skipped_senders.contains(&tx.signer()) {
                    continue;
                }
                if tx.gas_limit() > gas_limit - gas_used {
                    // Does not fit; later transactions of this sender depend on it.
                    skipped_senders.insert(tx.signer());
                    continue;
                }
                match executor.execute_transaction_without_commit(tx.as_recovered_ref()) {
                    Ok(result) => {
                        let used = executor.commit_transaction(result).tx_gas_used();
                        gas_used += used;
                        let tip = tx.effective_tip_per_gas(base_fee).unwrap_or_default();
                        fees += U256::from(used) * U256::from(tip);
                        // The roots thread keeps the receipts for the block (and parses its deposit
                        // requests from them, for which `finish` then finds none).
                        let receipt = executor.receipts.pop().ok_or_else(|| {
                            BuildError::Execution("executor produced no receipt".into())
                        })?;
                        batch.push((tx, receipt));
                        if batch.len() == ROOTS_BATCH
                            || (batch.len() >= ROOTS_TAIL_BATCH
                                && transactions.at_most_left(ROOTS_BATCH))
                        {
                            // The roots thread only ends when this side hangs up.
                            let full =
                                std::mem::replace(&mut batch, Vec::with_capacity(ROOTS_BATCH));
                            let _ = to_roots.send(full);
                        }
                    }
                    Err(BlockExecutionError::Validation(BlockValidationError::InvalidTx {
                        hash,
                        error,
                    })) => {
                        trace!(target: "builder", %hash, %error, "dropping invalid transaction");
                        skipped_senders.insert(tx.signer());
                        invalid.push((hash, error.to_string()));
                    }
                    // The store failing is no fault of the transaction: the block cannot be
                    // built.
                    Err(BlockExecutionError::Internal(e)) if is_database_error(&e) => {
                        return Err(BuildError::Execution(e.to_string()));
                    }
                    // Any other failure is the transaction's (a precompile's fatal error, say):
                    // it leaves the block and the pool, and the block goes on without it.
                    Err(error) => {
                        let hash = *tx.tx_hash();
                        warn!(target: "builder", %hash, %error, "dropping transaction whose execution failed");
                        skipped_senders.insert(tx.signer());
                        invalid.push((hash, error.to_string()));
                    }
                }
            }
            let _ = to_roots.send(batch);
            drop(to_roots);
            let executed = started.elapsed();
            let system_logs = self.distribute_rewards(
                &mut executor,
                parent.number + 1,
                attrs.proposer,
                fees,
                U256::from(gas_used) * U256::from(base_fee),
            )?;
            let (_, result) = executor
                .finish()
                .map_err(|e| BuildError::Execution(e.to_string()))?;
            let finished = started.elapsed();
            let (changes, prior) = state.into_changes();
            let changed = started.elapsed();
            let body = roots_thread
                .join()
                .map_err(|_| BuildError::Execution("block roots thread panicked".into()))?
                .map_err(|e| BuildError::Execution(e.to_string()))?;
            let rooted = started.elapsed();
            let mut requests = result.requests;
            requests.push_request_with_type(DEPOSIT_REQUEST_TYPE, body.deposits);
            // Chain rule: the header bloom covers the system calls' logs too, so log queries that
            // skip blocks by bloom still find them.
            let logs_bloom = body.logs_bloom | alloy::primitives::logs_bloom(system_logs.iter());
            let header = Header {
                parent_hash: parent.hash(),
                ommers_hash: EMPTY_OMMER_ROOT_HASH,
                beneficiary: STAKING_ADDRESS,
                state_root: B256::ZERO,
                transactions_root: body.transactions_root,
                receipts_root: body.receipts_root,
                logs_bloom,
                difficulty: U256::ZERO,
                number: parent.number + 1,
                gas_limit,
                gas_used: result.gas_used,
                timestamp: attrs.timestamp,
                extra_data: Bytes::new(),
                mix_hash: attrs.prev_randao,
                nonce: Default::default(),
                base_fee_per_gas: Some(base_fee),
                withdrawals_root: Some(EMPTY_WITHDRAWALS),
                blob_gas_used: Some(0),
                excess_blob_gas: Some(0),
                parent_beacon_block_root: Some(B256::ZERO),
                requests_hash: Some(requests.requests_hash()),
                block_access_list_hash: None,
                slot_number: None,
            };
            trace!(
                target: "builder",
                txs = body.transactions.len(),
                execute_ms = executed.as_secs_f64() * 1e3,
                assemble_ms = (started.elapsed() - executed).as_secs_f64() * 1e3,
                finish_ms = (finished - executed).as_secs_f64() * 1e3,
                changes_ms = (changed - finished).as_secs_f64() * 1e3,
                roots_wait_ms = (rooted - changed).as_secs_f64() * 1e3,
                "block built"
            );
            Ok(BuiltBlock {
                block: NewBlock {
                    header,
                    transactions: body.transactions,
                    senders: body.senders,
                    receipts: body.receipts,
                    changes,
                    system_logs,
                    prior,
                },
                invalid,
            })
        })
    }
}

/// Whether a block execution error is the state database failing.
fn is_database_error(error: &InternalBlockExecutionError) -> bool {
    matches!(
        error.downcast_evm::<EVMError<StoreError, InvalidTransaction>>(),
        Some(EVMError::Database(_))
    )
}

/// Calls the staking precompile as the protocol (`0xff…fe`) and commits the result; returns
/// its logs.
fn staking_system_call<E>(
    evm: &mut E,
    data: Vec<u8>,
) -> Result<Vec<alloy::primitives::Log>, BuildError>
where
    E: alloy_evm::Evm<DB: DatabaseCommit>,
{
    let result = evm
        .transact_system_call(SYSTEM_ADDRESS, STAKING_ADDRESS, data.into())
        .map_err(|e| BuildError::Execution(format!("staking system call: {e:?}")))?;
    if !result.result.is_success() {
        return Err(BuildError::Execution(format!(
            "staking system call failed: {:?}",
            result.result
        )));
    }
    let logs = result.result.logs().to_vec();
    evm.db_mut().commit(result.state);
    Ok(logs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Store;
    use alloy::{
        consensus::{SignableTransaction, TxEip1559, TxLegacy},
        primitives::{TxKind, hex},
        signers::{SignerSync, local::PrivateKeySigner},
    };

    fn signed(
        key: &PrivateKeySigner,
        tx: impl SignableTransaction<alloy::primitives::Signature>
        + Into<alloy::consensus::TypedTransaction>,
    ) -> Arc<Recovered<TxEnvelope>> {
        let sig = key.sign_hash_sync(&tx.signature_hash()).unwrap();
        let typed: alloy::consensus::TypedTransaction = tx.into();
        let env: TxEnvelope = match typed {
            alloy::consensus::TypedTransaction::Eip1559(t) => t.into_signed(sig).into(),
            alloy::consensus::TypedTransaction::Legacy(t) => t.into_signed(sig).into(),
            _ => unreachable!(),
        };
        Arc::new(Recovered::new_unchecked(env, key.address()))
    }

    #[test]
    fn executes_transfers_and_contracts_with_correct_roots() {
        let dir = tempfile::tempdir().unwrap();
        let dev = ChainSpec::dev();
        // 40% of the base fee burned, 60% paid to the proposer's validator (a genesis parameter:
        // the builder reads it from the staking precompile's state).
        let mut params = dev.params.clone();
        params.staking.base_fee_burn_bps = 4_000;
        let spec = Arc::new(ChainSpec::from_genesis(dev.genesis.clone(), params).unwrap());
        let store = Store::open(dir.path()).unwrap();
        let genesis = store
            .init_genesis(&spec.genesis, spec.genesis_header())
            .unwrap();
        let builder = BlockBuilder::new(spec.clone());
        let key = crate::dev::dev_accounts(1).unwrap().remove(0);
        let to = Address::repeat_byte(0x77);
        // Init code storing 0x2a in slot 1, 0x07 in slot 2, returning empty code.
        let init = hex!("602a600155600760025500");
        let txs = vec![
            signed(
                &key,
                TxEip1559 {
                    chain_id: 7357,
                    nonce: 0,
                    gas_limit: 21_000,
                    max_fee_per_gas: 2_000_000_000,
                    max_priority_fee_per_gas: 3,
                    to: TxKind::Call(to),
                    value: U256::from(1000),
                    ..Default::default()
                },
            ),
            signed(
                &key,
                TxLegacy {
                    chain_id: Some(7357),
                    nonce: 1,
                    gas_price: 2_000_000_000,
                    gas_limit: 100_000,
                    to: TxKind::Create,
                    input: init.into(),
                    ..Default::default()
                },
            ),
            // Nonce gap: invalid against the block's state, dropped, not fatal.
            signed(
                &key,
                TxEip1559 {
                    chain_id: 7357,
                    nonce: 9,
                    gas_limit: 21_000,
                    max_fee_per_gas: 2_000_000_000,
                    to: TxKind::Call(to),
                    ..Default::default()
                },
            ),
        ];
        let attrs = BlockAttributes {
            timestamp: 1,
            proposer: key.address(),
            prev_randao: B256::repeat_byte(1),
        };
        let built = builder
            .build(&store.read().unwrap(), &genesis, &attrs, txs)
            .unwrap();
        assert_eq!(built.block.transactions.len(), 2);
        assert_eq!(built.invalid.len(), 1);
        assert!(built.block.receipts.iter().all(|r| r.status()));
        let header = store.commit_block(built.block).unwrap().header.clone();
        store.flush().unwrap();
        let reader = store.read().unwrap();
        assert_eq!(
            header.state_root,
            reader.full_state_root_from_plain_state().unwrap()
        );
        assert_eq!(header.number, 1);
        assert_eq!(
            header.base_fee_per_gas,
            Some(builder.next_base_fee(&genesis))
        );
        let state = reader.state_at(None);
        assert_eq!(
            state.account(&to).unwrap().unwrap().balance,
            U256::from(1000)
        );
        let created = key.address().create(1);
        assert_eq!(
            state.storage(&created, &B256::with_last_byte(1)).unwrap(),
            U256::from(0x2a)
        );
        // Priority fees, the block reward and 60% of the base fee go to the staking pool and are
        // credited to the proposer's validator (10% commission); 40% of the base fee is burned.
        let base_fees = U256::from(header.gas_used) * U256::from(header.base_fee_per_gas.unwrap());
        let unburned = base_fees * U256::from(6) / U256::from(10);
        let burned = base_fees - unburned;
        let tips = U256::from(21_000u64 * 3)
            + U256::from(header.gas_used - 21_000)
                * U256::from(2_000_000_000u64 - header.base_fee_per_gas.unwrap());
        let reward = spec.params.staking.block_reward;
        let pool = |n| {
            reader
                .state_at(Some(n))
                .account(&STAKING_ADDRESS)
                .unwrap()
                .unwrap()
                .balance
        };
        assert_eq!(pool(1) - pool(0), reward + unburned + tips);
        let commission_slot = computechain_precompiles::layout::validator_base(key.address())
            + U256::from(computechain_precompiles::layout::validator::COMMISSION_UNCLAIMED);
        assert_eq!(
            state
                .storage(&STAKING_ADDRESS, &B256::from(commission_slot))
                .unwrap(),
            (reward + unburned + tips) / U256::from(10)
        );
        let supply = |n| {
            let s = reader.state_at(Some(n));
            spec.genesis
                .alloc
                .keys()
                .chain([&to, &created])
                .map(|a| s.account(a).unwrap().map(|x| x.balance).unwrap_or_default())
                .fold(U256::ZERO, |x, y| x + y)
        };
        assert_eq!(
            supply(1) + burned,
            supply(0) + reward,
            "supply changes by exactly mint - burn"
        );
        // A later timestamp is required.
        assert!(matches!(
            builder.build(
                &reader,
                &header,
                &BlockAttributes {
                    timestamp: 1,
                    ..attrs
                },
                vec![]
            ),
            Err(BuildError::Timestamp { .. })
        ));
    }

    #[test]
    fn a_transaction_whose_escrow_payout_fails_reverts_and_the_block_goes_on() {
        use alloy::sol_types::SolCall;
        use computechain_precompiles::{
            DELEGATION_ADDRESS, interfaces::IDelegation, layout::validator,
        };
        let dir = tempfile::tempdir().unwrap();
        let key = crate::dev::dev_accounts(1).unwrap().remove(0);
        let mut spec = ChainSpec::dev();
        // Corrupt the reward ledger: the validator is owed more commission than the staking
        // pool holds, so its claim's escrow transfer fails: a revert, and the block goes on.
        let owed = computechain_precompiles::layout::validator_base(key.address())
            + U256::from(validator::COMMISSION_UNCLAIMED);
        spec.genesis
            .alloc
            .get_mut(&STAKING_ADDRESS)
            .unwrap()
            .storage
            .get_or_insert_default()
            .insert(B256::from(owed), B256::from(U256::from(10u128.pow(30))));
        let mut header = spec.genesis_header().clone();
        header.state_root = crate::trie::genesis_state_root(&spec.genesis.alloc);
        let spec = Arc::new(spec);
        let store = Store::open(dir.path()).unwrap();
        let genesis = store.init_genesis(&spec.genesis, &header).unwrap();
        let builder = BlockBuilder::new(spec.clone());
        let claim = signed(
            &key,
            TxEip1559 {
                chain_id: 7357,
                nonce: 0,
                gas_limit: 200_000,
                max_fee_per_gas: 2_000_000_000,
                to: TxKind::Call(DELEGATION_ADDRESS),
                input: IDelegation::claimRewardsCall {
                    validator: key.address(),
                }
                .abi_encode()
                .into(),
                ..Default::default()
            },
        );
        let other = crate::dev::dev_accounts(2).unwrap().remove(1);
        let transfer = signed(
            &other,
            TxEip1559 {
                chain_id: 7357,
                nonce: 0,
                gas_limit: 21_000,
                max_fee_per_gas: 2_000_000_000,
                to: TxKind::Call(Address::repeat_byte(0x77)),
                value: U256::from(5),
                ..Default::default()
            },
        );
        let attrs = BlockAttributes {
            timestamp: 1,
            proposer: key.address(),
            prev_randao: B256::repeat_byte(1),
        };
        let built = builder
            .build(
                &store.read().unwrap(),
                &genesis,
                &attrs,
                vec![claim.clone(), transfer.clone()],
            )
            .unwrap();
        assert!(built.invalid.is_empty());
        assert_eq!(
            built
                .block
                .transactions
                .iter()
                .map(|t| *t.tx_hash())
                .collect::<Vec<_>>(),
            vec![*claim.tx_hash(), *transfer.tx_hash()]
        );
        let statuses: Vec<bool> = built.block.receipts.iter().map(|r| r.status()).collect();
        assert_eq!(statuses, vec![false, true], "the claim reverted");
    }

    #[test]
    fn roots_of_a_block_of_many_batches_equal_their_computation_from_the_whole_block() {
        // Full batches to the roots thread, then the tail batches, then a last partial one.
        let count = 2 * ROOTS_BATCH + 3 * ROOTS_TAIL_BATCH + 5;
        let dir = tempfile::tempdir().unwrap();
        let spec = Arc::new(ChainSpec::dev());
        let store = Store::open(dir.path()).unwrap();
        let genesis = store
            .init_genesis(&spec.genesis, spec.genesis_header())
            .unwrap();
        let key = crate::dev::dev_accounts(1).unwrap().remove(0);
        let txs: Vec<_> = (0..count as u64)
            .map(|nonce| {
                signed(
                    &key,
                    TxEip1559 {
                        chain_id: 7357,
                        nonce,
                        gas_limit: 21_000,
                        max_fee_per_gas: 2_000_000_000,
                        to: TxKind::Call(Address::with_last_byte(nonce as u8)),
                        value: U256::from(nonce),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let attrs = BlockAttributes {
            timestamp: 1,
            proposer: key.address(),
            prev_randao: B256::ZERO,
        };
        let built = BlockBuilder::new(spec)
            .build(&store.read().unwrap(), &genesis, &attrs, txs)
            .unwrap();
        let block = &built.block;
        assert_eq!(block.transactions.len(), count);
        assert_eq!(
            block.header.transactions_root,
            alloy::consensus::proofs::calculate_transaction_root(&block.transactions)
        );
        assert_eq!(
            block.header.receipts_root,
            alloy::consensus::proofs::calculate_receipt_root(&block.receipts)
        );
        // The roots thread hands the body back in block order.
        assert!(block.senders.iter().all(|s| *s == key.address()));
        assert!(
            block
                .transactions
                .iter()
                .enumerate()
                .all(|(i, tx)| tx.nonce() == i as u64)
        );
        assert!(
            block
                .receipts
                .iter()
                .zip(1u64..)
                .all(|(r, n)| r.cumulative_gas_used() == 21_000 * n)
        );
    }

    #[test]
    fn deposit_contract_logs_make_the_blocks_deposit_requests() {
        use alloy::{eips::eip7685::Requests, genesis::GenesisAccount, sol_types::SolEvent};
        alloy::sol! {
            event DepositEvent(bytes pubkey, bytes withdrawal_credentials, bytes amount, bytes signature, bytes index);
        }
        // Logs its calldata as a DepositEvent: CALLDATACOPY(0, 0, size); LOG1(0, size, topic).
        let mut code = hex!("365f5f377f").to_vec();
        code.extend_from_slice(DepositEvent::SIGNATURE_HASH.as_slice());
        code.extend_from_slice(&hex!("365fa100"));
        let mut spec = ChainSpec::dev();
        // The dev chain names no deposit contract (the zero address, which has no code).
        spec.genesis.config.deposit_contract_address = Some(MAINNET_DEPOSIT_CONTRACT_ADDRESS);
        spec.genesis.alloc.insert(
            MAINNET_DEPOSIT_CONTRACT_ADDRESS,
            GenesisAccount {
                code: Some(code.into()),
                ..Default::default()
            },
        );
        let spec = Arc::new(ChainSpec::from_genesis(spec.genesis, spec.params).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let genesis = store
            .init_genesis(&spec.genesis, spec.genesis_header())
            .unwrap();
        let key = crate::dev::dev_accounts(1).unwrap().remove(0);
        let deposit = |i: u8| DepositEvent {
            pubkey: vec![i; 48].into(),
            withdrawal_credentials: vec![i + 1; 32].into(),
            amount: vec![i + 2; 8].into(),
            signature: vec![i + 3; 96].into(),
            index: vec![i + 4; 8].into(),
        };
        let txs: Vec<_> = [
            (MAINNET_DEPOSIT_CONTRACT_ADDRESS, deposit(1)),
            // The same event from another address is no deposit.
            (Address::repeat_byte(0x42), deposit(9)),
            (MAINNET_DEPOSIT_CONTRACT_ADDRESS, deposit(5)),
        ]
        .into_iter()
        .enumerate()
        .map(|(nonce, (to, event))| {
            signed(
                &key,
                TxEip1559 {
                    chain_id: 7357,
                    nonce: nonce as u64,
                    gas_limit: 100_000,
                    max_fee_per_gas: 2_000_000_000,
                    to: TxKind::Call(to),
                    input: event.encode_data().into(),
                    ..Default::default()
                },
            )
        })
        .collect();
        let attrs = BlockAttributes {
            timestamp: 1,
            proposer: key.address(),
            prev_randao: B256::ZERO,
        };
        let built = BlockBuilder::new(spec.clone())
            .build(&store.read().unwrap(), &genesis, &attrs, txs)
            .unwrap();
        let block = &built.block;
        assert_eq!(block.transactions.len(), 3);
        assert_eq!(
            block.receipts.iter().map(|r| r.logs().len()).sum::<usize>(),
            2
        );
        let mut expected = Vec::new();
        for i in [1, 5] {
            let event = deposit(i);
            for field in [
                &event.pubkey,
                &event.withdrawal_credentials,
                &event.amount,
                &event.signature,
                &event.index,
            ] {
                expected.extend_from_slice(field);
            }
        }
        let mut requests = Requests::default();
        requests.push_request_with_type(DEPOSIT_REQUEST_TYPE, expected.clone());
        assert_eq!(block.header.requests_hash, Some(requests.requests_hash()));
        // As alloy-evm's executor parses them from the block's receipts.
        let parsed =
            alloy_evm::eth::eip6110::parse_deposits_from_receipts(&*spec, &block.receipts).unwrap();
        assert_eq!(parsed.as_ref(), expected.as_slice());
        assert_ne!(
            requests.requests_hash(),
            Requests::default().requests_hash()
        );
    }
}
