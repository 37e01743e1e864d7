//! The `computechain` binary.

use clap::Parser;
use computechain_node::{
    chainspec::ChainSpec,
    cli::{Cli, Command, ConsensusKeyCommand, NodeArgs},
    dev,
    node::Node,
    rpc,
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = Cli::parse();
    // The bench runs nodes in-process: their per-block logs would bury its figures.
    let default_filter = match cli.command {
        Command::Node(_) => "info,libmdbx=warn",
        Command::Bench(_) => "warn",
        Command::ConsensusKey(command) => {
            if let Err(e) = consensus_key(command) {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            return;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_target(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        match cli.command {
            Command::Node(args) => run_node(args).await,
            Command::Bench(args) => computechain_node::bench::run(args).await,
            Command::ConsensusKey(_) => unreachable!("handled before the runtime starts"),
        }
    });
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// `computechain consensus-key`: the secret comes from stdin, never from the command line
/// (which other users of the machine can read).
fn consensus_key(command: ConsensusKeyCommand) -> eyre::Result<()> {
    use ed25519_dalek::Signer;
    let ConsensusKeyCommand::Pop { chain_id, operator } = command;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let secret: [u8; 32] = alloy::hex::decode(line.trim())?
        .try_into()
        .map_err(|_| eyre::eyre!("the secret key must be 32 bytes of hex"))?;
    let key = ed25519_dalek::SigningKey::from_bytes(&secret);
    let message = computechain_precompiles::staking::evidence::pop_message(chain_id, operator);
    println!(
        "0x{} 0x{}",
        alloy::hex::encode(key.verifying_key().to_bytes()),
        alloy::hex::encode(key.sign(&message).to_bytes())
    );
    Ok(())
}

async fn run_node(args: NodeArgs) -> eyre::Result<()> {
    let mut spec = match (&args.genesis, args.dev) {
        (Some(path), _) => ChainSpec::from_file(path)?,
        (None, true) => ChainSpec::dev(),
        (None, false) => {
            eyre::bail!("no chain selected: pass --dev for a dev chain or --genesis FILE")
        }
    };
    let datadir = match &args.datadir {
        Some(d) => d.clone(),
        None => {
            let home = std::env::var_os("HOME")
                .ok_or_else(|| eyre::eyre!("HOME is not set; pass --datadir"))?;
            std::path::PathBuf::from(home)
                .join(".computechain")
                .join(spec.chain_id().to_string())
        }
    };
    let pool = &mut spec.params.tx_pool;
    if let Some(slots) = args.txpool_global_slots {
        pool.max_total = slots;
    }
    if let Some(queue) = args.txpool_account_queue {
        pool.max_queued_per_account = queue;
    }
    if let Some(queue) = args.txpool_global_queue {
        pool.max_queued = queue;
    }
    if let Some(lifetime) = args.txpool_lifetime {
        pool.lifetime_secs = lifetime.as_secs();
    }
    let block_time = Duration::from_secs(args.block_time.unwrap_or(spec.params.block_time));
    let validator = args
        .validator
        .or_else(|| spec.params.staking.validators.first().map(|v| v.operator))
        .unwrap_or_default();
    let chain_id = spec.chain_id();
    let symbol = spec.params.currency_symbol.clone();
    let node = Arc::new(
        Node::open(spec, &datadir, validator)
            .map_err(|e| eyre::eyre!("cannot open data directory {}: {e}", datadir.display()))?,
    );
    let config = rpc::RpcConfig {
        addr: SocketAddr::new(args.http_addr, args.http_port),
        cors: args.cors.clone(),
        access: rpc::AccessRules {
            vhosts: args.http_vhosts.clone(),
            ws_origins: args.ws_origins.clone().unwrap_or_else(|| {
                if args.dev {
                    rpc::AccessRules::dev_origins()
                } else {
                    rpc::AccessRules::local_origins()
                }
            }),
        },
        connections: rpc::ConnectionLimits {
            max_connections: args.rpc_max_connections,
            max_per_ip: args.rpc_max_connections_per_ip,
            idle_timeout: args.rpc_idle_timeout,
        },
        gas_cap: args.rpc_gas_cap,
        evm_timeout: args.rpc_evm_timeout,
        ..Default::default()
    };
    let (handle, addr) = rpc::start(node.clone(), config).await.map_err(|e| {
        eyre::eyre!(
            "cannot serve RPC on {}:{}: {e}",
            args.http_addr,
            args.http_port
        )
    })?;

    println!("\nComputeChain node");
    println!("  RPC (HTTP + WS): http://{addr}  ws://{addr}");
    println!("  Chain id:        {chain_id}");
    println!("  Currency:        {symbol}");
    println!("  Data directory:  {}", datadir.display());
    println!(
        "  Block time:      {}",
        if block_time.is_zero() {
            "on demand".to_string()
        } else {
            format!("{}s", block_time.as_secs())
        }
    );
    if args.dev {
        println!(
            "\nAvailable accounts (10000 {symbol} each, mnemonic \"{}\"):",
            dev::DEV_MNEMONIC
        );
        for (i, signer) in dev::dev_accounts(10)?.iter().enumerate() {
            println!(
                "  ({i}) {}  key 0x{}",
                signer.address(),
                alloy::hex::encode(signer.credential().to_bytes())
            );
        }
    }
    println!();

    let sealer = dev::Sealer::spawn(node.clone(), block_time)?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = handle.stop();
    sealer.stop();
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
