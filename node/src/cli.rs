//! Command line.

use clap::{Args, Parser, Subcommand};
use std::{net::IpAddr, path::PathBuf};

/// ComputeChain: an EVM chain where GPU compute is a first-class citizen.
#[derive(Debug, Parser)]
#[command(name = "computechain", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node.
    Node(NodeArgs),
    /// Load-test a node (and optionally anvil) over JSON-RPC and print figures.
    Bench(crate::bench::BenchArgs),
}

/// `computechain node` flags.
#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// Dev chain: the embedded dev genesis, funded test accounts, local sealing.
    #[arg(long)]
    pub dev: bool,
    /// Data directory [default: ~/.computechain/<chain id>].
    #[arg(long, value_name = "DIR")]
    pub datadir: Option<PathBuf>,
    /// RPC listen address (HTTP and WebSocket). Loopback unless told otherwise.
    #[arg(long = "http.addr", value_name = "ADDR", default_value = "127.0.0.1")]
    pub http_addr: IpAddr,
    /// RPC port.
    #[arg(long = "http.port", value_name = "PORT", default_value_t = 8545)]
    pub http_port: u16,
    /// Comma-separated origins allowed by CORS (`*` for any). None by default.
    #[arg(
        long = "http.corsdomain",
        value_name = "ORIGINS",
        value_delimiter = ','
    )]
    pub cors: Option<Vec<String>>,
    /// Seconds between blocks; 0 seals as soon as transactions arrive [default: genesis
    /// `computechain.blockTime`].
    #[arg(long = "block-time", value_name = "SECS")]
    pub block_time: Option<u64>,
    /// Genesis file (geth format plus a `computechain` section).
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// Operator address of the validator this node seals blocks as; its pool receives block
    /// rewards and fees [default: the first genesis validator].
    #[arg(long, value_name = "ADDRESS")]
    pub validator: Option<alloy::primitives::Address>,
    /// Most transactions the pool holds, pending and queued [default: genesis
    /// `computechain.txPool.maxTotal`].
    #[arg(long = "txpool.globalslots", value_name = "N")]
    pub txpool_global_slots: Option<usize>,
}
