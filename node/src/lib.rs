//! ComputeChain node: EVM execution on revm through alloy-evm, MDBX storage, a transaction pool,
//! block production behind a seam the consensus engine will drive, and the Ethereum JSON-RPC.
//!
//! Data flow: RPC → [`pool`] → [`builder`] (executes on revm via [`evm`]) → [`storage`]; see
//! `ARCHITECTURE.md`.

pub mod bench;
pub mod block_roots;
pub mod block_state;
pub mod builder;
pub mod chainspec;
pub mod cli;
pub mod dev;
pub mod evm;
pub mod node;
pub mod pool;
pub mod rpc;
pub mod storage;
pub mod trie;
