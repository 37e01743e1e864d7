//! Genesis state of the staking system: parameters, and validators registered by running the
//! real `createValidator` in an in-memory EVM (so genesis storage is exactly what the precompile
//! would have written).

use crate::{
    DELEGATION_ADDRESS, PLACEHOLDER_CODE, STAKING_ADDRESS, interfaces::IStaking, layout::slot,
};
use alloy::{
    genesis::GenesisAccount,
    primitives::{Address, B256, Bytes, TxKind, U256},
    sol_types::SolCall,
};
use alloy_evm::{Evm, EvmEnv, eth::EthEvmBuilder, precompiles::PrecompilesMap};
use revm::{
    DatabaseCommit,
    bytecode::Bytecode,
    context::{BlockEnv, CfgEnv, TxEnv},
    database::{CacheDB, EmptyDB},
    precompile::{PrecompileSpecId, Precompiles},
    primitives::hardfork::SpecId,
    state::AccountInfo,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Staking parameters and genesis validators: the `staking` part of a genesis file's
/// `computechain` section. Omitted fields take the defaults below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StakingGenesis {
    /// Smallest self-stake of a bonded validator (wei).
    pub min_self_stake: U256,
    /// Smallest delegation (wei).
    pub min_delegation: U256,
    /// Seats in the active set.
    pub max_validators: u64,
    /// Unbonding period in seconds (21 days by default).
    pub unbonding_period: u64,
    /// Native reward minted to the proposer's pool each block (wei).
    pub block_reward: U256,
    /// Blocks per epoch: the active set is fixed at every multiple of it.
    pub epoch_length: u64,
    /// Blocks of the sliding uptime window (1..=256).
    pub uptime_window: u64,
    /// Minimum share of the window an active validator must sign, basis points (7500 = 75%).
    pub min_uptime_bps: u64,
    /// Seconds a jailed validator waits before a free unjail.
    pub jail_time: u64,
    /// Fee (wei, burned) to unjail before the jail time is over.
    pub unjail_fee: U256,
    /// Share of self-stake burned when a jailed validator unstakes, basis points (1000 = 10%).
    pub jailed_unstake_penalty_bps: u64,
    /// Downtime slash of the first, second and third-or-later offence, basis points
    /// (5% → 10% → 100%).
    pub downtime_slash_bps: [u64; 3],
    /// Double-sign slash, basis points (5%).
    pub double_sign_slash_bps: u64,
    /// Share of the double-signer's own loss (self-stake and own entries) paid to whoever
    /// submits the evidence, basis points (10%).
    pub reporter_reward_bps: u64,
    /// Oldest double-sign evidence accepted: seconds since the start of the epoch holding its
    /// height; at most `unbonding_period`.
    pub max_evidence_age: u64,
    /// Share of each block's base fee burned, basis points; the rest is paid to the proposer's
    /// validator with the block reward (10000: all burned, as on Ethereum).
    pub base_fee_burn_bps: u64,
    /// Validators registered at genesis; their self-stake is minted into the staking escrow.
    pub validators: Vec<GenesisValidator>,
}

impl Default for StakingGenesis {
    fn default() -> Self {
        let ether = U256::from(10u64).pow(U256::from(18));
        Self {
            min_self_stake: U256::from(100u64) * ether,
            min_delegation: ether,
            max_validators: 100,
            unbonding_period: 21 * 24 * 3600,
            block_reward: U256::from(2u64) * ether,
            epoch_length: 100,
            uptime_window: 100,
            min_uptime_bps: 7_500,
            jail_time: 600,
            unjail_fee: U256::from(10u64) * ether,
            jailed_unstake_penalty_bps: 1_000,
            downtime_slash_bps: [500, 1_000, 10_000],
            double_sign_slash_bps: 500,
            reporter_reward_bps: 1_000,
            max_evidence_age: 21 * 24 * 3600,
            base_fee_burn_bps: 10_000,
            validators: vec![],
        }
    }
}

impl StakingGenesis {
    /// Checks the parameters' ranges.
    pub fn validate(&self) -> Result<(), String> {
        // Zero here would leave no seat, let dust register validators or delegations (each an
        // entry walked every epoch), or make unbonding and evidence instant.
        let positive = [
            ("maxValidators", self.max_validators > 0),
            ("minSelfStake", !self.min_self_stake.is_zero()),
            ("minDelegation", !self.min_delegation.is_zero()),
            ("unbondingPeriod", self.unbonding_period > 0),
            ("maxEvidenceAge", self.max_evidence_age > 0),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, ok)| !ok) {
            return Err(format!("{name} must be positive"));
        }
        // Evidence that outlived the unbonding period would find the offender's stake gone.
        if self.max_evidence_age > self.unbonding_period {
            return Err(format!(
                "maxEvidenceAge {} must be at most unbondingPeriod {} (both seconds)",
                self.max_evidence_age, self.unbonding_period
            ));
        }
        let mut operators = std::collections::BTreeSet::new();
        let mut keys = std::collections::BTreeSet::new();
        for v in &self.validators {
            if v.self_stake < self.min_self_stake {
                return Err(format!(
                    "validator {}: selfStake {} below minSelfStake {}",
                    v.operator, v.self_stake, self.min_self_stake
                ));
            }
            if v.commission_bps > v.max_commission_bps || v.max_commission_bps > 10_000 {
                return Err(format!(
                    "validator {}: commissionBps {} must be at most maxCommissionBps {}, itself at most 10000",
                    v.operator, v.commission_bps, v.max_commission_bps
                ));
            }
            if !operators.insert(v.operator) || !keys.insert(v.consensus_key) {
                return Err(format!(
                    "validator {}: operator or consensus key registered twice",
                    v.operator
                ));
            }
        }
        if !(1..=256).contains(&self.uptime_window) {
            return Err("uptimeWindow must be 1..=256".into());
        }
        if self.epoch_length == 0 {
            return Err("epochLength must be positive".into());
        }
        let bps = [
            ("minUptimeBps", self.min_uptime_bps),
            ("jailedUnstakePenaltyBps", self.jailed_unstake_penalty_bps),
            ("downtimeSlashBps[0]", self.downtime_slash_bps[0]),
            ("downtimeSlashBps[1]", self.downtime_slash_bps[1]),
            ("downtimeSlashBps[2]", self.downtime_slash_bps[2]),
            ("doubleSignSlashBps", self.double_sign_slash_bps),
            ("reporterRewardBps", self.reporter_reward_bps),
            ("baseFeeBurnBps", self.base_fee_burn_bps),
        ];
        match bps.iter().find(|(_, v)| *v > 10_000) {
            Some((name, v)) => Err(format!("{name} is {v}, at most 10000")),
            None => Ok(()),
        }
    }
}

/// A validator registered at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenesisValidator {
    /// Operator address.
    pub operator: Address,
    /// ed25519 consensus public key.
    pub consensus_key: B256,
    /// Self-stake (wei).
    pub self_stake: U256,
    /// Commission, basis points.
    #[serde(default)]
    pub commission_bps: u16,
    /// Maximum commission, basis points.
    #[serde(default = "full_commission")]
    pub max_commission_bps: u16,
    /// Maximum daily commission change, basis points.
    #[serde(default = "full_commission")]
    pub max_change_bps: u16,
    /// Moniker.
    #[serde(default)]
    pub moniker: String,
    /// The consensus key's ed25519 signature over the proof-of-possession message for the
    /// operator and the chain id (`IStaking.popMessage`), as for `createValidator`.
    pub proof_of_possession: Bytes,
}

fn full_commission() -> u16 {
    10_000
}

/// The genesis accounts of the staking and delegation precompiles, for a chain whose genesis
/// block has `timestamp` (the start time of epoch 1).
pub fn genesis_accounts(
    params: &StakingGenesis,
    chain_id: u64,
    timestamp: u64,
) -> Result<BTreeMap<Address, GenesisAccount>, String> {
    let mut db = CacheDB::new(EmptyDB::default());
    let code = Bytecode::new_raw(Bytes::from_static(&PLACEHOLDER_CODE));
    for address in [STAKING_ADDRESS, DELEGATION_ADDRESS] {
        db.insert_account_info(
            address,
            AccountInfo::new(U256::ZERO, 1, code.hash_slow(), code.clone()),
        );
    }
    for (index, value) in [
        (slot::MIN_SELF_STAKE, params.min_self_stake),
        (slot::MIN_DELEGATION, params.min_delegation),
        (slot::MAX_VALIDATORS, U256::from(params.max_validators)),
        (slot::UNBONDING_PERIOD, U256::from(params.unbonding_period)),
        (slot::BLOCK_REWARD, params.block_reward),
        (slot::EPOCH_LENGTH, U256::from(params.epoch_length)),
        (slot::UPTIME_WINDOW, U256::from(params.uptime_window)),
        (slot::MIN_UPTIME_BPS, U256::from(params.min_uptime_bps)),
        (slot::JAIL_TIME, U256::from(params.jail_time)),
        (slot::UNJAIL_FEE, params.unjail_fee),
        (
            slot::JAILED_UNSTAKE_PENALTY_BPS,
            U256::from(params.jailed_unstake_penalty_bps),
        ),
        (
            slot::DOWNTIME_SLASH_BPS,
            U256::from(params.downtime_slash_bps[0]),
        ),
        (
            slot::DOWNTIME_SLASH_BPS + 1,
            U256::from(params.downtime_slash_bps[1]),
        ),
        (
            slot::DOWNTIME_SLASH_BPS + 2,
            U256::from(params.downtime_slash_bps[2]),
        ),
        (
            slot::DOUBLE_SIGN_SLASH_BPS,
            U256::from(params.double_sign_slash_bps),
        ),
        (
            slot::REPORTER_REWARD_BPS,
            U256::from(params.reporter_reward_bps),
        ),
        (slot::MAX_EVIDENCE_AGE, U256::from(params.max_evidence_age)),
        (
            slot::BASE_FEE_BURN_BPS,
            U256::from(params.base_fee_burn_bps),
        ),
        (slot::CHAIN_ID, U256::from(chain_id)),
    ] {
        db.insert_account_storage(STAKING_ADDRESS, U256::from(index), value)
            .map_err(|e| e.to_string())?;
    }
    for v in &params.validators {
        db.insert_account_info(
            v.operator,
            AccountInfo {
                balance: v.self_stake,
                ..Default::default()
            },
        );
    }
    let mut cfg = CfgEnv::new_with_spec(SpecId::PRAGUE);
    cfg.chain_id = chain_id;
    cfg.disable_nonce_check = true;
    let block = BlockEnv {
        gas_limit: 30_000_000,
        basefee: 0,
        timestamp: U256::from(timestamp),
        ..Default::default()
    };
    let mut map = PrecompilesMap::from_static(Precompiles::new(PrecompileSpecId::from_spec_id(
        SpecId::PRAGUE,
    )));
    crate::register(&mut map, crate::SystemCalls::Honoured);
    let mut evm = EthEvmBuilder::new(db, EvmEnv::new(cfg, block))
        .precompiles(map)
        .build();
    for v in &params.validators {
        let data = IStaking::createValidatorCall {
            consensusKey: v.consensus_key,
            commissionBps: v.commission_bps,
            maxCommissionBps: v.max_commission_bps,
            maxChangeBps: v.max_change_bps,
            description: IStaking::Description {
                moniker: v.moniker.clone(),
                website: String::new(),
                details: String::new(),
            },
            proofOfPossession: v.proof_of_possession.clone(),
        }
        .abi_encode();
        let tx = TxEnv::builder()
            .caller(v.operator)
            .kind(TxKind::Call(STAKING_ADDRESS))
            .value(v.self_stake)
            .data(data.into())
            .gas_limit(5_000_000)
            .gas_price(0)
            .chain_id(Some(chain_id))
            .build_fill();
        let result = evm
            .transact(tx)
            .map_err(|e| format!("genesis validator {}: {e:?}", v.operator))?;
        if !result.result.is_success() {
            return Err(format!(
                "genesis validator {} rejected: {:?}",
                v.operator, result.result
            ));
        }
        evm.db_mut().commit(result.state);
    }
    // Epoch 1 starts at genesis with the genesis validators as its set.
    let result = evm
        .transact_system_call(
            crate::SYSTEM_ADDRESS,
            STAKING_ADDRESS,
            IStaking::advanceEpochCall {}.abi_encode().into(),
        )
        .map_err(|e| format!("genesis epoch: {e:?}"))?;
    if !result.result.is_success() {
        return Err(format!("genesis epoch: {:?}", result.result));
    }
    evm.db_mut().commit(result.state);
    let (db, _) = evm.finish();
    let mut out = BTreeMap::new();
    for address in [STAKING_ADDRESS, DELEGATION_ADDRESS] {
        let account = &db.cache.accounts[&address];
        let storage: BTreeMap<B256, B256> = account
            .storage
            .iter()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| (B256::from(*k), B256::from(*v)))
            .collect();
        out.insert(
            address,
            GenesisAccount {
                balance: account.info.balance,
                nonce: Some(1),
                code: Some(Bytes::from_static(&PLACEHOLDER_CODE)),
                storage: (!storage.is_empty()).then_some(storage),
                private_key: None,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonsense_parameters_are_refused_with_their_name() {
        let dev_validator = GenesisValidator {
            operator: Address::repeat_byte(1),
            consensus_key: B256::repeat_byte(2),
            self_stake: StakingGenesis::default().min_self_stake,
            commission_bps: 1_000,
            max_commission_bps: 10_000,
            max_change_bps: 10_000,
            moniker: String::new(),
            proof_of_possession: Bytes::new(),
        };
        let good = StakingGenesis {
            validators: vec![dev_validator.clone()],
            ..Default::default()
        };
        assert_eq!(good.validate(), Ok(()));
        type Edit = fn(&mut StakingGenesis);
        let cases: [(Edit, &str); 9] = [
            (|g| g.max_validators = 0, "maxValidators must be positive"),
            (
                |g| g.min_self_stake = U256::ZERO,
                "minSelfStake must be positive",
            ),
            (
                |g| g.min_delegation = U256::ZERO,
                "minDelegation must be positive",
            ),
            (
                |g| g.unbonding_period = 0,
                "unbondingPeriod must be positive",
            ),
            (
                |g| g.max_evidence_age = 0,
                "maxEvidenceAge must be positive",
            ),
            (
                |g| g.max_evidence_age = g.unbonding_period + 1,
                "maxEvidenceAge 1814401 must be at most unbondingPeriod 1814400",
            ),
            (
                |g| g.validators[0].self_stake = U256::from(1),
                "below minSelfStake",
            ),
            (
                |g| g.validators[0].commission_bps = 10_001,
                "commissionBps 10001",
            ),
            (
                |g| g.validators.push(g.validators[0].clone()),
                "registered twice",
            ),
        ];
        for (edit, message) in cases {
            let mut g = good.clone();
            edit(&mut g);
            let err = g.validate().unwrap_err();
            assert!(err.contains(message), "{err} lacks {message}");
        }
    }
}
