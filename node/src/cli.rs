//! Command line.

use clap::{Args, Parser, Subcommand};
use std::{net::IpAddr, path::PathBuf, time::Duration};

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
    /// Consensus-key tools.
    #[command(subcommand, name = "consensus-key")]
    ConsensusKey(ConsensusKeyCommand),
}

/// `computechain consensus-key` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConsensusKeyCommand {
    /// Reads an ed25519 secret key (32 bytes, hex) from stdin and prints its public key and its
    /// proof of possession for `--operator` (the arguments of `createValidator`).
    Pop {
        /// Chain id the proof is bound to.
        #[arg(long = "chain-id")]
        chain_id: u64,
        /// The validator's operator address (the account that sends `createValidator`).
        #[arg(long)]
        operator: alloy::primitives::Address,
    },
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
    /// Most queued (not yet executable) transactions one sender may hold [default: genesis
    /// `computechain.txPool.maxQueuedPerAccount`].
    #[arg(long = "txpool.accountqueue", value_name = "N")]
    pub txpool_account_queue: Option<usize>,
    /// Most queued transactions in the pool [default: genesis `computechain.txPool.maxQueued`].
    #[arg(long = "txpool.globalqueue", value_name = "N")]
    pub txpool_global_queue: Option<usize>,
    /// How long a sender's queued transactions stay without a new one of its transactions
    /// entering the pool, e.g. `3h0m0s` [default: genesis `computechain.txPool.lifetimeSecs`].
    #[arg(long = "txpool.lifetime", value_name = "DURATION", value_parser = parse_duration)]
    pub txpool_lifetime: Option<Duration>,
    /// Most gas one `eth_call` / `eth_estimateGas` may use (0: the block gas limit).
    #[arg(long = "rpc.gascap", value_name = "GAS", default_value_t = 50_000_000)]
    pub rpc_gas_cap: u64,
    /// Longest one `eth_call` / `eth_estimateGas` may run, e.g. `5s` (0: unbounded).
    #[arg(long = "rpc.evmtimeout", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub rpc_evm_timeout: Duration,
    /// Comma-separated host names plain HTTP requests may be addressed to (`*`: any; IP
    /// addresses always). Guards against DNS rebinding.
    #[arg(
        long = "http.vhosts",
        value_name = "HOSTS",
        value_delimiter = ',',
        default_value = "localhost"
    )]
    pub http_vhosts: Vec<String>,
    /// Comma-separated origins WebSocket connections may come from (`*`: any) [default: pages
    /// on this machine, plus browser-extension pages with `--dev`].
    #[arg(long = "ws.origins", value_name = "ORIGINS", value_delimiter = ',')]
    pub ws_origins: Option<Vec<String>>,
    /// Most open RPC connections (HTTP and WebSocket).
    #[arg(long = "rpc.maxconnections", value_name = "N", default_value_t = 500)]
    pub rpc_max_connections: usize,
    /// Most open RPC connections from one IP address.
    #[arg(
        long = "rpc.maxconnectionsperip",
        value_name = "N",
        default_value_t = 50
    )]
    pub rpc_max_connections_per_ip: usize,
    /// An RPC connection with no traffic for this long is closed, e.g. `2m` (WebSocket clients
    /// that answer the node's pings are never idle).
    #[arg(long = "rpc.idletimeout", value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    pub rpc_idle_timeout: Duration,
}

/// A duration as Go writes them (`3h0m0s`, `5s`, `250ms`) or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let bad = || format!("invalid duration {text:?}: use e.g. 5s, 250ms, 2m, 3h0m0s");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        total = unit
            .checked_mul(u32::try_from(value).map_err(|_| bad())?)
            .and_then(|d| total.checked_add(d))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_writes_them() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("3h0m0s"), Ok(Duration::from_secs(10_800)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        for bad in ["", "s", "5x", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
