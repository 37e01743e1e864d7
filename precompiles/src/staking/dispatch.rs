//! ABI dispatch of the staking precompile.

use crate::{
    SystemCalls,
    ctx::{CALL_BASE, Ctx, Exit},
    interfaces::IStaking::{self, IStakingCalls as Call},
    layout::{self, slot},
};
use alloy::{
    primitives::{Bytes, FixedBytes, U256},
    sol_types::{SolCall, SolInterface},
};
use alloy_evm::precompiles::PrecompileInput;
use revm::precompile::PrecompileResult;

/// Entry point of the staking precompile.
pub fn call(input: PrecompileInput<'_>, system_calls: SystemCalls) -> PrecompileResult {
    let mut c = Ctx::new(input, system_calls);
    let result = run(&mut c);
    c.finish(result)
}

/// Decodes a call, applying the checks every method shares: no DELEGATECALL/CALLCODE, no
/// state change in a static call, no value to a non-payable method.
pub(crate) fn decode<C: SolInterface>(
    c: &mut Ctx<'_>,
    payable: fn(&C) -> bool,
    views: fn(&C) -> bool,
    unknown: fn(FixedBytes<4>) -> Exit,
    static_err: Exit,
    delegate_err: Exit,
    non_payable: Exit,
) -> Result<C, Exit> {
    c.charge(CALL_BASE)?;
    if !c.input.is_direct_call() {
        return Err(delegate_err);
    }
    let data = c.input.data;
    let selector = FixedBytes::<4>::from_slice(&[data, &[0u8; 4]].concat()[..4]);
    let call = match C::abi_decode(data) {
        Ok(call) => call,
        Err(_) if C::valid_selector(selector.0) => return Err(Exit::Revert(Bytes::new())),
        Err(_) => return Err(unknown(selector)),
    };
    if c.input.is_static && !views(&call) {
        return Err(static_err);
    }
    if !payable(&call) && !c.value().is_zero() {
        return Err(non_payable);
    }
    Ok(call)
}

fn run(c: &mut Ctx<'_>) -> Result<Bytes, Exit> {
    let call: Call = decode(
        c,
        |call| {
            matches!(
                call,
                Call::createValidator(_) | Call::addStake(_) | Call::unjail(_)
            )
        },
        |call| {
            matches!(
                call,
                Call::validator(_)
                    | Call::validators(_)
                    | Call::activeSet(_)
                    | Call::totalStake(_)
                    | Call::params(_)
                    | Call::currentEpoch(_)
                    | Call::rewardHistory(_)
                    | Call::voteMessage(_)
                    | Call::popMessage(_)
                    | Call::totalUnbonding(_)
                    | Call::totalBurned(_)
            )
        },
        |selector| IStaking::UnknownSelector { selector }.into(),
        IStaking::StaticCallNotAllowed {}.into(),
        IStaking::DelegateCallNotAllowed {}.into(),
        IStaking::NonPayable {}.into(),
    )?;
    let out = match call {
        Call::createValidator(x) => {
            super::create_validator(c, x)?;
            Vec::new()
        }
        Call::editValidator(x) => {
            super::edit_validator(c, x)?;
            Vec::new()
        }
        Call::addStake(_) => {
            super::add_stake(c)?;
            Vec::new()
        }
        Call::unstake(x) => {
            super::unstake(c, x.amount)?;
            Vec::new()
        }
        Call::distributeRewards(x) => {
            super::distribute_rewards(c, x.proposer, x.amount)?;
            Vec::new()
        }
        Call::unjail(_) => {
            super::unjail(c)?;
            Vec::new()
        }
        Call::recordSigners(x) => {
            super::record_signers(c, &x.signers)?;
            Vec::new()
        }
        Call::advanceEpoch(_) => {
            super::advance_epoch(c)?;
            Vec::new()
        }
        Call::submitDoubleSignEvidence(x) => {
            super::evidence::submit(c, x)?;
            Vec::new()
        }
        Call::voteMessage(x) => {
            let chain_id = c.sload(U256::from(slot::CHAIN_ID))?.saturating_to();
            IStaking::voteMessageCall::abi_encode_returns(&Bytes::from(
                super::evidence::vote_message(chain_id, x.height, x.round, x.blockHash),
            ))
        }
        Call::popMessage(x) => {
            let chain_id = c.sload(U256::from(slot::CHAIN_ID))?.saturating_to();
            IStaking::popMessageCall::abi_encode_returns(&Bytes::from(
                super::evidence::pop_message(chain_id, x.operator),
            ))
        }
        Call::currentEpoch(_) => IStaking::currentEpochCall::abi_encode_returns(
            &c.sload(U256::from(slot::CURRENT_EPOCH))?,
        ),
        Call::rewardHistory(x) => IStaking::rewardHistoryCall::abi_encode_returns(
            &super::reward_history(c, x.operator, x.epoch)?,
        ),
        Call::validator(x) => {
            IStaking::validatorCall::abi_encode_returns(&super::validator_info(c, x.operator)?)
        }
        Call::validators(x) => IStaking::validatorsCall::abi_encode_returns(&super::validators(
            c, x.status, x.offset, x.limit,
        )?),
        Call::activeSet(_) => {
            let set: Vec<_> = layout::epoch_set(c)?.into_iter().map(|(a, _)| a).collect();
            IStaking::activeSetCall::abi_encode_returns(&set)
        }
        Call::totalStake(_) => {
            IStaking::totalStakeCall::abi_encode_returns(&c.sload(U256::from(slot::TOTAL_BONDED))?)
        }
        Call::totalUnbonding(_) => IStaking::totalUnbondingCall::abi_encode_returns(
            &c.sload(U256::from(slot::TOTAL_UNBONDING))?,
        ),
        Call::totalBurned(_) => {
            IStaking::totalBurnedCall::abi_encode_returns(&c.sload(U256::from(slot::TOTAL_BURNED))?)
        }
        Call::params(_) => IStaking::paramsCall::abi_encode_returns(&super::params(c)?),
    };
    Ok(out.into())
}
