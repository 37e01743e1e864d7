//! The `eth_`, `net_` and `web3_` methods.

use super::{
    convert,
    error::{RpcResult, header_not_found, internal, invalid_params, reverted, server_error},
};
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

/// Shared state of the RPC handlers.
#[derive(Debug)]
pub(crate) struct EthApi {
    /// The node.
    pub(crate) node: Arc<Node>,
    /// Filters installed with `eth_new*Filter`.
    pub(crate) filters: super::filters::Filters,
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
    /// result for a given gas limit, so estimation can reuse one EVM and cache.
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
        let block_gas_limit = header.gas_limit;
        let mut evm = self.node.builder.evm_factory().create_evm(db, env);
        let mut exec = |gas: u64| -> RpcResult<ExecutionResult> {
            let tx = self.tx_env(request, gas, 0)?;
            match evm.transact(tx) {
                Ok(r) => Ok(r.result),
                Err(e) => Err(server_error(evm_error_message(&e))),
            }
        };
        run(
            &mut exec,
            request.gas.unwrap_or(block_gas_limit).min(block_gas_limit),
        )
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

/// Logs matching `filter` in blocks `from..=to`, skipping blocks whose bloom rules them out.
pub(crate) fn logs_in_range(
    reader: &Reader<'_>,
    filter: &Filter,
    from: u64,
    to: u64,
) -> RpcResult<Vec<Log>> {
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
        out.extend(
            block_logs(&header, &txs, &receipts, &system_logs)
                .into_iter()
                .filter(|l| filter.matches(&l.inner)),
        );
    }
    Ok(out)
}

/// All logs of a block in RPC form.
pub(crate) fn block_logs(
    header: &SealedHeader,
    txs: &[alloy::consensus::TxEnvelope],
    receipts: &[alloy::consensus::ReceiptEnvelope],
    system_logs: &[alloy::primitives::Log],
) -> Vec<Log> {
    let mut out = Vec::new();
    for (i, (tx, receipt)) in txs.iter().zip(receipts).enumerate() {
        let pos = convert::TxPosition {
            block_hash: header.hash(),
            block_number: header.number,
            timestamp: header.timestamp,
            base_fee: header.base_fee_per_gas,
            index: i as u64,
        };
        let first = out.len() as u64;
        out.extend(convert::logs(receipt, *tx.tx_hash(), pos, first));
    }
    // System-call logs follow the transactions' and belong to no transaction.
    let first = out.len() as u64;
    out.extend(system_logs.iter().enumerate().map(|(i, log)| Log {
        inner: log.clone(),
        block_hash: Some(header.hash()),
        block_number: Some(header.number),
        block_timestamp: Some(header.timestamp),
        transaction_hash: None,
        transaction_index: None,
        log_index: Some(first + i as u64),
        removed: false,
    }));
    out
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
