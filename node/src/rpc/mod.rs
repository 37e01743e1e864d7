//! The Ethereum JSON-RPC server: HTTP and WebSocket on one port, loopback by default.

mod access;
mod connections;
mod convert;
mod deadline;
mod error;
mod eth;
mod filters;
#[cfg(test)]
mod fuzz;

pub use access::AccessRules;
pub use connections::ConnectionLimits;

use crate::node::Node;
use alloy::{
    eips::{BlockId, BlockNumberOrTag},
    primitives::{Address, B128, B256, Bytes, U64, U256},
    rpc::types::{Filter, TransactionRequest, state::StateOverride},
};
use error::{RpcResult, header_not_found, internal, invalid_params, server_error};
use eth::{CallLimits, EthApi, MAX_PROOF_KEYS};
use filters::{FilterKind, Filters, check_criteria};
use jsonrpsee::{
    IntoResponse, PendingSubscriptionSink, RpcModule, SubscriptionMessage,
    server::{
        BatchRequestConfig, IdProvider, PingConfig, Server, ServerConfig, ServerHandle,
        stop_channel,
    },
    types::{Params, SubscriptionId},
};
use serde::Serialize;
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tracing::info;

/// Server settings.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// Listen address (HTTP and WebSocket).
    pub addr: SocketAddr,
    /// Allowed CORS origins; `None` sends no CORS headers, `["*"]` allows any.
    pub cors: Option<Vec<String>>,
    /// Allowed hosts and WebSocket origins.
    pub access: AccessRules,
    /// Connection limits.
    pub connections: ConnectionLimits,
    /// Largest request body in bytes.
    pub max_request_bytes: u32,
    /// Largest response body in bytes.
    pub max_response_bytes: u32,
    /// Most calls in one batch.
    pub max_batch_len: u32,
    /// Most gas one `eth_call` / `eth_estimateGas` may use (geth's `--rpc.gascap`; 0: the block
    /// gas limit).
    pub gas_cap: u64,
    /// Longest one `eth_call` / `eth_estimateGas` may run (geth's `--rpc.evmtimeout`; zero:
    /// unbounded).
    pub evm_timeout: Duration,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8545)),
            cors: None,
            access: AccessRules {
                vhosts: vec!["localhost".into()],
                ws_origins: AccessRules::local_origins(),
            },
            connections: ConnectionLimits {
                max_connections: 500,
                max_per_ip: 50,
                idle_timeout: Duration::from_secs(120),
            },
            max_request_bytes: 5 * 1024 * 1024,
            max_response_bytes: 100 * 1024 * 1024,
            max_batch_len: 1000,
            gas_cap: 50_000_000,
            evm_timeout: Duration::from_secs(5),
        }
    }
}

/// Subscriptions one WebSocket connection may hold.
const MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 128;

/// WebSocket pings: a client that stops answering is dropped, and a live one is never idle.
const WS_PING_INTERVAL: Duration = Duration::from_secs(30);

/// Subscription ids as geth's: 16 random bytes as a hex string.
#[derive(Debug)]
struct HexIds;

impl IdProvider for HexIds {
    fn next_id(&self) -> SubscriptionId<'static> {
        SubscriptionId::Str(B128::from(rand::random::<[u8; 16]>()).to_string().into())
    }
}

/// Starts the server; returns its handle and bound address.
pub async fn start(node: Arc<Node>, config: RpcConfig) -> eyre::Result<(ServerHandle, SocketAddr)> {
    let cors = config.cors.as_ref().map(|origins| {
        let layer = CorsLayer::new().allow_methods(Any).allow_headers(Any);
        if origins.iter().any(|o| o == "*") {
            layer.allow_origin(Any)
        } else {
            let list = origins
                .iter()
                .filter_map(|o| o.parse().ok())
                .collect::<Vec<_>>();
            layer.allow_origin(AllowOrigin::list(list))
        }
    });
    let middleware = tower::ServiceBuilder::new()
        .layer(access::AccessLayer(Arc::new(config.access.clone())))
        .option_layer(cors);
    let server_config = ServerConfig::builder()
        .max_request_body_size(config.max_request_bytes)
        .max_response_body_size(config.max_response_bytes)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_len))
        .max_connections(config.connections.max_connections as u32)
        .enable_ws_ping(
            PingConfig::new()
                .ping_interval(WS_PING_INTERVAL)
                .inactive_limit(2 * WS_PING_INTERVAL),
        )
        .set_id_provider(HexIds)
        .max_subscriptions_per_connection(MAX_SUBSCRIPTIONS_PER_CONNECTION)
        .build();
    let service = Server::builder()
        .set_config(server_config)
        .set_http_middleware(middleware)
        .to_service_builder();
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let filters = Arc::new(Filters::default());
    filters::spawn_expiry(&filters);
    let heavy_permits = std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1))
        .unwrap_or(1)
        .max(1);
    let api = EthApi {
        node,
        limits: CallLimits {
            gas_cap: config.gas_cap,
            evm_timeout: config.evm_timeout,
        },
        heavy: eth::HeavyWork::new(heavy_permits),
        newest_logs: Default::default(),
        filters,
        suggested_tip: Default::default(),
    };
    let (stop, handle) = stop_channel();
    tokio::spawn(connections::accept(
        listener,
        service,
        module(api)?.into(),
        stop,
        config.connections,
    ));
    info!(target: "rpc", %addr, "JSON-RPC listening (HTTP and WebSocket)");
    Ok((handle, addr))
}

/// Registers a method whose work can be heavy (EVM execution, reads over many blocks): it runs
/// on the blocking pool, at most one per core but one, so that RPC load always leaves
/// a core to block production.
fn register_heavy<T>(
    m: &mut RpcModule<EthApi>,
    name: &'static str,
    method: fn(Params<'static>, &EthApi) -> RpcResult<T>,
) -> eyre::Result<()>
where
    T: Send + 'static,
    RpcResult<T>: IntoResponse,
{
    m.register_async_method(name, move |params, api, _| async move {
        // The permit goes with the work: a client that hangs up does not free it while the
        // work still runs.
        let permit = api.heavy.admit().await?;
        let api = api.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            method(params, &api)
        })
        .await
        .map_err(internal)?
    })?;
    Ok(())
}

fn json<T: Serialize>(value: T) -> RpcResult<serde_json::Value> {
    serde_json::to_value(value).map_err(internal)
}

/// All RPC methods.
fn module(api: EthApi) -> eyre::Result<RpcModule<EthApi>> {
    let mut m = RpcModule::new(api);

    // --- chain and node facts ---
    m.register_method("eth_chainId", |_, api, _| -> RpcResult<U64> {
        Ok(U64::from(api.node.spec.chain_id()))
    })?;
    m.register_method("net_version", |_, api, _| {
        api.node.spec.chain_id().to_string()
    })?;
    m.register_method("net_listening", |_, _, _| true)?;
    m.register_method("net_peerCount", |_, _, _| -> RpcResult<U64> {
        Ok(U64::ZERO)
    })?;
    m.register_method("web3_clientVersion", |_, _, _| {
        format!(
            "ComputeChain/v{}/{}-{}",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH
        )
    })?;
    m.register_method("web3_sha3", |p: Params<'_>, _, _| -> RpcResult<B256> {
        let (data,): (Bytes,) = p.parse()?;
        Ok(eth::sha3(&data))
    })?;
    m.register_method("eth_blockNumber", |_, api, _| -> RpcResult<U64> {
        let reader = api.node.store.read().map_err(internal)?;
        Ok(U64::from(eth::head_number(&reader)?))
    })?;
    m.register_method("eth_syncing", |_, _, _| false)?;
    m.register_method("eth_accounts", |_, _, _| Vec::<Address>::new())?;

    // --- state ---
    m.register_blocking_method("eth_getBalance", |p, api, _| -> RpcResult<U256> {
        let mut seq = p.sequence();
        let address: Address = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        Ok(api
            .account_at(address, block.unwrap_or_default())?
            .0
            .map(|a| a.balance)
            .unwrap_or_default())
    })?;
    m.register_blocking_method("eth_getTransactionCount", |p, api, _| -> RpcResult<U256> {
        let mut seq = p.sequence();
        let address: Address = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        api.transaction_count(address, block.unwrap_or_default())
    })?;
    m.register_blocking_method("eth_getCode", |p, api, _| -> RpcResult<Bytes> {
        let mut seq = p.sequence();
        let address: Address = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        Ok(api
            .account_at(address, block.unwrap_or_default())?
            .1
            .unwrap_or_default())
    })?;
    m.register_blocking_method("eth_getStorageAt", |p, api, _| -> RpcResult<B256> {
        let mut seq = p.sequence();
        let address: Address = seq.next()?;
        let slot: U256 = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        api.storage_at(address, slot, block.unwrap_or_default())
    })?;
    register_heavy(
        &mut m,
        "eth_getProof",
        |p, api| -> RpcResult<serde_json::Value> {
            let mut seq = p.sequence();
            let address: Address = seq.next()?;
            let keys: Vec<alloy::rpc::types::serde_helpers::JsonStorageKey> = seq.next()?;
            let block: Option<BlockId> = seq.optional_next()?;
            if keys.len() > MAX_PROOF_KEYS {
                return Err(invalid_params(format!(
                    "too many storage keys requested (max {MAX_PROOF_KEYS})"
                )));
            }
            let reader = api.node.store.read().map_err(internal)?;
            let header = api.resolve(&reader, block.unwrap_or_default())?;
            // Tries are kept for the latest state only (as geth's path scheme).
            if header.number != reader.head_number().unwrap_or_default() {
                return Err(server_error(
                    "proofs are available for the latest block only",
                ));
            }
            let slots: Vec<B256> = keys.iter().map(|k| k.as_b256()).collect();
            json(reader.proof(address, &slots).map_err(internal)?)
        },
    )?;
    register_heavy(&mut m, "eth_call", |p, api| -> RpcResult<Bytes> {
        let mut seq = p.sequence();
        let request: TransactionRequest = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        let overrides: Option<StateOverride> = seq.optional_next()?;
        api.call(request, block.unwrap_or_default(), overrides)
    })?;
    register_heavy(&mut m, "eth_estimateGas", |p, api| -> RpcResult<U64> {
        let mut seq = p.sequence();
        let request: TransactionRequest = seq.next()?;
        let block: Option<BlockId> = seq.optional_next()?;
        let overrides: Option<StateOverride> = seq.optional_next()?;
        api.estimate_gas(request, block.unwrap_or(BlockId::pending()), overrides)
    })?;

    // --- fees ---
    m.register_blocking_method("eth_gasPrice", |_, api, _| -> RpcResult<U256> {
        let base = api.node.builder.next_base_fee(&api.node.head()) as u128;
        Ok(U256::from(base + api.suggested_tip()?))
    })?;
    m.register_blocking_method("eth_maxPriorityFeePerGas", |_, api, _| -> RpcResult<U256> {
        Ok(U256::from(api.suggested_tip()?))
    })?;
    register_heavy(
        &mut m,
        "eth_feeHistory",
        |p, api| -> RpcResult<serde_json::Value> {
            let mut seq = p.sequence();
            let count: U64 = seq.next()?;
            let newest: BlockNumberOrTag = seq.next()?;
            let percentiles: Option<Vec<f64>> = seq.optional_next()?;
            json(api.fee_history(count.to(), newest, percentiles)?)
        },
    )?;

    // --- transactions ---
    m.register_blocking_method("eth_sendRawTransaction", |p, api, _| -> RpcResult<B256> {
        let (raw,): (Bytes,) = p.parse()?;
        api.node.submit_raw(&raw).map_err(|e| match e {
            crate::node::SubmitError::Store(e) => internal(e),
            other => server_error(other),
        })
    })?;
    m.register_blocking_method(
        "eth_getTransactionByHash",
        |p, api, _| -> RpcResult<serde_json::Value> {
            let (hash,): (B256,) = p.parse()?;
            if let Some(tx) = api.node.pool.get(&hash) {
                return json(convert::transaction(tx.inner().clone(), tx.signer(), None));
            }
            let reader = api.node.store.read().map_err(internal)?;
            let Some((number, index)) = reader.transaction_location(hash).map_err(internal)? else {
                return Ok(serde_json::Value::Null);
            };
            tx_at(&api, &reader, BlockId::number(number), index as usize)
        },
    )?;
    m.register_blocking_method(
        "eth_getTransactionReceipt",
        |p, api, _| -> RpcResult<serde_json::Value> {
            let (hash,): (B256,) = p.parse()?;
            let reader = api.node.store.read().map_err(internal)?;
            let Some((number, index)) = reader.transaction_location(hash).map_err(internal)? else {
                return Ok(serde_json::Value::Null);
            };
            let (header, txs, senders, receipts) = block_parts(&reader, number)?;
            json(convert::receipt_at(
                &header,
                &txs,
                &senders,
                &receipts,
                index as usize,
            ))
        },
    )?;
    register_heavy(
        &mut m,
        "eth_getBlockReceipts",
        |p, api| -> RpcResult<serde_json::Value> {
            let (block,): (BlockId,) = p.parse()?;
            let reader = api.node.store.read().map_err(internal)?;
            match api.resolve(&reader, block) {
                Ok(h) => json(receipts_of(&reader, h.number)?),
                Err(_) => Ok(serde_json::Value::Null),
            }
        },
    )?;

    // --- blocks ---
    m.register_blocking_method(
        "eth_getBlockByNumber",
        |p, api, _| -> RpcResult<serde_json::Value> {
            let (block, full): (BlockNumberOrTag, bool) = p.parse()?;
            block_json(&api, BlockId::Number(block), full)
        },
    )?;
    m.register_blocking_method(
        "eth_getBlockByHash",
        |p, api, _| -> RpcResult<serde_json::Value> {
            let (hash, full): (B256, bool) = p.parse()?;
            block_json(&api, BlockId::from(hash), full)
        },
    )?;
    m.register_blocking_method(
        "eth_getBlockTransactionCountByNumber",
        |p, api, _| -> RpcResult<Option<U64>> {
            let (block,): (BlockNumberOrTag,) = p.parse()?;
            tx_count(&api, BlockId::Number(block))
        },
    )?;
    m.register_blocking_method(
        "eth_getBlockTransactionCountByHash",
        |p, api, _| -> RpcResult<Option<U64>> {
            let (hash,): (B256,) = p.parse()?;
            tx_count(&api, BlockId::from(hash))
        },
    )?;
    m.register_blocking_method(
        "eth_getTransactionByBlockNumberAndIndex",
        |p, api, _| -> RpcResult<serde_json::Value> {
            let (block, index): (BlockNumberOrTag, U64) = p.parse()?;
            let reader = api.node.store.read().map_err(internal)?;
            tx_at(&api, &reader, BlockId::Number(block), index.to())
        },
    )?;
    m.register_blocking_method(
        "eth_getTransactionByBlockHashAndIndex",
        |p, api, _| -> RpcResult<serde_json::Value> {
            let (hash, index): (B256, U64) = p.parse()?;
            let reader = api.node.store.read().map_err(internal)?;
            tx_at(&api, &reader, BlockId::from(hash), index.to())
        },
    )?;

    // --- logs and filters ---
    register_heavy(
        &mut m,
        "eth_getLogs",
        |p, api| -> RpcResult<serde_json::Value> {
            let (filter,): (Filter,) = p.parse()?;
            check_criteria(&filter)?;
            json(api.logs(&filter)?)
        },
    )?;
    m.register_method("eth_newFilter", |p, api, _| -> RpcResult<U256> {
        let (filter,): (Filter,) = p.parse()?;
        check_criteria(&filter)?;
        let head = api.node.head().number;
        let max = api.node.spec.params.max_log_block_range;
        if filter
            .get_from_block()
            .is_some_and(|from| head.saturating_sub(from) >= max)
        {
            return Err(server_error(format!("query exceeds max block range {max}")));
        }
        let last_block = filter
            .get_from_block()
            .map(|n| n.saturating_sub(1))
            .unwrap_or(api.node.head().number);
        api.filters.install(FilterKind::Logs {
            filter: Box::new(filter),
            last_block,
        })
    })?;
    m.register_method("eth_newBlockFilter", |_, api, _| -> RpcResult<U256> {
        api.filters.install(FilterKind::Blocks {
            last_block: api.node.head().number,
        })
    })?;
    m.register_method(
        "eth_newPendingTransactionFilter",
        |_, api, _| -> RpcResult<U256> {
            api.filters.install(FilterKind::PendingTransactions(
                api.node.pool.subscribe_pending(),
            ))
        },
    )?;
    m.register_method("eth_uninstallFilter", |p, api, _| -> RpcResult<bool> {
        let (id,): (U256,) = p.parse()?;
        Ok(api.filters.uninstall(id))
    })?;
    register_heavy(
        &mut m,
        "eth_getFilterChanges",
        |p, api| -> RpcResult<serde_json::Value> {
            let (id,): (U256,) = p.parse()?;
            let reader = api.node.store.read().map_err(internal)?;
            let head = eth::head_number(&reader)?;
            // One poll covers at most the log range limit; the next one goes on from there.
            let max = api.node.spec.params.max_log_block_range;
            let poll_end = |last_block: u64| head.min(last_block.saturating_add(max));
            api.filters
                .with(id, |kind| match kind {
                    FilterKind::Blocks { last_block } => {
                        let head = poll_end(*last_block);
                        let hashes = (*last_block + 1..=head)
                            .map(|n| {
                                reader
                                    .canonical_hash(n)
                                    .map_err(internal)
                                    .map(Option::unwrap_or_default)
                            })
                            .collect::<RpcResult<Vec<B256>>>()?;
                        *last_block = head;
                        json(hashes)
                    }
                    FilterKind::Logs { filter, last_block } => {
                        let from = *last_block + 1;
                        let head = poll_end(*last_block);
                        match eth::logs_up_to_limit(&reader, filter, from, head)? {
                            (logs, None) => {
                                *last_block = head;
                                json(logs)
                            }
                            // The blocks that fit now; the next poll goes on from there.
                            (logs, Some(n)) if n > from => {
                                *last_block = n - 1;
                                json(logs)
                            }
                            // One block holds more than a response carries: the poll says so
                            // and the filter moves past it instead of failing for good.
                            (_, Some(n)) => {
                                *last_block = n;
                                Err(eth::too_many_logs_in(n))
                            }
                        }
                    }
                    FilterKind::PendingTransactions(rx) => {
                        use tokio::sync::broadcast::error::TryRecvError;
                        let mut hashes = Vec::new();
                        loop {
                            match rx.try_recv() {
                                Ok(h) => hashes.push(h),
                                // Missed hashes are gone; report the ones still buffered.
                                Err(TryRecvError::Lagged(_)) => continue,
                                Err(_) => break,
                            }
                        }
                        json(hashes)
                    }
                })
                .unwrap_or_else(|| Err(server_error("filter not found")))
        },
    )?;
    register_heavy(
        &mut m,
        "eth_getFilterLogs",
        |p, api| -> RpcResult<serde_json::Value> {
            let (id,): (U256,) = p.parse()?;
            let filter = api
                .filters
                .with(id, |kind| match kind {
                    FilterKind::Logs { filter, .. } => Some((**filter).clone()),
                    _ => None,
                })
                .flatten()
                .ok_or_else(|| server_error("filter not found"))?;
            json(api.logs(&filter)?)
        },
    )?;

    // --- subscriptions ---
    m.register_subscription(
        "eth_subscribe",
        "eth_subscription",
        "eth_unsubscribe",
        subscribe,
    )?;
    Ok(m)
}

/// A block's header, transactions, senders and receipts.
type BlockParts = (
    crate::storage::SealedHeader,
    Vec<alloy::consensus::TxEnvelope>,
    Vec<Address>,
    Vec<alloy::consensus::ReceiptEnvelope>,
);

fn block_parts(reader: &crate::storage::Reader<'_>, number: u64) -> RpcResult<BlockParts> {
    let header = reader
        .sealed_header(number)
        .map_err(internal)?
        .ok_or_else(header_not_found)?;
    let txs = reader
        .transactions(number)
        .map_err(internal)?
        .unwrap_or_default();
    let senders = reader
        .senders(number)
        .map_err(internal)?
        .unwrap_or_default();
    let receipts = reader
        .receipts(number)
        .map_err(internal)?
        .unwrap_or_default();
    Ok((header, txs, senders, receipts))
}

fn receipts_of(
    reader: &crate::storage::Reader<'_>,
    number: u64,
) -> RpcResult<Vec<alloy::rpc::types::TransactionReceipt>> {
    let (header, txs, senders, receipts) = block_parts(reader, number)?;
    Ok(convert::block_receipts(&header, &txs, &senders, &receipts))
}

fn block_json(api: &EthApi, id: BlockId, full: bool) -> RpcResult<serde_json::Value> {
    let reader = api.node.store.read().map_err(internal)?;
    let Ok(header) = api.resolve(&reader, id) else {
        return Ok(serde_json::Value::Null);
    };
    let txs = reader
        .transactions(header.number)
        .map_err(internal)?
        .unwrap_or_default();
    let senders = reader
        .senders(header.number)
        .map_err(internal)?
        .unwrap_or_default();
    json(convert::block(&header, txs, senders, full))
}

fn tx_count(api: &EthApi, id: BlockId) -> RpcResult<Option<U64>> {
    let reader = api.node.store.read().map_err(internal)?;
    let Ok(header) = api.resolve(&reader, id) else {
        return Ok(None);
    };
    Ok(Some(U64::from(
        reader
            .transactions(header.number)
            .map_err(internal)?
            .unwrap_or_default()
            .len(),
    )))
}

fn tx_at(
    api: &EthApi,
    reader: &crate::storage::Reader<'_>,
    id: BlockId,
    index: usize,
) -> RpcResult<serde_json::Value> {
    let Ok(header) = api.resolve(reader, id) else {
        return Ok(serde_json::Value::Null);
    };
    let txs = reader
        .transactions(header.number)
        .map_err(internal)?
        .unwrap_or_default();
    let senders = reader
        .senders(header.number)
        .map_err(internal)?
        .unwrap_or_default();
    let (Some(tx), Some(from)) = (txs.get(index), senders.get(index)) else {
        return Ok(serde_json::Value::Null);
    };
    json(convert::transaction(
        tx.clone(),
        *from,
        Some(convert::TxPosition {
            block_hash: header.hash(),
            block_number: header.number,
            timestamp: header.timestamp,
            base_fee: header.base_fee_per_gas,
            index: index as u64,
        }),
    ))
}

/// `eth_subscribe`: `newHeads`, `logs` (with an optional filter), `newPendingTransactions`.
async fn subscribe(
    params: Params<'static>,
    pending: PendingSubscriptionSink,
    api: Arc<EthApi>,
    _: jsonrpsee::Extensions,
) -> jsonrpsee::core::SubscriptionResult {
    let mut seq = params.sequence();
    let kind: String = match seq.next() {
        Ok(k) => k,
        Err(e) => {
            pending.reject(e).await;
            return Ok(());
        }
    };
    let filter: Option<Filter> = if kind == "logs" {
        match seq
            .optional_next()
            .and_then(|f: Option<Filter>| f.as_ref().map(check_criteria).transpose().map(|_| f))
        {
            Ok(f) => f,
            Err(e) => {
                pending.reject(e).await;
                return Ok(());
            }
        }
    } else {
        None
    };
    let send = |sink: &jsonrpsee::SubscriptionSink, v: serde_json::Value| {
        let msg: RpcResult<SubscriptionMessage> = serde_json::value::to_raw_value(&v)
            .map(Into::into)
            .map_err(internal);
        let sink = sink.clone();
        async move {
            match msg {
                Ok(m) => sink.send(m).await.is_ok(),
                Err(_) => false,
            }
        }
    };
    match kind.as_str() {
        "newHeads" | "logs" => {
            let mut blocks = api.node.subscribe_blocks();
            let sink = pending.accept().await?;
            loop {
                tokio::select! {
                    _ = sink.closed() => break,
                    event = blocks.recv() => {
                        let event = match event {
                            Ok(e) => e,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        };
                        if kind == "newHeads" {
                            // Notifications carry no block size, as geth's.
                            let header = convert::header(&event.header, None);
                            let v = serde_json::to_value(&header).map_err(internal)?;
                            if !send(&sink, v).await { break }
                        } else {
                            let logs = api.committed_logs(&event);
                            for log in logs.iter().filter(|l| filter.as_ref().is_none_or(|f| f.matches(&l.inner))) {
                                if !send(&sink, serde_json::to_value(log).map_err(internal)?).await { return Ok(()) }
                            }
                        }
                    }
                }
            }
        }
        "newPendingTransactions" => {
            let full: bool = seq.optional_next().ok().flatten().unwrap_or(false);
            let mut hashes = api.node.pool.subscribe_pending();
            let sink = pending.accept().await?;
            loop {
                tokio::select! {
                    _ = sink.closed() => break,
                    hash = hashes.recv() => {
                        let hash = match hash {
                            Ok(h) => h,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        };
                        let v = match (full, api.node.pool.get(&hash)) {
                            (true, Some(tx)) => serde_json::to_value(convert::transaction(tx.inner().clone(), tx.signer(), None)).map_err(internal)?,
                            _ => serde_json::to_value(hash).map_err(internal)?,
                        };
                        if !send(&sink, v).await { break }
                    }
                }
            }
        }
        other => {
            pending
                .reject(invalid_params(format!(
                    "unsupported subscription type: {other}"
                )))
                .await;
        }
    }
    Ok(())
}
