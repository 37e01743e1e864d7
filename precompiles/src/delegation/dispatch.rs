//! ABI dispatch of the delegation precompile.

use crate::{
    SystemCalls,
    ctx::{Ctx, Exit},
    interfaces::IDelegation::{self, IDelegationCalls as Call},
    staking::dispatch::decode,
};
use alloy::{primitives::Bytes, sol_types::SolCall};
use alloy_evm::precompiles::PrecompileInput;
use revm::precompile::PrecompileResult;

/// Entry point of the delegation precompile.
pub fn call(input: PrecompileInput<'_>, system_calls: SystemCalls) -> PrecompileResult {
    let mut c = Ctx::new(input, system_calls);
    let result = run(&mut c);
    c.finish(result)
}

fn run(c: &mut Ctx<'_>) -> Result<Bytes, Exit> {
    let call: Call = decode(
        c,
        |call| matches!(call, Call::delegate(_)),
        |call| {
            matches!(
                call,
                Call::delegation(_)
                    | Call::delegationShares(_)
                    | Call::pendingRewards(_)
                    | Call::delegationsOf(_)
                    | Call::unbondingOf(_)
                    | Call::redelegationsOf(_)
            )
        },
        |selector| IDelegation::UnknownSelector { selector }.into(),
        IDelegation::StaticCallNotAllowed {}.into(),
        IDelegation::DelegateCallNotAllowed {}.into(),
        IDelegation::NonPayable {}.into(),
    )?;
    let out = match call {
        Call::delegate(x) => {
            super::delegate(c, x.validator)?;
            Vec::new()
        }
        Call::undelegate(x) => {
            super::undelegate(c, x.validator, x.amount)?;
            Vec::new()
        }
        Call::redelegate(x) => {
            super::redelegate(c, x.srcValidator, x.dstValidator, x.amount)?;
            Vec::new()
        }
        Call::cancelUnbonding(x) => {
            super::cancel_unbonding(c, x.validator, x.amount, x.creationHeight)?;
            Vec::new()
        }
        Call::claimAllRewards(x) => IDelegation::claimAllRewardsCall::abi_encode_returns(
            &super::claim_all_rewards(c, x.maxValidators)?,
        ),
        Call::withdrawUnbonded(_) => {
            IDelegation::withdrawUnbondedCall::abi_encode_returns(&super::withdraw_unbonded(c)?)
        }
        Call::claimRewards(x) => IDelegation::claimRewardsCall::abi_encode_returns(
            &super::claim_rewards(c, x.validator)?,
        ),
        Call::delegation(x) => IDelegation::delegationCall::abi_encode_returns(
            &super::delegation_of(c, x.delegator, x.validator)?,
        ),
        Call::delegationShares(x) => IDelegation::delegationSharesCall::abi_encode_returns(
            &super::delegation_shares(c, x.delegator, x.validator)?,
        ),
        Call::pendingRewards(x) => IDelegation::pendingRewardsCall::abi_encode_returns(
            &super::pending_rewards(c, x.delegator, x.validator)?,
        ),
        Call::delegationsOf(x) => {
            let (validators, amounts) = super::delegations_of(c, x.delegator)?;
            IDelegation::delegationsOfCall::abi_encode_returns(&IDelegation::delegationsOfReturn {
                validators,
                amounts,
            })
        }
        Call::redelegationsOf(x) => IDelegation::redelegationsOfCall::abi_encode_returns(
            &super::redelegations_of(c, x.delegator)?,
        ),
        Call::unbondingOf(x) => {
            IDelegation::unbondingOfCall::abi_encode_returns(&super::unbonding_of(c, x.delegator)?)
        }
    };
    Ok(out.into())
}
