//! Load generator: funds K accounts, pre-signs N transfers, submits them over JSON-RPC with
//! bounded concurrency, and reports included transactions per second, submit-to-inclusion
//! latency (p50/p99) and the node's peak resident memory. With `--anvil`, the same workload runs
//! against anvil at the same block time and the ratio is printed.

use crate::dev::dev_accounts;
use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::Encodable2718,
    primitives::{Address, B256, TxKind, U256, keccak256},
    signers::{SignerSync, local::PrivateKeySigner},
};
use jsonrpsee::{
    core::client::ClientT,
    http_client::{HttpClient, HttpClientBuilder},
    rpc_params,
};
use serde_json::Value;
use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::Semaphore;

/// `computechain bench` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Sending accounts.
    #[arg(long, default_value_t = 200)]
    pub accounts: usize,
    /// Transfers to send (spread evenly over the accounts).
    #[arg(long, default_value_t = 10_000)]
    pub txs: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Block time in seconds for both nodes.
    #[arg(long = "block-time", default_value_t = 1)]
    pub block_time: u64,
    /// anvil binary to compare against (skipped if absent).
    #[arg(long, default_value = ".tools/bin/anvil")]
    pub anvil: PathBuf,
    /// Give up waiting for inclusion after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// Figures of one run.
#[derive(Debug, Clone)]
pub struct BenchReport {
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
    _dir: Option<PathBuf>,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self._dir {
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

fn spawn_computechain(block_time: u64) -> eyre::Result<Target> {
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
        _dir: Some(dir),
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
        _dir: None,
    })
}

fn hex_u64(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or_default()
}

fn sign_transfer(
    signer: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    to: Address,
    value: U256,
) -> eyre::Result<(B256, String)> {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 20_000_000_000,
        max_priority_fee_per_gas: 1,
        to: TxKind::Call(to),
        value,
        ..Default::default()
    };
    let sig = signer.sign_hash_sync(&tx.signature_hash())?;
    let env = TxEnvelope::from(tx.into_signed(sig));
    Ok((
        *env.tx_hash(),
        alloy::hex::encode_prefixed(env.encoded_2718()),
    ))
}

async fn send_all(
    client: &HttpClient,
    raws: Vec<String>,
    concurrency: usize,
) -> eyre::Result<Vec<Instant>> {
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(raws.len());
    for raw in raws {
        let permit = gate.clone().acquire_owned().await?;
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let r = client
                .request::<B256, _>("eth_sendRawTransaction", rpc_params![raw])
                .await;
            drop(permit);
            r.map(|_| sent)
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await?.map_err(|e| eyre::eyre!("submit failed: {e}"))?);
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
    let wanted: std::collections::HashSet<B256> = hashes.iter().copied().collect();
    let mut seen = HashMap::new();
    let mut blocks = Vec::new();
    let mut next = from_block + 1;
    let deadline = Instant::now() + timeout;
    while seen.len() < wanted.len() {
        if Instant::now() > deadline {
            eyre::bail!(
                "only {} of {} transactions included before the timeout",
                seen.len(),
                wanted.len()
            );
        }
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
    let wanted: std::collections::HashSet<B256> = hashes.iter().copied().collect();
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

/// Runs the workload against one node.
async fn run_against(target: &Target, args: &BenchArgs) -> eyre::Result<BenchReport> {
    let client = HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(60))
        .build(&target.url)?;
    wait_ready(&client).await?;
    let chain_id = hex_u64(
        &client
            .request::<Value, _>("eth_chainId", rpc_params![])
            .await?,
    );
    let funder = dev_accounts(1)?.remove(0);
    let senders: Vec<PrivateKeySigner> = (0..args.accounts)
        .map(|i| PrivateKeySigner::from_bytes(&keccak256(format!("computechain-bench-{i}"))))
        .collect::<Result<_, _>>()?;
    let per_account = args.txs.div_ceil(args.accounts);

    // Fund the senders.
    let funder_nonce = hex_u64(
        &client
            .request::<Value, _>(
                "eth_getTransactionCount",
                rpc_params![funder.address(), "pending"],
            )
            .await?,
    );
    let mut funding = Vec::new();
    let mut funding_hashes = Vec::new();
    for (i, s) in senders.iter().enumerate() {
        let (h, raw) = sign_transfer(
            &funder,
            chain_id,
            funder_nonce + i as u64,
            s.address(),
            U256::from(10u64).pow(U256::from(18)),
        )?;
        funding.push(raw);
        funding_hashes.push(h);
    }
    // In chunks that fit a pool's per-account limit.
    for (raws, hashes) in funding.chunks(50).zip(funding_hashes.chunks(50)) {
        let start_block = hex_u64(
            &client
                .request::<Value, _>("eth_blockNumber", rpc_params![])
                .await?,
        );
        send_all(&client, raws.to_vec(), args.concurrency).await?;
        track_inclusion(
            &client,
            hashes,
            start_block,
            Duration::from_secs(args.timeout),
        )
        .await?;
    }

    // Pre-sign the load.
    let mut raws = Vec::with_capacity(args.txs);
    let mut hashes = Vec::with_capacity(args.txs);
    'outer: for nonce in 0..per_account as u64 {
        for (i, s) in senders.iter().enumerate() {
            if raws.len() == args.txs {
                break 'outer;
            }
            let to = senders[(i + 1) % senders.len()].address();
            let (h, raw) = sign_transfer(s, chain_id, nonce, to, U256::from(1))?;
            raws.push(raw);
            hashes.push(h);
        }
    }

    let start_block = hex_u64(
        &client
            .request::<Value, _>("eth_blockNumber", rpc_params![])
            .await?,
    );
    let started = Instant::now();
    let tracker = {
        let client = client.clone();
        let hashes = hashes.clone();
        let timeout = Duration::from_secs(args.timeout);
        tokio::spawn(async move { track_inclusion(&client, &hashes, start_block, timeout).await })
    };
    let sent_at = send_all(&client, raws, args.concurrency).await?;
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
    Ok(BenchReport {
        included,
        tps: included as f64 / last.duration_since(started).as_secs_f64(),
        p50: latencies[latencies.len() / 2],
        p99: latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)],
        peak_rss: peak_rss(target.child.id()),
    })
}

fn print_report(name: &str, r: &BenchReport) {
    println!(
        "{name:<14} included={:<7} tps={:>9.1} p50_ms={:>8.1} p99_ms={:>8.1} peak_rss_mib={:>7.1}",
        r.included,
        r.tps,
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3,
        r.peak_rss as f64 / (1024.0 * 1024.0)
    );
}

/// Runs the benchmark and prints the figures.
pub async fn run(args: BenchArgs) -> eyre::Result<()> {
    eyre::ensure!(
        args.accounts > 0 && args.txs > 0 && args.concurrency > 0,
        "accounts, txs and concurrency must be positive"
    );
    println!(
        "bench: accounts={} txs={} concurrency={} block_time={}s",
        args.accounts, args.txs, args.concurrency, args.block_time
    );
    let ours = {
        let target = spawn_computechain(args.block_time)?;
        run_against(&target, &args).await?
    };
    print_report("computechain", &ours);
    if args.anvil.exists() {
        let theirs = {
            let target = spawn_anvil(&args.anvil, args.block_time)?;
            run_against(&target, &args).await?
        };
        print_report("anvil", &theirs);
        println!(
            "ratio          tps={:.2}x p50={:.2}x",
            ours.tps / theirs.tps,
            theirs.p50.as_secs_f64() / ours.p50.as_secs_f64().max(1e-9)
        );
    } else {
        println!(
            "anvil          skipped: {} not found (run scripts/setup.sh)",
            args.anvil.display()
        );
    }
    Ok(())
}
