//! Chain specification: the geth-style genesis file, ComputeChain's own parameters, the hardfork
//! schedule, and the genesis block derived from them.

use alloy::{
    consensus::{EMPTY_OMMER_ROOT_HASH, Header, constants::EMPTY_WITHDRAWALS},
    eips::{eip1559::BaseFeeParams, eip7685::EMPTY_REQUESTS_HASH},
    genesis::Genesis,
    primitives::{Address, B256, U256},
};
use alloy_evm::eth::spec::EthExecutorSpec;
use alloy_hardforks::{EthereumChainHardforks, EthereumHardfork, EthereumHardforks, ForkCondition};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The dev genesis, embedded so that `computechain node --dev` needs no file.
pub const DEV_GENESIS_JSON: &str = include_str!("../../genesis/dev.json");

/// Errors reading or validating a genesis file.
#[derive(Debug, thiserror::Error)]
pub enum ChainSpecError {
    /// The file could not be read.
    #[error("cannot read genesis file {path}: {error}")]
    Read {
        /// Path given.
        path: String,
        /// Underlying error (in the message, not chained, so it prints once).
        error: std::io::Error,
    },
    /// The JSON is not a valid genesis.
    #[error("invalid genesis JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A semantic problem (unsupported fork schedule, zero chain id, ...).
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

/// ComputeChain's own chain parameters: the `computechain` section of the genesis file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ChainParams {
    /// Human-readable network name (what MetaMask shows).
    pub name: String,
    /// Symbol of the native currency.
    pub currency_symbol: String,
    /// Default seconds between dev blocks.
    pub block_time: u64,
    /// Largest accepted encoded transaction, in bytes.
    pub max_tx_bytes: usize,
    /// Transaction pool limits.
    pub tx_pool: PoolParams,
    /// Largest block range one `eth_getLogs` call may scan.
    pub max_log_block_range: u64,
    /// Staking parameters and genesis validators.
    pub staking: computechain_precompiles::genesis::StakingGenesis,
}

impl Default for ChainParams {
    fn default() -> Self {
        Self {
            name: "ComputeChain".into(),
            currency_symbol: "CPC".into(),
            block_time: 1,
            max_tx_bytes: 128 * 1024,
            tx_pool: PoolParams::default(),
            max_log_block_range: 10_000,
            staking: Default::default(),
        }
    }
}

/// Transaction pool limits from genesis.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct PoolParams {
    /// Most transactions (pending + queued) one sender may hold in the pool.
    pub max_per_account: usize,
    /// Most transactions in the whole pool.
    pub max_total: usize,
    /// Most queued transactions (not executable: behind a nonce gap) one sender may hold
    /// (geth's `--txpool.accountqueue`).
    pub max_queued_per_account: usize,
    /// Most queued transactions in the whole pool (geth's `--txpool.globalqueue`).
    pub max_queued: usize,
    /// Seconds a sender's queued transactions stay without any of its transactions entering
    /// the pool (geth's `--txpool.lifetime`).
    pub lifetime_secs: u64,
    /// Smallest priority fee (wei) the pool accepts.
    pub min_priority_fee: U256,
}

impl Default for PoolParams {
    fn default() -> Self {
        Self {
            max_per_account: 64,
            max_total: 20_000,
            max_queued_per_account: 64,
            max_queued: 1024,
            lifetime_secs: 3 * 3600,
            min_priority_fee: U256::ZERO,
        }
    }
}

/// The `computechain` section, read beside the geth-style fields (serde's `flatten` cannot carry
/// the u128 quantities of [`Genesis`]).
#[derive(Deserialize)]
struct ComputeChainSection {
    #[serde(default)]
    computechain: ChainParams,
}

/// Everything the node needs to know about the chain it runs.
#[derive(Debug, Clone)]
pub struct ChainSpec {
    /// The parsed geth-style genesis.
    pub genesis: Genesis,
    /// ComputeChain parameters.
    pub params: ChainParams,
    hardforks: EthereumChainHardforks,
    genesis_header: Header,
}

impl ChainSpec {
    /// The embedded dev chain.
    pub fn dev() -> Self {
        Self::from_json(DEV_GENESIS_JSON).expect("embedded dev genesis is valid")
    }

    /// Reads a genesis file.
    pub fn from_file(path: &Path) -> Result<Self, ChainSpecError> {
        let json = std::fs::read_to_string(path).map_err(|error| ChainSpecError::Read {
            path: path.display().to_string(),
            error,
        })?;
        Self::from_json(&json)
    }

    /// Parses a genesis JSON document.
    pub fn from_json(json: &str) -> Result<Self, ChainSpecError> {
        let genesis: Genesis = serde_json::from_str(json)?;
        let ComputeChainSection {
            computechain: params,
        } = serde_json::from_str(json)?;
        Self::from_genesis(genesis, params)
    }

    /// A chain from an in-memory genesis (tools and benchmarks that generate large states).
    pub fn from_genesis(genesis: Genesis, params: ChainParams) -> Result<Self, ChainSpecError> {
        let mut genesis = genesis;
        params
            .staking
            .validate()
            .map_err(|e| ChainSpecError::Invalid(format!("computechain.staking: {e}")))?;
        let staking = computechain_precompiles::genesis::genesis_accounts(
            &params.staking,
            genesis.config.chain_id,
            genesis.timestamp,
        )
        .map_err(|e| ChainSpecError::Invalid(format!("staking genesis: {e}")))?;
        genesis.alloc.extend(staking);
        if genesis.config.chain_id == 0 {
            return Err(ChainSpecError::Invalid(
                "config.chainId must be non-zero".into(),
            ));
        }
        if genesis.gas_limit < 5_000_000 {
            return Err(ChainSpecError::Invalid(
                "gasLimit must be at least 5,000,000".into(),
            ));
        }
        let hardforks = hardforks_from_config(&genesis)?;
        let genesis_header = genesis_header(&genesis);
        Ok(Self {
            genesis,
            params,
            hardforks,
            genesis_header,
        })
    }

    /// The chain id (EIP-155).
    pub fn chain_id(&self) -> u64 {
        self.genesis.config.chain_id
    }

    /// The genesis header, with its state root computed from `alloc`.
    pub fn genesis_header(&self) -> &Header {
        &self.genesis_header
    }

    /// EIP-1559 parameters.
    pub fn base_fee_params(&self) -> BaseFeeParams {
        BaseFeeParams::ethereum()
    }
}

impl EthereumHardforks for ChainSpec {
    fn ethereum_fork_activation(&self, fork: EthereumHardfork) -> ForkCondition {
        self.hardforks.ethereum_fork_activation(fork)
    }
}

impl EthExecutorSpec for ChainSpec {
    fn deposit_contract_address(&self) -> Option<Address> {
        self.genesis.config.deposit_contract_address
    }
}

/// The fork schedule. ComputeChain is a post-merge chain: every fork through Prague must be
/// active at genesis; later forks are not supported yet and are refused rather than ignored.
fn hardforks_from_config(genesis: &Genesis) -> Result<EthereumChainHardforks, ChainSpecError> {
    let c = &genesis.config;
    let block_forks = [
        (EthereumHardfork::Homestead, c.homestead_block),
        (EthereumHardfork::Tangerine, c.eip150_block),
        (EthereumHardfork::SpuriousDragon, c.eip158_block),
        (EthereumHardfork::Byzantium, c.byzantium_block),
        (EthereumHardfork::Constantinople, c.constantinople_block),
        (EthereumHardfork::Petersburg, c.petersburg_block),
        (EthereumHardfork::Istanbul, c.istanbul_block),
        (EthereumHardfork::Berlin, c.berlin_block),
        (EthereumHardfork::London, c.london_block),
    ];
    let time_forks = [
        (EthereumHardfork::Shanghai, c.shanghai_time),
        (EthereumHardfork::Cancun, c.cancun_time),
        (EthereumHardfork::Prague, c.prague_time),
    ];
    let mut forks = vec![(EthereumHardfork::Frontier, ForkCondition::Block(0))];
    for (fork, at) in block_forks {
        match at {
            Some(0) => forks.push((fork, ForkCondition::Block(0))),
            _ => {
                return Err(ChainSpecError::Invalid(format!(
                    "{fork} must be active at block 0"
                )));
            }
        }
    }
    forks.push((
        EthereumHardfork::Paris,
        ForkCondition::TTD {
            activation_block_number: 0,
            fork_block: Some(0),
            total_difficulty: U256::ZERO,
        },
    ));
    for (fork, at) in time_forks {
        match at {
            Some(0) => forks.push((fork, ForkCondition::Timestamp(0))),
            _ => {
                return Err(ChainSpecError::Invalid(format!(
                    "{fork} must be active at time 0"
                )));
            }
        }
    }
    if c.osaka_time.is_some() {
        return Err(ChainSpecError::Invalid("Osaka is not supported yet".into()));
    }
    Ok(EthereumChainHardforks::new(forks))
}

/// The genesis header of a chain with every fork through Prague active at block 0.
fn genesis_header(genesis: &Genesis) -> Header {
    let state_root = crate::trie::genesis_state_root(&genesis.alloc);
    Header {
        parent_hash: B256::ZERO,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: genesis.coinbase,
        state_root,
        transactions_root: alloy::consensus::EMPTY_ROOT_HASH,
        receipts_root: alloy::consensus::EMPTY_ROOT_HASH,
        logs_bloom: Default::default(),
        difficulty: U256::ZERO,
        number: 0,
        gas_limit: genesis.gas_limit,
        gas_used: 0,
        timestamp: genesis.timestamp,
        extra_data: genesis.extra_data.clone(),
        mix_hash: genesis.mix_hash,
        nonce: Default::default(),
        base_fee_per_gas: Some(
            genesis
                .base_fee_per_gas
                .map(|fee| fee as u64)
                .unwrap_or(alloy::eips::eip1559::INITIAL_BASE_FEE),
        ),
        withdrawals_root: Some(EMPTY_WITHDRAWALS),
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        requests_hash: Some(EMPTY_REQUESTS_HASH),
        block_access_list_hash: None,
        slot_number: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;

    #[test]
    fn dev_genesis_funds_the_test_mnemonic_and_deploys_system_contracts() {
        let spec = ChainSpec::dev();
        assert_eq!(spec.chain_id(), 7357);
        let first = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        assert_eq!(
            spec.genesis.alloc[&first].balance,
            U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18))
        );
        assert_eq!(
            spec.genesis.alloc.len(),
            16,
            "10 accounts, 4 system contracts, 2 precompiles"
        );
        for (addr, code) in [
            (
                alloy::eips::eip4788::BEACON_ROOTS_ADDRESS,
                &alloy::eips::eip4788::BEACON_ROOTS_CODE,
            ),
            (
                alloy::eips::eip2935::HISTORY_STORAGE_ADDRESS,
                &alloy::eips::eip2935::HISTORY_STORAGE_CODE,
            ),
            (
                alloy::eips::eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
                &alloy::eips::eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_CODE,
            ),
            (
                alloy::eips::eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
                &alloy::eips::eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_CODE,
            ),
        ] {
            assert_eq!(
                spec.genesis.alloc[&addr].code.as_ref(),
                Some(code),
                "{addr}"
            );
        }
        assert!(spec.is_prague_active_at_timestamp(0));
        assert!(!spec.is_osaka_active_at_timestamp(u64::MAX));
        assert_eq!(spec.params.currency_symbol, "CPC");
    }

    #[test]
    fn rejects_bad_genesis_with_a_clear_error() {
        let err = ChainSpec::from_json("{").unwrap_err();
        assert!(err.to_string().contains("invalid genesis JSON"), "{err}");
        let mut v: serde_json::Value = serde_json::from_str(DEV_GENESIS_JSON).unwrap();
        v["config"]["pragueTime"] = serde_json::Value::Null;
        let err = ChainSpec::from_json(&v.to_string()).unwrap_err();
        assert!(err.to_string().contains("Prague must be active"), "{err}");
        v["config"]["chainId"] = 0.into();
        assert!(ChainSpec::from_json(&v.to_string()).is_err());
    }

    #[test]
    fn genesis_header_is_deterministic_and_commits_to_alloc() {
        let a = ChainSpec::dev();
        let b = ChainSpec::dev();
        assert_eq!(
            a.genesis_header().hash_slow(),
            b.genesis_header().hash_slow()
        );
        let mut v: serde_json::Value = serde_json::from_str(DEV_GENESIS_JSON).unwrap();
        v["alloc"]["0x0000000000000000000000000000000000000001"] =
            serde_json::json!({"balance": "0x1"});
        let c = ChainSpec::from_json(&v.to_string()).unwrap();
        assert_ne!(a.genesis_header().state_root, c.genesis_header().state_root);
    }
}
