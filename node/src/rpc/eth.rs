//! The `eth_`, `net_` and `web3_` methods.

use super::deadline::Deadline;
use super::error::{RpcResult, header_not_found, internal, invalid_params, reverted, server_error};
use crate::evm::ComputeEvmFactory;
use crate::{
    node::Node,
    storage::{Reader, SealedHeader},
};
use alloy::{
    consensus::Transaction as _,
    eips::{BlockId, BlockNumberOrTag},
    primitives::{Address, B256, Bytes, TxKind, U64, U256, keccak256},
    rpc::types::{
        FeeHistory, Filter, FilterBlockOption, Log, TransactionRequest, state::StateOverride,
    },
};
use alloy_evm::{Evm, EvmFactory, overrides::apply_state_overrides};
use revm::{
    context::{
        TxEnv,
        result::{EVMError, ExecutionResult, InvalidTransaction},
    },
    database::{CacheDB, WrapDatabaseRef},
};
use std::sync::Arc;

/// Most blocks one `eth_feeHistory` call may cover.
const MAX_FEE_HISTORY_BLOCKS: u64 = 1024;
/// Default tip suggestion when recent blocks carry no transactions (1 gwei).
const DEFAULT_TIP: u128 = 1_000_000_000;

/// Most reward percentiles one `eth_feeHistory` call may ask for (geth's limit).
const MAX_FEE_HISTORY_PERCENTILES: usize = 100;
/// Most storage keys one `eth_getProof` call may ask for (geth's limit).
pub(crate) const MAX_PROOF_KEYS: usize = 1024;
/// Most logs one `eth_getLogs` / filter response carries (reth's limit).
pub(crate) const MAX_LOGS_PER_RESPONSE: usize = 20_000;

/// Heavy requests waiting for a thread, at most: beyond that, a request is refused at once
/// rather than held (with its parameters) in memory.
const MAX_HEAVY_WAITING: usize = 128;

/// The threads heavy methods may use, and the requests waiting for one.
#[derive(Debug)]
pub(crate) struct HeavyWork {
    threads: Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
}

impl HeavyWork {
    /// At most `threads` heavy methods at once.
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            threads: Arc::new(tokio::sync::Semaphore::new(threads)),
            waiting: Default::default(),
        }
    }

    /// Waits for a thread; refuses when [`MAX_HEAVY_WAITING`] requests already wait.
    pub(crate) async fn admit(&self) -> RpcResult<tokio::sync::OwnedSemaphorePermit> {
        use std::sync::atomic::Ordering;
        if let Ok(permit) = self.threads.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= MAX_HEAVY_WAITING {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(server_error(
                "server busy: too many requests waiting to execute, try again later",
            ));
        }
        let permit = self.threads.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        permit.map_err(internal)
    }
}

/// Bounds on `eth_call` and `eth_estimateGas`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallLimits {
    /// Most gas one call may use (`--rpc.gascap`; 0: the block gas limit).
    pub(crate) gas_cap: u64,
    /// Longest one call (or a whole estimation) may execute (`--rpc.evmtimeout`; 0: unbounded).
    pub(crate) evm_timeout: std::time::Duration,
}

/// Shared state of the RPC handlers.
#[derive(Debug)]
pub(crate) struct EthApi {
    /// The node.
    pub(crate) node: Arc<Node>,
    /// Call bounds.
    pub(crate) limits: CallLimits,
    /// The logs of the newest block in RPC form, shared by every `logs` subscription.
    pub(crate) newest_logs: parking_lot::Mutex<Option<(B256, Arc<Vec<Log>>)>>,
    /// Threads for heavy methods (see `register_heavy`).
    pub(crate) heavy: HeavyWork,
    /// Filters installed with `eth_new*Filter`.
    pub(crate) filters: Arc<super::filters::Filters>,
    /// The suggested tip and the head it was computed at: wallets ask for it often, and it only
    /// changes with a new block.
    pub(crate) suggested_tip: parking_lot::Mutex<Option<(B256, u128)>>,
}

impl EthApi {
    /// Resolves a block tag or number to a committed header. `pending`, `safe` and `finalized`
    /// are the head: a dev chain seals and finalizes each block at once.
    pub(crate) fn resolve(&self, reader: &Reader<'_>, id: BlockId) -> RpcResult<SealedHeader> {
        let number = match id {
            BlockId::Hash(h) => reader
                .block_number(h.block_hash)
                .map_err(internal)?
                .ok_or_else(header_not_found)?,
            BlockId::Number(tag) => tag_to_number(reader, tag)?,
        };
        reader
            .sealed_header(number)
            .map_err(internal)?
            .ok_or_else(header_not_found)
    }

    /// `eth_getBalance` / `eth_getTransactionCount` / `eth_getCode` source.
    pub(crate) fn account_at(
        &self,
        address: Address,
        id: BlockId,
    ) -> RpcResult<(Option<crate::storage::StoredAccount>, Option<Bytes>)> {
        let reader = self.node.store.read().map_err(internal)?;
        let header = self.resolve(&reader, id)?;
        let state = reader.state_at(Some(header.number));
        let account = state.account(&address).map_err(internal)?;
        let code = match &account {
            Some(acc) => state
                .code(&acc.code_hash)
                .map_err(internal)?
                .map(|c| c.original_bytes()),
            None => None,
        };
        Ok((account, code))
    }

    /// `eth_getStorageAt`.
    pub(crate) fn storage_at(&self, address: Address, slot: U256, id: BlockId) -> RpcResult<B256> {
        let reader = self.node.store.read().map_err(internal)?;
        let header = self.resolve(&reader, id)?;
        let value = reader
            .state_at(Some(header.number))
            .storage(&address, &B256::from(slot))
            .map_err(internal)?;
        Ok(B256::from(value))
    }

    /// The nonce the next transaction of `address` should use, counting pooled ones for `pending`.
    pub(crate) fn transaction_count(&self, address: Address, id: BlockId) -> RpcResult<U256> {
        if id == BlockId::pending()
            && let Some(nonce) = self.node.pool.pending_nonce(&address)
        {
            return Ok(U256::from(nonce));
        }
        let (account, _) = self.account_at(address, id)?;
        Ok(U256::from(account.map(|a| a.nonce).unwrap_or_default()))
    }

    fn tx_env(&self, request: &TransactionRequest, gas_limit: u64, nonce: u64) -> RpcResult<TxEnv> {
        let chain_id = self.node.spec.chain_id();
        if request.chain_id.is_some_and(|id| id != chain_id) {
            return Err(server_error("invalid chain id"));
        }
        let mut builder = TxEnv::builder()
            .caller(request.from.unwrap_or_default())
            .gas_limit(gas_limit)
            .kind(request.to.unwrap_or(TxKind::Create))
            .value(request.value.unwrap_or_default())
            .data(request.input.input().cloned().unwrap_or_default())
            .nonce(nonce)
            .chain_id(Some(chain_id))
            .access_list(request.access_list.clone().unwrap_or_default());
        if let Some(price) = request.gas_price {
            builder = builder.gas_price(price);
        } else if let Some(max_fee) = request.max_fee_per_gas {
            builder = builder
                .gas_price(max_fee)
                .gas_priority_fee(request.max_priority_fee_per_gas);
        }
        if let Some(auths) = &request.authorization_list {
            builder = builder.authorization_list_signed(auths.clone());
        }
        Ok(builder.build_fill())
    }

    /// Runs a call at `id` with optional state overrides. The closure gets each execution
    /// result for a given gas limit, so estimation can reuse one EVM and cache; all executions
    /// together end at the call's deadline.
    fn with_call_evm<T>(
        &self,
        request: &TransactionRequest,
        id: BlockId,
        overrides: Option<StateOverride>,
        run: impl FnOnce(&mut dyn FnMut(u64) -> RpcResult<ExecutionResult>, u64) -> RpcResult<T>,
    ) -> RpcResult<T> {
        let reader = self.node.store.read().map_err(internal)?;
        let header = self.resolve(&reader, id)?;
        let state = reader.state_at(Some(header.number));
        let mut db = CacheDB::new(WrapDatabaseRef(&state));
        if let Some(overrides) = overrides {
            check_overrides(&overrides)?;
            apply_state_overrides(overrides, &mut db).map_err(|e| invalid_params(e.to_string()))?;
        }
        // `pending` runs in the environment of the block being built next (its base fee).
        let mut env = if matches!(id, BlockId::Number(BlockNumberOrTag::Pending)) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            let attrs = crate::builder::BlockAttributes {
                // As the sealer stamps the next block.
                timestamp: now.max(header.timestamp + 1),
                proposer: Address::ZERO,
                prev_randao: keccak256(header.hash()),
            };
            self.node.builder.next_env(&header, &attrs)
        } else {
            self.node.builder.env_at(&header)
        };
        // As geth: calls skip the nonce check, and a call that names no fee pays no base fee.
        env.cfg_env.disable_nonce_check = true;
        let priced = request.gas_price.is_some() || request.max_fee_per_gas.is_some();
        env.cfg_env.disable_base_fee = !priced;
        let cap = match self.limits.gas_cap {
            0 => header.gas_limit,
            cap => cap.min(header.gas_limit),
        };
        let timeout = self.limits.evm_timeout;
        let mut evm = ComputeEvmFactory::for_calls().create_evm_with_inspector(
            db,
            env,
            Deadline::after(timeout),
        );
        let mut exec = |gas: u64| -> RpcResult<ExecutionResult> {
            let tx = self.tx_env(request, gas, 0)?;
            let result = evm.transact(tx);
            if evm.inspector_mut().expired() {
                return Err(server_error(format!(
                    "execution aborted (timeout = {}s)",
                    timeout.as_secs_f64()
                )));
            }
            match result {
                Ok(r) => Ok(r.result),
                Err(e) => Err(server_error(evm_error_message(&e))),
            }
        };
        run(&mut exec, request.gas.unwrap_or(cap).min(cap))
    }

    /// `eth_call`.
    pub(crate) fn call(
        &self,
        request: TransactionRequest,
        id: BlockId,
        overrides: Option<StateOverride>,
    ) -> RpcResult<Bytes> {
        self.with_call_evm(&request, id, overrides, |exec, gas| match exec(gas)? {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => Err(reverted(output)),
            ExecutionResult::Halt { reason, .. } => Err(server_error(halt_message(&reason))),
        })
    }

    /// `eth_estimateGas`: the smallest gas limit with which the call succeeds (binary search, as
    /// geth). A revert returns code 3 with the revert data.
    pub(crate) fn estimate_gas(
        &self,
        request: TransactionRequest,
        id: BlockId,
        overrides: Option<StateOverride>,
    ) -> RpcResult<U64> {
        self.with_call_evm(&request, id, overrides, |exec, cap| {
            let used = match exec(cap)? {
                ExecutionResult::Success { gas, .. } => gas.tx_gas_used(),
                ExecutionResult::Revert { output, .. } => return Err(reverted(output)),
                ExecutionResult::Halt { reason, .. } => {
                    return Err(server_error(format!(
                        "gas required exceeds allowance ({cap}): {}",
                        halt_message(&reason)
                    )));
                }
            };
            let succeeds = |exec: &mut dyn FnMut(u64) -> RpcResult<ExecutionResult>, gas: u64| {
                exec(gas).map(|r| r.is_success())
            };
            let (mut lo, mut hi) = (used.saturating_sub(1), cap);
            // Most calls need little more than they use (the 63/64 rule): try that first.
            let optimistic = (used + 2_300) * 64 / 63;
            if optimistic < hi && succeeds(exec, optimistic)? {
                hi = optimistic;
            }
            while lo + 1 < hi {
                let mid = lo + (hi - lo) / 2;
                if succeeds(exec, mid)? {
                    hi = mid
                } else {
                    lo = mid
                }
            }
            Ok(U64::from(hi))
        })
    }

    /// Effective tips of a block's transactions with each one's gas used, sorted by tip.
    fn block_tips(
        &self,
        reader: &Reader<'_>,
        header: &SealedHeader,
    ) -> RpcResult<Vec<(u128, u64)>> {
        let txs = reader
            .transactions(header.number)
            .map_err(internal)?
            .unwrap_or_default();
        let receipts = reader
            .receipts(header.number)
            .map_err(internal)?
            .unwrap_or_default();
        let base_fee = header.base_fee_per_gas.unwrap_or_default();
        let mut prev = 0;
        let mut tips: Vec<(u128, u64)> = txs
            .iter()
            .zip(&receipts)
            .map(|(tx, r)| {
                let used = r.cumulative_gas_used() - prev;
                prev = r.cumulative_gas_used();
                (tx.effective_tip_per_gas(base_fee).unwrap_or_default(), used)
            })
            .collect();
        tips.sort_unstable();
        Ok(tips)
    }

    /// Suggested priority fee: the 60th percentile of tips over the last 20 blocks (computed
    /// once per head).
    pub(crate) fn suggested_tip(&self) -> RpcResult<u128> {
        let reader = self.node.store.read().map_err(internal)?;
        let head = head_number(&reader)?;
        let head_hash = reader
            .canonical_hash(head)
            .map_err(internal)?
            .unwrap_or_default();
        if let Some((hash, tip)) = *self.suggested_tip.lock()
            && hash == head_hash
        {
            return Ok(tip);
        }
        let mut tips = Vec::new();
        for n in head.saturating_sub(19)..=head {
            if let Some(h) = reader.sealed_header(n).map_err(internal)? {
                tips.extend(self.block_tips(&reader, &h)?.into_iter().map(|(t, _)| t));
            }
        }
        let tip = if tips.is_empty() {
            DEFAULT_TIP
        } else {
            tips.sort_unstable();
            tips[(tips.len() - 1) * 60 / 100]
        };
        *self.suggested_tip.lock() = Some((head_hash, tip));
        Ok(tip)
    }

    /// `eth_feeHistory`.
    pub(crate) fn fee_history(
        &self,
        count: u64,
        newest: BlockNumberOrTag,
        percentiles: Option<Vec<f64>>,
    ) -> RpcResult<FeeHistory> {
        if percentiles
            .as_ref()
            .is_some_and(|p| p.len() > MAX_FEE_HISTORY_PERCENTILES)
        {
            return Err(invalid_params(format!(
                "invalid reward percentile: over the query limit {MAX_FEE_HISTORY_PERCENTILES}"
            )));
        }
        if let Some(p) = &percentiles
            && (p.iter().any(|x| !(0.0..=100.0).contains(x)) || p.windows(2).any(|w| w[0] > w[1]))
        {
            return Err(invalid_params(
                "invalid reward percentiles: must be increasing and within [0, 100]",
            ));
        }
        let reader = self.node.store.read().map_err(internal)?;
        let newest = self.resolve(&reader, BlockId::Number(newest))?;
        let count = count.min(MAX_FEE_HISTORY_BLOCKS).min(newest.number + 1);
        if count == 0 {
            return Ok(FeeHistory::default());
        }
        let oldest = newest.number + 1 - count;
        let mut history = FeeHistory {
            oldest_block: oldest,
            ..Default::default()
        };
        let mut rewards = Vec::new();
        for n in oldest..=newest.number {
            let h = reader
                .sealed_header(n)
                .map_err(internal)?
                .ok_or_else(header_not_found)?;
            history
                .base_fee_per_gas
                .push(h.base_fee_per_gas.unwrap_or_default() as u128);
            history
                .gas_used_ratio
                .push(h.gas_used as f64 / h.gas_limit as f64);
            history.base_fee_per_blob_gas.push(1);
            history.blob_gas_used_ratio.push(0.0);
            if let Some(percentiles) = &percentiles {
                let tips = self.block_tips(&reader, &h)?;
                rewards.push(
                    percentiles
                        .iter()
                        .map(|p| {
                            let threshold = (h.gas_used as f64 * p / 100.0) as u64;
                            let mut acc = 0u64;
                            tips.iter()
                                .find(|(_, used)| {
                                    acc += used;
                                    acc >= threshold
                                })
                                .or(tips.last())
                                .map(|(tip, _)| *tip)
                                .unwrap_or_default()
                        })
                        .collect(),
                );
            }
        }
        history
            .base_fee_per_gas
            .push(self.node.builder.next_base_fee(&newest) as u128);
        history.base_fee_per_blob_gas.push(1);
        history.reward = percentiles.map(|_| rewards);
        Ok(history)
    }

    /// The logs of a committed block in RPC form, computed once for all `logs` subscriptions.
    pub(crate) fn committed_logs(&self, block: &crate::storage::CommittedBlock) -> Arc<Vec<Log>> {
        let hash = block.header.hash();
        let mut newest = self.newest_logs.lock();
        match &*newest {
            Some((cached, logs)) if *cached == hash => logs.clone(),
            _ => {
                let logs = Arc::new(
                    block_logs(
                        &block.header,
                        &block.transactions,
                        &block.receipts,
                        &block.system_logs,
                    )
                    .collect(),
                );
                *newest = Some((hash, Arc::clone(&logs)));
                logs
            }
        }
    }

    /// `eth_getLogs`.
    pub(crate) fn logs(&self, filter: &Filter) -> RpcResult<Vec<Log>> {
        let reader = self.node.store.read().map_err(internal)?;
        let head = head_number(&reader)?;
        let (from, to) = match filter.block_option {
            FilterBlockOption::AtBlockHash(hash) => {
                let n = reader
                    .block_number(hash)
                    .map_err(internal)?
                    .ok_or_else(|| server_error("unknown block"))?;
                (n, n)
            }
            FilterBlockOption::Range {
                from_block,
                to_block,
            } => {
                let from = from_block
                    .map(|t| tag_to_number(&reader, t))
                    .transpose()?
                    .unwrap_or(head);
                let to = to_block
                    .map(|t| tag_to_number(&reader, t))
                    .transpose()?
                    .unwrap_or(head)
                    .min(head);
                (from, to)
            }
        };
        if from > to {
            return if from > head {
                Ok(vec![])
            } else {
                Err(invalid_params("invalid block range params"))
            };
        }
        let max = self.node.spec.params.max_log_block_range;
        if to - from >= max {
            return Err(server_error(format!("query exceeds max block range {max}")));
        }
        logs_in_range(&reader, filter, from, to)
    }
}

/// The newest block in `reader`'s snapshot. Tags resolve against it, not against the node's
/// in-memory head, which is updated just after a commit: a client that has seen a block's
/// receipt must find that block's state under `latest`.
pub(crate) fn head_number(reader: &Reader<'_>) -> RpcResult<u64> {
    Ok(reader.head_number().unwrap_or_default())
}

/// The block number a tag refers to in `reader`'s snapshot (explicit numbers may be above the
/// head). `pending`, `safe` and `finalized` are the head: a dev chain finalizes each block at once.
pub(crate) fn tag_to_number(reader: &Reader<'_>, tag: BlockNumberOrTag) -> RpcResult<u64> {
    Ok(match tag {
        BlockNumberOrTag::Earliest => 0,
        BlockNumberOrTag::Number(n) => n,
        _ => head_number(reader)?,
    })
}

/// Logs matching `filter` in blocks `from..=to`, skipping blocks whose bloom rules them out; an
/// error once they are more than [`MAX_LOGS_PER_RESPONSE`] (naming the range that fits).
pub(crate) fn logs_in_range(
    reader: &Reader<'_>,
    filter: &Filter,
    from: u64,
    to: u64,
) -> RpcResult<Vec<Log>> {
    let (logs, overflow) = logs_up_to_limit(reader, filter, from, to)?;
    match overflow {
        None => Ok(logs),
        Some(n) if n > from => Err(server_error(format!(
            "query exceeds max results {MAX_LOGS_PER_RESPONSE}, retry with the range {from}-{}",
            n - 1
        ))),
        Some(n) => Err(too_many_logs_in(n)),
    }
}

/// The error for a block holding more matching logs than one response carries.
pub(crate) fn too_many_logs_in(block: u64) -> jsonrpsee::types::ErrorObjectOwned {
    server_error(format!(
        "query exceeds max results {MAX_LOGS_PER_RESPONSE} in block {block}"
    ))
}

/// Logs matching `filter` in blocks `from..=to`, whole blocks only, at most
/// [`MAX_LOGS_PER_RESPONSE`]: with the block whose logs would exceed that, if one does (the logs
/// are then those of the blocks before it).
pub(crate) fn logs_up_to_limit(
    reader: &Reader<'_>,
    filter: &Filter,
    from: u64,
    to: u64,
) -> RpcResult<(Vec<Log>, Option<u64>)> {
    let mut out = Vec::new();
    for n in from..=to {
        let Some(header) = reader.sealed_header(n).map_err(internal)? else {
            break;
        };
        if !filter.matches_bloom(header.logs_bloom) {
            continue;
        }
        let txs = reader
            .transactions(n)
            .map_err(internal)?
            .unwrap_or_default();
        let receipts = reader.receipts(n).map_err(internal)?.unwrap_or_default();
        let system_logs = reader.system_logs(n).map_err(internal)?;
        let complete = out.len();
        let logs =
            block_logs(&header, &txs, &receipts, &system_logs).filter(|l| filter.matches(&l.inner));
        for log in logs {
            if out.len() == MAX_LOGS_PER_RESPONSE {
                out.truncate(complete);
                return Ok((out, Some(n)));
            }
            out.push(log);
        }
    }
    Ok((out, None))
}

/// All logs of a block in RPC form, in order.
pub(crate) fn block_logs<'a>(
    header: &'a SealedHeader,
    txs: &'a [alloy::consensus::TxEnvelope],
    receipts: &'a [alloy::consensus::ReceiptEnvelope],
    system_logs: &'a [alloy::primitives::Log],
) -> impl Iterator<Item = Log> + 'a {
    let block_hash = header.hash();
    let mut log_index = 0u64;
    let tx_logs = txs
        .iter()
        .zip(receipts)
        .enumerate()
        .flat_map(move |(i, (tx, receipt))| {
            let tx_hash = *tx.tx_hash();
            receipt
                .logs()
                .iter()
                .map(move |log| (log, Some((tx_hash, i as u64))))
        });
    // System-call logs follow the transactions' and belong to no transaction.
    let system = system_logs.iter().map(|log| (log, None));
    tx_logs.chain(system).map(move |(log, tx)| {
        let index = log_index;
        log_index += 1;
        Log {
            inner: log.clone(),
            block_hash: Some(block_hash),
            block_number: Some(header.number),
            block_timestamp: Some(header.timestamp),
            transaction_hash: tx.map(|(hash, _)| hash),
            transaction_index: tx.map(|(_, index)| index),
            log_index: Some(index),
            removed: false,
        }
    })
}

/// Refuses overrides that would fake protocol state: the native precompiles' storage holds
/// sizes and ledgers their code relies on, and only they may write it.
fn check_overrides(overrides: &StateOverride) -> RpcResult<()> {
    for (address, account) in overrides {
        if computechain_precompiles::NATIVE_PRECOMPILES.contains(address) {
            return Err(invalid_params(format!(
                "state override of precompile {address} is not allowed"
            )));
        }
        if account.move_precompile_to.is_some() {
            return Err(invalid_params("movePrecompileToAddress is not supported"));
        }
    }
    Ok(())
}

/// geth's wording for a halted call.
fn halt_message(reason: &revm::context::result::HaltReason) -> String {
    use revm::context::result::{HaltReason, OutOfGasError};
    match reason {
        HaltReason::OutOfGas(
            OutOfGasError::Basic
            | OutOfGasError::Memory
            | OutOfGasError::MemoryLimit
            | OutOfGasError::Precompile
            | OutOfGasError::InvalidOperand
            | OutOfGasError::ReentrancySentry,
        ) => "out of gas".into(),
        HaltReason::OpcodeNotFound | HaltReason::InvalidFEOpcode => "invalid opcode".into(),
        HaltReason::StackUnderflow => "stack underflow".into(),
        HaltReason::StackOverflow => "stack limit reached".into(),
        HaltReason::CreateContractSizeLimit => "max code size exceeded".into(),
        other => format!("execution halted: {other:?}"),
    }
}

/// Maps revm's transaction-validation errors to geth's messages.
fn evm_error_message<E: std::fmt::Display>(err: &EVMError<E, InvalidTransaction>) -> String {
    match err {
        EVMError::Transaction(InvalidTransaction::LackOfFundForMaxFee { .. }) => {
            "insufficient funds for gas * price + value".into()
        }
        EVMError::Transaction(InvalidTransaction::GasPriceLessThanBasefee) => {
            "max fee per gas less than block base fee".into()
        }
        EVMError::Transaction(InvalidTransaction::CallGasCostMoreThanGasLimit { .. }) => {
            "intrinsic gas too low".into()
        }
        other => other.to_string(),
    }
}

/// `web3_sha3`.
pub(crate) fn sha3(data: &Bytes) -> B256 {
    keccak256(data)
}
