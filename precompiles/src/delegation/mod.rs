//! Delegation: delegate, undelegate into unbonding, withdraw matured entries, claim rewards.
//! Delegated funds are escrowed in this precompile's account; self-stake and rewards in the
//! staking precompile's. Rewards accounting is shared with [`crate::staking`] (F1).

pub mod dispatch;

use crate::{
    DELEGATION_ADDRESS, STAKING_ADDRESS,
    ctx::{Ctx, Exit, word_address},
    interfaces::IDelegation,
    layout::{
        address_slot, array_slot, delegation, delegation_base, slot, status, unbonding, validator,
        validator_base,
    },
    staking::{bond, param, pending, settle, unbond},
};
use alloy::{
    primitives::{Address, U256},
    sol_types::SolEvent,
};

fn bonded_validator(c: &mut Ctx<'_>, operator: Address) -> Result<(), Exit> {
    let st = c.sload(validator_base(operator) + U256::from(validator::STATUS))?;
    if st != U256::from(status::BONDED) {
        return Err(IDelegation::NotValidator {
            validator: operator,
        }
        .into());
    }
    Ok(())
}

/// `delegate`.
pub(crate) fn delegate(c: &mut Ctx<'_>, operator: Address) -> Result<(), Exit> {
    bonded_validator(c, operator)?;
    let amount = c.value();
    let min = param(c, slot::MIN_DELEGATION)?;
    if amount < min || amount.is_zero() {
        return Err(IDelegation::DelegationTooLow {
            amount,
            minimum: min,
        }
        .into());
    }
    let delegator = c.caller();
    settle(c, delegator, operator)?;
    bond(c, delegator, operator, amount)?;
    c.emit(
        DELEGATION_ADDRESS,
        IDelegation::Delegated {
            delegator,
            validator: operator,
            amount,
        }
        .encode_log_data(),
    )
}

/// `undelegate`. An operator's self-stake is managed through `IStaking.unstake`, not here.
pub(crate) fn undelegate(c: &mut Ctx<'_>, operator: Address, amount: U256) -> Result<(), Exit> {
    let delegator = c.caller();
    if amount.is_zero() {
        return Err(IDelegation::ZeroAmount {}.into());
    }
    let stake = if delegator == operator {
        U256::ZERO
    } else {
        settle(c, delegator, operator)?
    };
    if amount > stake {
        return Err(IDelegation::InsufficientDelegation {
            requested: amount,
            available: stake,
        }
        .into());
    }
    let completion = unbond(c, delegator, operator, amount, DELEGATION_ADDRESS)?;
    c.emit(
        DELEGATION_ADDRESS,
        IDelegation::Undelegated {
            delegator,
            validator: operator,
            amount,
            completionTime: completion,
        }
        .encode_log_data(),
    )
}

fn entry(list: U256, index: u64, field: u64) -> U256 {
    array_slot(list, index, unbonding::SIZE) + U256::from(field)
}

/// `withdrawUnbonded`: pays out matured entries, keeping the others (order not preserved).
pub(crate) fn withdraw_unbonded(c: &mut Ctx<'_>) -> Result<U256, Exit> {
    let delegator = c.caller();
    let list = address_slot(delegator, U256::from(slot::UNBONDINGS));
    let mut len = c.sload(list)?.saturating_to::<u64>();
    let now = c.timestamp();
    let mut total = U256::ZERO;
    let mut i = 0;
    while i < len {
        let completion = c
            .sload(entry(list, i, unbonding::COMPLETION))?
            .saturating_to::<u64>();
        if completion > now {
            i += 1;
            continue;
        }
        let amount = c.sload(entry(list, i, unbonding::AMOUNT))?;
        let escrow = word_address(c.sload(entry(list, i, unbonding::ESCROW))?);
        c.transfer(escrow, delegator, amount)?;
        total += amount;
        // Move the last entry into this place.
        len -= 1;
        for field in 0..unbonding::SIZE {
            let last = c.sload(entry(list, len, field))?;
            c.sstore(entry(list, i, field), last)?;
            c.sstore(entry(list, len, field), U256::ZERO)?;
        }
    }
    if total.is_zero() {
        return Err(IDelegation::NothingToWithdraw {}.into());
    }
    c.sstore(list, U256::from(len))?;
    c.sub(U256::from(slot::TOTAL_UNBONDING), total)?;
    c.emit(
        DELEGATION_ADDRESS,
        IDelegation::Withdrawn {
            delegator,
            amount: total,
        }
        .encode_log_data(),
    )?;
    Ok(total)
}

/// `claimRewards`: settled rewards, plus the commission when the caller operates `operator`.
pub(crate) fn claim_rewards(c: &mut Ctx<'_>, operator: Address) -> Result<U256, Exit> {
    let delegator = c.caller();
    settle(c, delegator, operator)?;
    let d = delegation_base(delegator, operator) + U256::from(delegation::UNCLAIMED);
    let mut amount = c.sload(d)?;
    c.sstore(d, U256::ZERO)?;
    if delegator == operator {
        let commission = validator_base(operator) + U256::from(validator::COMMISSION_UNCLAIMED);
        amount += c.sload(commission)?;
        c.sstore(commission, U256::ZERO)?;
    }
    if amount.is_zero() {
        return Err(IDelegation::NothingToWithdraw {}.into());
    }
    c.transfer(STAKING_ADDRESS, delegator, amount)?;
    c.emit(
        DELEGATION_ADDRESS,
        IDelegation::RewardsClaimed {
            delegator,
            validator: operator,
            amount,
        }
        .encode_log_data(),
    )?;
    Ok(amount)
}

/// `delegation`.
pub(crate) fn delegation_of(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
) -> Result<U256, Exit> {
    c.sload(delegation_base(delegator, operator) + U256::from(delegation::STAKE))
}

/// `pendingRewards`.
pub(crate) fn pending_rewards(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
) -> Result<U256, Exit> {
    pending(c, delegator, operator)
}

/// `delegationsOf`.
pub(crate) fn delegations_of(
    c: &mut Ctx<'_>,
    delegator: Address,
) -> Result<(Vec<Address>, Vec<U256>), Exit> {
    let list = address_slot(delegator, U256::from(slot::DELEGATED_TO));
    let len = c.sload(list)?.saturating_to::<u64>();
    let (mut validators, mut amounts) = (Vec::new(), Vec::new());
    for i in 0..len {
        let operator = word_address(c.sload(array_slot(list, i, 1))?);
        validators.push(operator);
        amounts.push(delegation_of(c, delegator, operator)?);
    }
    Ok((validators, amounts))
}

/// `unbondingOf`.
pub(crate) fn unbonding_of(
    c: &mut Ctx<'_>,
    delegator: Address,
) -> Result<Vec<IDelegation::Unbonding>, Exit> {
    let list = address_slot(delegator, U256::from(slot::UNBONDINGS));
    let len = c.sload(list)?.saturating_to::<u64>();
    (0..len)
        .map(|i| {
            Ok(IDelegation::Unbonding {
                validator: word_address(c.sload(entry(list, i, unbonding::VALIDATOR))?),
                amount: c.sload(entry(list, i, unbonding::AMOUNT))?,
                completionTime: c
                    .sload(entry(list, i, unbonding::COMPLETION))?
                    .saturating_to(),
                creationHeight: c.sload(entry(list, i, unbonding::HEIGHT))?.saturating_to(),
            })
        })
        .collect()
}
