//! The benchmark (`computechain bench`). Sections, each printing stable `key=value` lines:
//!
//! - `rpc`: funds K accounts, pre-signs N transfers, submits them over JSON-RPC in batches with
//!   bounded concurrency, verifies every receipt, and reports included transactions per second,
//!   submit-to-inclusion latency p50/p99 and the node's peak resident memory — for a fresh node
//!   and, in the same run, for anvil at the same block time, with the ratio.
//! - `recover`: the machine's ceiling, sender recoveries per second on all cores.
//! - `exec`: ERC-20 transfers, Mgas/s of block execution beside a raw revm loop over the same
//!   transactions on the same state.
//! - `state`: time to seal a block of transfers with a small and a large funded state, the two
//!   sealing in turns. The transfers enter each node's pool as raw transactions, as over RPC;
//!   the seal is the node's: pool selection and execution (build), then state root and block
//!   log (commit).

use crate::{
    builder::{BlockAttributes, BlockBuilder},
    chainspec::ChainSpec,
    dev::dev_accounts,
    node::Node,
    storage::{SealedHeader, Store},
};
use alloy::{
    consensus::{
        SignableTransaction, TxEip1559, TxEnvelope,
        transaction::{Recovered, SignerRecoverable},
    },
    eips::{Decodable2718, Encodable2718},
    genesis::GenesisAccount,
    primitives::{Address, B256, Bytes, TxKind, U256, keccak256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolCall,
};
use alloy_evm::FromRecoveredTx;
use jsonrpsee::{
    core::{client::ClientT, params::BatchRequestBuilder},
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
};
use revm::{
    Context, ExecuteCommitEvm, MainBuilder, MainContext,
    context::TxEnv,
    database::{CacheDB, WrapDatabaseRef},
};
use serde_json::Value;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::Semaphore;

mod attack;

/// `computechain bench` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Sections to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rpc,recover,exec,state,evidence,attack"
    )]
    pub sections: Vec<String>,
    /// rpc: sending accounts (transactions per account must fit the pool's per-account limit).
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    /// rpc: transfers to send (spread evenly over the accounts). The node's pool is sized to
    /// hold them all. The rate counts whole blocks, so the more blocks the load spans, the less
    /// a block more or less moves it.
    #[arg(long, default_value_t = 50_000)]
    pub txs: usize,
    /// rpc: requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// rpc: transactions per JSON-RPC batch.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// rpc: block time in seconds for both nodes.
    #[arg(long = "block-time", default_value_t = 1)]
    pub block_time: u64,
    /// rpc: anvil binary to compare against (skipped if absent).
    #[arg(long, default_value = ".tools/bin/anvil")]
    pub anvil: PathBuf,
    /// rpc: give up waiting for inclusion after this many seconds.
    #[arg(long, default_value_t = 180)]
    pub timeout: u64,
    /// exec: ERC-20 transfers in the block.
    #[arg(long, default_value_t = 5_000)]
    pub erc20_txs: usize,
    /// exec: rounds, each timing a build of the block and a raw loop back to back; the round
    /// with the median ratio of the two is reported.
    #[arg(long, default_value_t = 21)]
    pub exec_rounds: usize,
    /// exec: forge build output holding `Token.sol/Token.json`.
    #[arg(long, default_value = "contracts/out")]
    pub artifacts: PathBuf,
    /// state: transfers in the sealed block.
    #[arg(long, default_value_t = 2_000)]
    pub block_txs: usize,
    /// state: funded accounts in the small state.
    #[arg(long, default_value_t = 10_000)]
    pub small_state: usize,
    /// state: funded accounts in the large state.
    #[arg(long, default_value_t = 1_000_000)]
    pub large_state: usize,
    /// state: blocks sealed per state size, the sizes in turns (the median is reported).
    #[arg(long, default_value_t = 61)]
    pub seal_rounds: u64,
}

/// Figures of one RPC load run.
#[derive(Debug, Clone)]
pub struct RpcReport {
    /// Transactions included (all receipts verified successful).
    pub included: usize,
    /// Included per second, first submission to last inclusion.
    pub tps: f64,
    /// Median submit-to-inclusion latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Peak resident memory of the node process (VmHWM), bytes.
    pub peak_rss: u64,
}

struct Target {
    child: Child,
    url: String,
    dir: Option<PathBuf>,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> eyre::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or_default()
}

async fn wait_ready(client: &HttpClient) -> eyre::Result<()> {
    for _ in 0..300 {
        if client
            .request::<Value, _>("eth_chainId", rpc_params![])
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eyre::bail!("node did not come up")
}

/// Starts a dev node whose pool holds `pool_slots` transactions.
fn spawn_computechain(block_time: u64, pool_slots: usize) -> eyre::Result<Target> {
    let port = free_port()?;
    let dir =
        std::env::temp_dir().join(format!("computechain-bench-{}-{port}", std::process::id()));
    let child = Command::new(std::env::current_exe()?)
        .args([
            "node",
            "--dev",
            "--http.port",
            &port.to_string(),
            "--block-time",
            &block_time.to_string(),
            "--txpool.globalslots",
            &pool_slots.to_string(),
        ])
        .arg("--datadir")
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Target {
        child,
        url: format!("http://127.0.0.1:{port}"),
        dir: Some(dir),
    })
}

fn spawn_anvil(bin: &PathBuf, block_time: u64) -> eyre::Result<Target> {
    let port = free_port()?;
    let child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--block-time",
            &block_time.to_string(),
            "--silent",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Target {
        child,
        url: format!("http://127.0.0.1:{port}"),
        dir: None,
    })
}

fn hex_u64(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_default()
}

/// A deterministic key for bench account `i` of `purpose`.
fn bench_key(purpose: &str, i: usize) -> eyre::Result<PrivateKeySigner> {
    Ok(PrivateKeySigner::from_bytes(&keccak256(format!(
        "computechain-bench-{purpose}-{i}"
    )))?)
}

/// Signs an EIP-1559 transaction.
fn sign(
    signer: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: Address,
    value: U256,
    input: Bytes,
    gas_limit: u64,
) -> eyre::Result<TxEnvelope> {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1,
        to: TxKind::Call(to),
        value,
        input,
        ..Default::default()
    };
    let sig = signer.sign_hash_sync(&tx.signature_hash())?;
    Ok(TxEnvelope::from(tx.into_signed(sig)))
}

fn raw(tx: &TxEnvelope) -> String {
    alloy::hex::encode_prefixed(tx.encoded_2718())
}

async fn send_batched(
    client: &HttpClient,
    raws: Vec<String>,
    batch: usize,
    concurrency: usize,
) -> eyre::Result<Vec<Instant>> {
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::new();
    for chunk in raws.chunks(batch.max(1)) {
        let permit = gate.clone().acquire_owned().await?;
        let client = client.clone();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut builder = BatchRequestBuilder::new();
            for raw in &chunk {
                builder.insert("eth_sendRawTransaction", rpc_params![raw])?;
            }
            let sent = Instant::now();
            let response = client.batch_request::<B256>(builder).await?;
            drop(permit);
            if response.num_failed_calls() > 0 {
                let first = response
                    .into_iter()
                    .find_map(|r| r.err())
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                eyre::bail!("submit failed: {first}");
            }
            Ok(vec![sent; chunk.len()])
        }));
    }
    let mut out = Vec::with_capacity(raws.len());
    for t in tasks {
        out.extend(t.await??);
    }
    Ok(out)
}

/// Waits until every hash is in a block; returns each hash's observed inclusion time and the
/// blocks seen.
async fn track_inclusion(
    client: &HttpClient,
    hashes: &[B256],
    from_block: u64,
    timeout: Duration,
) -> eyre::Result<(HashMap<B256, Instant>, Vec<u64>)> {
    let wanted: HashSet<B256> = hashes.iter().copied().collect();
    let mut seen = HashMap::new();
    let mut blocks = Vec::new();
    let mut next = from_block + 1;
    let deadline = Instant::now() + timeout;
    while seen.len() < wanted.len() {
        eyre::ensure!(
            Instant::now() < deadline,
            "only {} of {} transactions included before the timeout",
            seen.len(),
            wanted.len()
        );
        let head = hex_u64(
            &client
                .request::<Value, _>("eth_blockNumber", rpc_params![])
                .await?,
        );
        while next <= head {
            let block: Value = client
                .request(
                    "eth_getBlockByNumber",
                    rpc_params![format!("0x{next:x}"), false],
                )
                .await?;
            let now = Instant::now();
            for h in block["transactions"].as_array().into_iter().flatten() {
                if let Ok(h) = serde_json::from_value::<B256>(h.clone())
                    && wanted.contains(&h)
                {
                    seen.insert(h, now);
                }
            }
            blocks.push(next);
            next += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((seen, blocks))
}

async fn verify_receipts(
    client: &HttpClient,
    blocks: &[u64],
    hashes: &[B256],
) -> eyre::Result<usize> {
    let wanted: HashSet<B256> = hashes.iter().copied().collect();
    let mut ok = 0;
    for b in blocks {
        let receipts: Vec<Value> = client
            .request("eth_getBlockReceipts", rpc_params![format!("0x{b:x}")])
            .await?;
        for r in receipts {
            let h: B256 = serde_json::from_value(r["transactionHash"].clone())?;
            if wanted.contains(&h) {
                eyre::ensure!(r["status"] == "0x1", "transaction {h} failed");
                ok += 1;
            }
        }
    }
    Ok(ok)
}

/// The RPC workload: the senders and their pre-signed transfers.
struct Workload {
    senders: Vec<PrivateKeySigner>,
    transfers: Vec<TxEnvelope>,
}

fn rpc_workload(args: &BenchArgs, chain_id: u64) -> eyre::Result<Workload> {
    let senders: Vec<PrivateKeySigner> = (0..args.accounts)
        .map(|i| bench_key("rpc", i))
        .collect::<eyre::Result<_>>()?;
    let per_account = args.txs.div_ceil(args.accounts) as u64;
    let mut transfers = Vec::with_capacity(args.txs);
    'outer: for nonce in 0..per_account {
        for (i, s) in senders.iter().enumerate() {
            if transfers.len() == args.txs {
                break 'outer;
            }
            let to = senders[(i + 1) % senders.len()].address();
            transfers.push(sign(
                s,
                chain_id,
                nonce,
                to,
                U256::from(1),
                Bytes::new(),
                21_000,
            )?);
        }
    }
    Ok(Workload { senders, transfers })
}

/// Runs the workload against one node.
async fn run_rpc(target: &Target, args: &BenchArgs, work: &Workload) -> eyre::Result<RpcReport> {
    let client = HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(60))
        .max_response_size(512 << 20)
        .build(&target.url)?;
    wait_ready(&client).await?;
    let chain_id = hex_u64(
        &client
            .request::<Value, _>("eth_chainId", rpc_params![])
            .await?,
    );
    let funder = dev_accounts(1)?.remove(0);
    let funder_nonce = hex_u64(
        &client
            .request::<Value, _>(
                "eth_getTransactionCount",
                rpc_params![funder.address(), "pending"],
            )
            .await?,
    );
    let funding: Vec<TxEnvelope> = work
        .senders
        .iter()
        .enumerate()
        .map(|(i, s)| {
            sign(
                &funder,
                chain_id,
                funder_nonce + i as u64,
                s.address(),
                U256::from(10u64).pow(U256::from(18)),
                Bytes::new(),
                21_000,
            )
        })
        .collect::<eyre::Result<_>>()?;
    // In chunks that fit a pool's per-account limit.
    for chunk in funding.chunks(50) {
        let start = hex_u64(
            &client
                .request::<Value, _>("eth_blockNumber", rpc_params![])
                .await?,
        );
        send_batched(
            &client,
            chunk.iter().map(raw).collect(),
            args.batch,
            args.concurrency,
        )
        .await?;
        let hashes: Vec<B256> = chunk.iter().map(|t| *t.tx_hash()).collect();
        track_inclusion(&client, &hashes, start, Duration::from_secs(args.timeout)).await?;
    }

    let raws: Vec<String> = work.transfers.iter().map(raw).collect();
    let hashes: Vec<B256> = work.transfers.iter().map(|t| *t.tx_hash()).collect();
    let start_block = hex_u64(
        &client
            .request::<Value, _>("eth_blockNumber", rpc_params![])
            .await?,
    );
    let started = Instant::now();
    let tracker = {
        let (client, hashes, timeout) = (
            client.clone(),
            hashes.clone(),
            Duration::from_secs(args.timeout),
        );
        tokio::spawn(async move { track_inclusion(&client, &hashes, start_block, timeout).await })
    };
    let sent_at = send_batched(&client, raws, args.batch, args.concurrency).await?;
    let (included_at, blocks) = tracker.await??;
    let last = included_at.values().max().copied().unwrap_or(started);
    let mut latencies: Vec<Duration> = hashes
        .iter()
        .zip(&sent_at)
        .map(|(h, sent)| included_at[h].saturating_duration_since(*sent))
        .collect();
    latencies.sort_unstable();
    let included = verify_receipts(&client, &blocks, &hashes).await?;
    eyre::ensure!(
        included == hashes.len(),
        "{included} receipts verified of {}",
        hashes.len()
    );
    Ok(RpcReport {
        included,
        tps: included as f64 / last.duration_since(started).as_secs_f64(),
        p50: latencies[latencies.len() / 2],
        p99: latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)],
        peak_rss: peak_rss(target.child.id()),
    })
}

fn print_rpc(name: &str, r: &RpcReport) {
    println!(
        "rpc      target={name:<13} included={:<7} tps={:>9.1} p50_ms={:>8.1} p99_ms={:>8.1} peak_rss_mib={:>7.1}",
        r.included,
        r.tps,
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3,
        r.peak_rss as f64 / (1024.0 * 1024.0)
    );
}

/// The honest RPC load twice, on fresh nodes: alone, then while an attacker runs every known
/// RPC attack in a loop. Honest throughput and p99 latency should stay within 20%.
async fn attack_section(args: &BenchArgs, work: &Workload) -> eyre::Result<()> {
    let alone = run_rpc(&spawn_computechain(args.block_time, args.txs)?, args, work).await?;
    print_rpc("alone", &alone);
    let mut target = spawn_computechain(args.block_time, args.txs)?;
    let node: std::net::SocketAddr = target.url.trim_start_matches("http://").parse()?;
    wait_ready(&HttpClientBuilder::default().build(&target.url)?).await?;
    let attacker = attack::Attacker::start(node, ChainSpec::dev().chain_id())?;
    let attacked = run_rpc(&target, args, work).await;
    let sent = attacker.stop().await;
    let alive = target.child.try_wait()?.is_none();
    let attacked = attacked?;
    print_rpc("attacked", &attacked);
    println!(
        "attack   answered_requests={sent} node_alive={alive} tps_ratio={:.2} p99_ratio={:.2} peak_rss_mib={:.1}",
        attacked.tps / alone.tps,
        attacked.p99.as_secs_f64() / alone.p99.as_secs_f64().max(1e-9),
        attacked.peak_rss as f64 / (1024.0 * 1024.0)
    );
    eyre::ensure!(alive, "the node exited under attack");
    Ok(())
}

/// Sender recoveries per second on all cores, over `txs`.
fn recovery_ceiling(txs: &[TxEnvelope]) -> (usize, f64) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let encoded: Vec<Vec<u8>> = txs.iter().map(|t| t.encoded_2718()).collect();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for chunk in encoded.chunks(encoded.len().div_ceil(threads)) {
            scope.spawn(move || {
                for raw in chunk {
                    let tx = TxEnvelope::decode_2718_exact(raw).expect("valid transaction");
                    std::hint::black_box(tx.recover_signer().expect("valid signature"));
                }
            });
        }
    });
    (threads, txs.len() as f64 / started.elapsed().as_secs_f64())
}

/// A fresh store in a temporary directory holding `spec`'s genesis.
fn seeded_store(spec: &ChainSpec) -> eyre::Result<(tempfile::TempDir, Store, SealedHeader)> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let genesis = store.init_genesis(&spec.genesis, spec.genesis_header())?;
    Ok((dir, store, genesis))
}

fn funded(balance: U256) -> GenesisAccount {
    GenesisAccount {
        balance,
        ..Default::default()
    }
}

fn attrs(parent: &SealedHeader) -> BlockAttributes {
    BlockAttributes {
        timestamp: parent.timestamp + 1,
        proposer: Address::ZERO,
        prev_randao: keccak256(parent.hash()),
    }
}

fn recovered(txs: &[TxEnvelope]) -> eyre::Result<Vec<Arc<Recovered<TxEnvelope>>>> {
    txs.iter()
        .map(|t| Ok(Arc::new(t.clone().try_into_recovered()?)))
        .collect()
}

alloy::sol! {
    function transfer(address to, uint256 value) external returns (bool);
}

/// ERC-20 block execution against a raw revm loop over the same transactions and state.
fn exec_section(args: &BenchArgs) -> eyre::Result<()> {
    let artifact = args.artifacts.join("Token.sol/Token.json");
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(&artifact)
            .map_err(|e| eyre::eyre!("{}: {e} (run forge build)", artifact.display()))?,
    )?;
    let runtime: Bytes = json["deployedBytecode"]["object"]
        .as_str()
        .ok_or_else(|| eyre::eyre!("no deployedBytecode"))?
        .parse()?;
    let token = Address::repeat_byte(0x70);
    let holders: Vec<PrivateKeySigner> = (0..500)
        .map(|i| bench_key("erc20", i))
        .collect::<eyre::Result<_>>()?;
    let mut spec = ChainSpec::dev();
    let mut storage = BTreeMap::new();
    for h in &holders {
        spec.genesis
            .alloc
            .insert(h.address(), funded(U256::from(10u64).pow(U256::from(19))));
        let slot = mapping_slot(h.address(), 0);
        storage.insert(slot, B256::from(U256::from(10u64).pow(U256::from(24))));
    }
    spec.genesis.alloc.insert(
        token,
        GenesisAccount {
            code: Some(runtime),
            storage: Some(storage),
            nonce: Some(1),
            ..Default::default()
        },
    );
    let spec = Arc::new(ChainSpec::from_genesis(spec.genesis, spec.params)?);
    let (_dir, store, genesis) = seeded_store(&spec)?;
    let chain_id = spec.chain_id();
    let txs: Vec<TxEnvelope> = (0..args.erc20_txs)
        .map(|i| {
            let from = &holders[i % holders.len()];
            let to = Address::from_word(keccak256(i.to_be_bytes()));
            let input = transferCall {
                to,
                value: U256::from(1),
            }
            .abi_encode();
            sign(
                from,
                chain_id,
                (i / holders.len()) as u64,
                token,
                U256::ZERO,
                input.into(),
                80_000,
            )
        })
        .collect::<eyre::Result<_>>()?;
    let txs = recovered(&txs)?;
    let builder = BlockBuilder::new(spec.clone());
    let reader = store.read()?;
    let attrs = attrs(&genesis);

    let env = builder.next_env(&genesis, &attrs);
    // Each round times the block and the raw loop back to back, so that both meet the same
    // machine conditions (this VM's speed drifts over seconds); the figures are the median
    // round's, by the ratio of the two.
    let mut rounds = Vec::with_capacity(args.exec_rounds);
    let (mut gas, mut raw_gas) = (0, 0);
    for _ in 0..args.exec_rounds {
        let started = Instant::now();
        let built = builder.build(&reader, &genesis, &attrs, txs.iter().cloned())?;
        let block_s = started.elapsed().as_secs_f64();
        eyre::ensure!(
            built.invalid.is_empty() && built.block.receipts.iter().all(|r| r.status()),
            "ERC-20 transfers failed"
        );
        gas = built.block.header.gas_used;

        let state = reader.state_at(None);
        let mut evm = Context::mainnet()
            .with_db(CacheDB::new(WrapDatabaseRef(&state)))
            .with_block(env.block_env.clone())
            .with_cfg(env.cfg_env.clone())
            .build_mainnet();
        let started = Instant::now();
        raw_gas = 0;
        for tx in &txs {
            let result = evm.transact_commit(TxEnv::from_recovered_tx(tx.inner(), tx.signer()))?;
            eyre::ensure!(result.is_success(), "raw revm transfer failed");
            raw_gas += result.tx_gas_used();
        }
        rounds.push((block_s, started.elapsed().as_secs_f64()));
    }
    rounds.sort_by(|a, b| (a.1 / a.0).total_cmp(&(b.1 / b.0)));
    let (block_s, raw_s) = rounds[rounds.len() / 2];
    let block_mgas = gas as f64 / block_s / 1e6;
    let raw_mgas = raw_gas as f64 / raw_s / 1e6;
    let (delegate_gas, delegate_best) =
        delegate_block(args, &spec, &builder, &reader, &genesis, &holders)?;
    let delegate_mgas = delegate_gas as f64 / delegate_best / 1e6;
    println!(
        "exec     txs={} gas={gas} block_ms={:.1} block_mgas_s={block_mgas:.1} raw_revm_ms={:.1} raw_revm_mgas_s={raw_mgas:.1} ratio_pct={:.1}",
        txs.len(),
        block_s * 1e3,
        raw_s * 1e3,
        100.0 * block_mgas / raw_mgas
    );
    // Precompile pricing: gas per second of staking calls beside ordinary contract code.
    println!(
        "exec     precompile=delegate txs={} gas={delegate_gas} block_ms={:.1} mgas_s={delegate_mgas:.1} erc20_mgas_s={block_mgas:.1} ratio={:.2}",
        holders.len(),
        delegate_best * 1e3,
        delegate_mgas / block_mgas
    );
    Ok(())
}

/// A block in which every holder makes its first delegation to the genesis validator: the
/// precompile's heaviest common path. Returns its gas and best build time.
fn delegate_block(
    args: &BenchArgs,
    spec: &ChainSpec,
    builder: &BlockBuilder,
    reader: &crate::storage::Reader<'_>,
    genesis: &SealedHeader,
    holders: &[PrivateKeySigner],
) -> eyre::Result<(u64, f64)> {
    use computechain_precompiles::{DELEGATION_ADDRESS, interfaces::IDelegation};
    let validator = spec
        .params
        .staking
        .validators
        .first()
        .map(|v| v.operator)
        .ok_or_else(|| eyre::eyre!("no genesis validator"))?;
    let txs: Vec<TxEnvelope> = holders
        .iter()
        .map(|h| {
            sign(
                h,
                spec.chain_id(),
                0,
                DELEGATION_ADDRESS,
                U256::from(10u64).pow(U256::from(18)),
                IDelegation::delegateCall { validator }.abi_encode().into(),
                300_000,
            )
        })
        .collect::<eyre::Result<_>>()?;
    let txs = recovered(&txs)?;
    let mut best = f64::MAX;
    let mut gas = 0;
    for _ in 0..args.exec_rounds {
        let started = Instant::now();
        let built = builder.build(reader, genesis, &attrs(genesis), txs.iter().cloned())?;
        best = best.min(started.elapsed().as_secs_f64());
        eyre::ensure!(
            built.block.receipts.iter().all(|r| r.status())
                && built.block.transactions.len() == holders.len(),
            "delegations failed"
        );
        // Only the transactions' gas: the block's system calls are free.
        gas = built.block.header.gas_used;
    }
    Ok((gas, best))
}

/// A node seeded with funded accounts, sealing blocks of transfers between them.
struct SealBench {
    accounts: usize,
    senders: Vec<PrivateKeySigner>,
    others: Vec<Address>,
    _dir: tempfile::TempDir,
    node: Node,
    seed_s: f64,
    /// (seal, build, background persist) seconds of each block sealed.
    rounds: Vec<(f64, f64, f64)>,
}

impl SealBench {
    /// Seeds `accounts` funded accounts (`block_txs` of them senders) through genesis.
    fn new(args: &BenchArgs, accounts: usize) -> eyre::Result<Self> {
        let senders: Vec<PrivateKeySigner> = (0..args.block_txs)
            .map(|i| bench_key("state", i))
            .collect::<eyre::Result<_>>()?;
        let mut spec = ChainSpec::dev();
        let balance = U256::from(10u64).pow(U256::from(18));
        for s in &senders {
            spec.genesis.alloc.insert(s.address(), funded(balance));
        }
        let others: Vec<Address> = (0..accounts.saturating_sub(senders.len()))
            .map(|i| Address::from_word(keccak256(i.to_be_bytes())))
            .collect();
        for a in &others {
            spec.genesis.alloc.insert(*a, funded(balance));
        }
        let seeding = Instant::now();
        let spec = ChainSpec::from_genesis(spec.genesis, spec.params)?;
        let dir = tempfile::tempdir()?;
        let node = Node::open(spec, dir.path(), Address::ZERO)?;
        Ok(Self {
            accounts,
            senders,
            others,
            _dir: dir,
            node,
            seed_s: seeding.elapsed().as_secs_f64(),
            rounds: Vec::new(),
        })
    }

    /// Sends one block's transfers to the pool, as `eth_sendRawTransaction` does, then seals
    /// the block: every sender pays an existing account, and every transfer rewrites two
    /// leaves.
    fn seal(&mut self, round: u64) -> eyre::Result<()> {
        for (i, s) in self.senders.iter().enumerate() {
            let to = self
                .others
                .get((i * 7919 + round as usize * 104_729) % self.others.len().max(1))
                .copied()
                .unwrap_or(Address::ZERO);
            let tx = sign(
                s,
                self.node.spec.chain_id(),
                round,
                to,
                U256::from(1),
                Bytes::new(),
                21_000,
            )?;
            self.node.submit_raw(&tx.encoded_2718())?;
        }
        let timestamp = self.node.head().timestamp + 1;
        let sealed = self.node.seal_next_block(timestamp)?;
        eyre::ensure!(
            sealed.block.transactions.len() == self.senders.len(),
            "only {} transfers fit",
            sealed.block.transactions.len()
        );
        // The persister writes the block to the tables in the background; waiting for it here
        // keeps one block's table writes from overlapping the next block's timing.
        let persisting = Instant::now();
        self.node.store.flush()?;
        self.rounds.push((
            (sealed.build + sealed.commit).as_secs_f64(),
            sealed.build.as_secs_f64(),
            persisting.elapsed().as_secs_f64(),
        ));
        Ok(())
    }

    /// Prints the median block's figures; returns its seal time.
    fn report(&self, block_txs: usize) -> f64 {
        let mut rounds = self.rounds.clone();
        rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (seal_s, build_s, persist_s) = rounds[rounds.len() / 2];
        println!(
            "state    accounts={:<8} block_txs={block_txs} seed_s={:.1} seal_ms={:.1} build_ms={:.1} commit_ms={:.1} background_persist_ms={:.1}",
            self.accounts,
            self.seed_s,
            seal_s * 1e3,
            build_s * 1e3,
            (seal_s - build_s) * 1e3,
            persist_s * 1e3
        );
        seal_s
    }
}

/// Seal time with a small and a large state. The two stores seal in turns, so that both sizes
/// meet the same machine conditions (this VM's speed drifts over seconds).
fn state_section(args: &BenchArgs) -> eyre::Result<()> {
    let mut small = SealBench::new(args, args.small_state)?;
    let mut large = SealBench::new(args, args.large_state)?;
    for round in 0..args.seal_rounds {
        small.seal(round)?;
        large.seal(round)?;
    }
    let small_s = small.report(args.block_txs);
    let large_s = large.report(args.block_txs);
    // Each round's two blocks sealed one after the other: their ratio is the least exposed to
    // the machine's drifting speed.
    let mut paired: Vec<f64> = small
        .rounds
        .iter()
        .zip(&large.rounds)
        .map(|(small, large)| large.0 / small.0)
        .collect();
    paired.sort_by(f64::total_cmp);
    println!(
        "state    ratio large/small seal={:.2}x paired_median={:.2}x",
        large_s / small_s,
        paired[paired.len() / 2]
    );
    Ok(())
}

/// What an ed25519 vote verification costs beside ECRECOVER (both 3,000 gas): the figure the
/// evidence precompile's verification price rests on.
fn evidence_section() -> eyre::Result<()> {
    use computechain_precompiles::staking::evidence::{ED25519_VERIFY_GAS, vote_message};
    use ed25519_dalek::{Signer, SigningKey};
    use std::hint::black_box;
    const ROUNDS: u32 = 4_000;
    let key = SigningKey::from_bytes(&[7; 32]);
    let message = vote_message(7357, 1_000, 0, B256::repeat_byte(1));
    let signature = key.sign(&message);
    let verifying = key.verifying_key();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        verifying.verify_strict(black_box(&message), black_box(&signature))?;
    }
    let ed25519 = started.elapsed().as_secs_f64() / f64::from(ROUNDS);
    let signer = bench_key("evidence", 0)?;
    let hash = keccak256(b"ecrecover");
    let sig = alloy::signers::SignerSync::sign_hash_sync(&signer, &hash)?;
    let mut input = [0u8; 128];
    input[..32].copy_from_slice(hash.as_slice());
    input[63] = 27 + u8::from(sig.v());
    input[64..96].copy_from_slice(&sig.r().to_be_bytes::<32>());
    input[96..].copy_from_slice(&sig.s().to_be_bytes::<32>());
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let out = revm::precompile::secp256k1::ec_recover_run(black_box(&input), 3_000)
            .map_err(|e| eyre::eyre!("ecrecover: {e:?}"))?;
        eyre::ensure!(out.bytes.len() == 32, "ecrecover recovered nothing");
    }
    let ecrecover = started.elapsed().as_secs_f64() / f64::from(ROUNDS);
    println!(
        "evidence ed25519_verify_us={:.1} ed25519_gas={ED25519_VERIFY_GAS} ed25519_mgas_s={:.1} ecrecover_us={:.1} ecrecover_gas=3000 ecrecover_mgas_s={:.1} time_ratio={:.2}",
        ed25519 * 1e6,
        ED25519_VERIFY_GAS as f64 / ed25519 / 1e6,
        ecrecover * 1e6,
        3_000.0 / ecrecover / 1e6,
        ed25519 / ecrecover
    );
    Ok(())
}

/// Storage slot of `mapping[key]` for a mapping at slot `index`: keccak256(key . index).
fn mapping_slot(key: Address, index: u64) -> B256 {
    let mut preimage = [0u8; 64];
    preimage[12..32].copy_from_slice(key.as_slice());
    preimage[32..].copy_from_slice(&U256::from(index).to_be_bytes::<32>());
    keccak256(preimage)
}

/// Runs the benchmark and prints the figures.
pub async fn run(args: BenchArgs) -> eyre::Result<()> {
    eyre::ensure!(
        args.accounts > 0 && args.txs > 0 && args.concurrency > 0,
        "accounts, txs and concurrency must be positive"
    );
    let wants = |s: &str| args.sections.iter().any(|x| x == s);
    println!(
        "bench    sections={} accounts={} txs={} batch={} concurrency={} block_time_s={}",
        args.sections.join(","),
        args.accounts,
        args.txs,
        args.batch,
        args.concurrency,
        args.block_time
    );
    let work = rpc_workload(&args, ChainSpec::dev().chain_id())?;
    let mut ours_tps = None;
    if wants("rpc") {
        let ours = run_rpc(
            &spawn_computechain(args.block_time, args.txs)?,
            &args,
            &work,
        )
        .await?;
        print_rpc("computechain", &ours);
        ours_tps = Some(ours.tps);
        if args.anvil.exists() {
            let anvil_work = rpc_workload(&args, 31337)?;
            let theirs = run_rpc(
                &spawn_anvil(&args.anvil, args.block_time)?,
                &args,
                &anvil_work,
            )
            .await?;
            print_rpc("anvil", &theirs);
            println!(
                "rpc      ratio tps={:.2}x p50_latency={:.2}x",
                ours.tps / theirs.tps,
                theirs.p50.as_secs_f64() / ours.p50.as_secs_f64().max(1e-9)
            );
        } else {
            println!(
                "rpc      target=anvil skipped: {} not found (run scripts/setup.sh)",
                args.anvil.display()
            );
        }
    }
    if wants("attack") {
        attack_section(&args, &work).await?;
    }
    if wants("recover") {
        let (threads, per_s) = recovery_ceiling(&work.transfers);
        print!("recover  threads={threads} recoveries_per_s={per_s:.0}");
        match ours_tps {
            Some(tps) => println!(" included_tps_fraction_pct={:.1}", 100.0 * tps / per_s),
            None => println!(),
        }
    }
    if wants("exec") {
        tokio::task::block_in_place(|| exec_section(&args))?;
    }
    if wants("state") {
        tokio::task::block_in_place(|| state_section(&args))?;
    }
    if wants("evidence") {
        evidence_section()?;
    }
    Ok(())
}
