//! Delegation: delegate, undelegate into unbonding, withdraw matured entries, claim rewards.
//! All bonded and unbonding funds (self-stake included) are escrowed in this precompile's account;
//! the reward pool in the staking precompile's. Shares and rewards accounting are shared with
//! [`crate::staking`] (shares, F1).

pub mod dispatch;

use crate::{
    DELEGATION_ADDRESS, STAKING_ADDRESS,
    ctx::{Checked, Ctx, Exit, address_word, word_address},
    interfaces::IDelegation,
    layout::{
        MAX_ENTRIES_PER_DELEGATOR, address_slot, array_slot, delegation, delegation_base,
        redelegation, slot, status, unbonding, validator, validator_base,
    },
    staking::{
        bond, completion_time, count_entry, delegation_tokens, entry_counter, list_for_slashing,
        not_tombstoned, param, pending, settle, slashing, take_shares, unbond, update_status,
    },
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
    slashing::not_in_progress(c, operator)?;
    slashing::redelegated_stake_free(c, delegator, operator)?;
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
    let completion = unbond(c, delegator, operator, amount, U256::ZERO)?;
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

fn redelegation_entry(list: U256, index: u64, field: u64) -> U256 {
    array_slot(list, index, redelegation::SIZE) + U256::from(field)
}

/// Forgets one entry of `delegator` at `operator` in the counters at `counters`.
fn uncount_entry(
    c: &mut Ctx<'_>,
    counters: u64,
    delegator: Address,
    operator: Address,
) -> Result<(), Exit> {
    let counter = entry_counter(counters, delegator, operator);
    let held = c.sload(counter)?;
    c.sstore(counter, held.minus(U256::from(1))?)
}

/// Removes entry `i` of `len` (of `size` slots each) by moving the last entry into its place;
/// returns the new length (the caller stores it).
fn remove_entry(c: &mut Ctx<'_>, list: U256, size: u64, i: u64, len: u64) -> Result<u64, Exit> {
    let last = len - 1;
    for field in 0..size {
        let moved = c.sload(array_slot(list, last, size) + U256::from(field))?;
        c.sstore(array_slot(list, i, size) + U256::from(field), moved)?;
        c.sstore(array_slot(list, last, size) + U256::from(field), U256::ZERO)?;
    }
    Ok(last)
}

/// `withdrawUnbonded`: pays out matured entries, keeping the others (order not preserved).
pub(crate) fn withdraw_unbonded(c: &mut Ctx<'_>) -> Result<U256, Exit> {
    let delegator = c.caller();
    let list = address_slot(delegator, U256::from(slot::UNBONDINGS));
    let mut len = c
        .sload(list)?
        .saturating_to::<u64>()
        .min(MAX_ENTRIES_PER_DELEGATOR);
    let now = c.timestamp();
    // Entries a slash in progress may still cut wait for it to finish.
    let slashing = slashing::any_in_progress(c)?;
    let mut total = U256::ZERO;
    let mut matured = 0;
    let mut i = 0;
    while i < len {
        let completion = c
            .sload(entry(list, i, unbonding::COMPLETION))?
            .saturating_to::<u64>();
        let frozen = slashing && {
            let validator = word_address(c.sload(entry(list, i, unbonding::VALIDATOR))?);
            slashing::in_progress(c, validator)?
        };
        if completion > now || frozen {
            i += 1;
            continue;
        }
        // A slashed entry may have nothing left; it is removed all the same.
        let amount = c.sload(entry(list, i, unbonding::AMOUNT))?;
        let operator = word_address(c.sload(entry(list, i, unbonding::VALIDATOR))?);
        uncount_entry(c, slot::UNBONDING_ENTRIES, delegator, operator)?;
        total = total.plus(amount)?;
        matured += 1;
        len = remove_entry(c, list, unbonding::SIZE, i, len)?;
    }
    if matured == 0 {
        return Err(IDelegation::NothingToWithdraw {}.into());
    }
    if !total.is_zero() {
        c.transfer(DELEGATION_ADDRESS, delegator, total)?;
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

/// Settles and zeroes the caller's rewards at `operator` (and the commission if it is the
/// caller's own validator); returns the amount to pay.
fn take_rewards(c: &mut Ctx<'_>, delegator: Address, operator: Address) -> Result<U256, Exit> {
    settle(c, delegator, operator)?;
    let d = delegation_base(delegator, operator) + U256::from(delegation::UNCLAIMED);
    let mut amount = c.sload(d)?;
    if !amount.is_zero() {
        c.sstore(d, U256::ZERO)?;
    }
    if delegator == operator {
        let commission = validator_base(operator) + U256::from(validator::COMMISSION_UNCLAIMED);
        let owed = c.sload(commission)?;
        if !owed.is_zero() {
            amount = amount.plus(owed)?;
            c.sstore(commission, U256::ZERO)?;
        }
    }
    if !amount.is_zero() {
        c.emit(
            DELEGATION_ADDRESS,
            IDelegation::RewardsClaimed {
                delegator,
                validator: operator,
                amount,
            }
            .encode_log_data(),
        )?;
    }
    Ok(amount)
}

/// Pays `amount` of rewards from the pool.
fn pay_rewards(c: &mut Ctx<'_>, delegator: Address, amount: U256) -> Result<U256, Exit> {
    if amount.is_zero() {
        return Err(IDelegation::NothingToWithdraw {}.into());
    }
    c.transfer(STAKING_ADDRESS, delegator, amount)?;
    Ok(amount)
}

/// `claimRewards`.
pub(crate) fn claim_rewards(c: &mut Ctx<'_>, operator: Address) -> Result<U256, Exit> {
    let delegator = c.caller();
    let amount = take_rewards(c, delegator, operator)?;
    pay_rewards(c, delegator, amount)
}

/// `claimAllRewards`: over the first `max` validators the caller delegated to.
pub(crate) fn claim_all_rewards(c: &mut Ctx<'_>, max: U256) -> Result<U256, Exit> {
    let delegator = c.caller();
    let list = address_slot(delegator, U256::from(slot::DELEGATED_TO));
    let len = c.sload(list)?.min(max).saturating_to::<u64>();
    let mut total = U256::ZERO;
    for i in 0..len {
        let operator = word_address(c.sload(array_slot(list, i, 1))?);
        total = total.plus(take_rewards(c, delegator, operator)?)?;
    }
    pay_rewards(c, delegator, total)
}

/// `redelegate`: moves stake between validators at once (no unbonding period).
pub(crate) fn redelegate(
    c: &mut Ctx<'_>,
    src: Address,
    dst: Address,
    amount: U256,
) -> Result<(), Exit> {
    let delegator = c.caller();
    if src == dst || delegator == src {
        return Err(IDelegation::InvalidRedelegation {
            srcValidator: src,
            dstValidator: dst,
        }
        .into());
    }
    bonded_validator(c, dst)?;
    if amount.is_zero() {
        return Err(IDelegation::ZeroAmount {}.into());
    }
    slashing::not_in_progress(c, src)?;
    slashing::redelegated_stake_free(c, delegator, src)?;
    let stake = settle(c, delegator, src)?;
    if amount > stake {
        return Err(IDelegation::InsufficientDelegation {
            requested: amount,
            available: stake,
        }
        .into());
    }
    let list = address_slot(delegator, U256::from(slot::REDELEGATIONS));
    let len = prune_redelegations(c, delegator, list)?;
    for i in 0..len {
        if word_address(c.sload(redelegation_entry(list, i, redelegation::DST))?) == src {
            return Err(IDelegation::TransitiveRedelegation { validator: src }.into());
        }
    }
    count_entry(c, slot::REDELEGATION_ENTRIES, delegator, src, len)?;
    take_shares(c, delegator, src, amount)?;
    settle(c, delegator, dst)?;
    let shares = bond(c, delegator, dst, amount)?;
    if delegator == dst {
        // An operator moving stake into its own validator raises its self-stake.
        update_status(c, dst)?;
    }
    let completion = completion_time(c)?;
    for (field, value) in [
        (redelegation::SRC, address_word(src)),
        (redelegation::DST, address_word(dst)),
        (redelegation::DST_SHARES, shares),
        (redelegation::INITIAL, amount),
        (redelegation::HEIGHT, U256::from(c.block_number())),
        (redelegation::COMPLETION, U256::from(completion)),
    ] {
        c.sstore(redelegation_entry(list, len, field), value)?;
    }
    c.sstore(list, U256::from(len + 1))?;
    list_for_slashing(c, delegator, src)?;
    c.emit(
        DELEGATION_ADDRESS,
        IDelegation::Redelegated {
            delegator,
            srcValidator: src,
            dstValidator: dst,
            amount,
        }
        .encode_log_data(),
    )
}

/// Drops the completed entries of a delegator's redelegation list (order not preserved); returns
/// the new length.
fn prune_redelegations(c: &mut Ctx<'_>, delegator: Address, list: U256) -> Result<u64, Exit> {
    let mut len = c
        .sload(list)?
        .saturating_to::<u64>()
        .min(MAX_ENTRIES_PER_DELEGATOR);
    let now = U256::from(c.timestamp());
    let mut i = 0;
    let before = len;
    while i < len {
        if c.sload(redelegation_entry(list, i, redelegation::COMPLETION))? > now {
            i += 1;
        } else {
            let src = word_address(c.sload(redelegation_entry(list, i, redelegation::SRC))?);
            uncount_entry(c, slot::REDELEGATION_ENTRIES, delegator, src)?;
            len = remove_entry(c, list, redelegation::SIZE, i, len)?;
        }
    }
    if len != before {
        c.sstore(list, U256::from(len))?;
    }
    Ok(len)
}

/// `redelegationsOf`: the entries not yet completed.
pub(crate) fn redelegations_of(
    c: &mut Ctx<'_>,
    delegator: Address,
) -> Result<Vec<IDelegation::Redelegation>, Exit> {
    let list = address_slot(delegator, U256::from(slot::REDELEGATIONS));
    let len = c.sload(list)?.saturating_to::<u64>();
    let now = c.timestamp();
    let mut out = Vec::new();
    for i in 0..len {
        let field = |c: &mut Ctx<'_>, f| c.sload(redelegation_entry(list, i, f));
        let completion = field(c, redelegation::COMPLETION)?.saturating_to::<u64>();
        if completion <= now {
            continue;
        }
        out.push(IDelegation::Redelegation {
            srcValidator: word_address(field(c, redelegation::SRC)?),
            dstValidator: word_address(field(c, redelegation::DST)?),
            dstShares: field(c, redelegation::DST_SHARES)?,
            initialAmount: field(c, redelegation::INITIAL)?,
            creationHeight: field(c, redelegation::HEIGHT)?.saturating_to(),
            completionTime: completion,
        });
    }
    Ok(out)
}

/// `cancelUnbonding`: bonds part or all of a not yet matured entry again.
pub(crate) fn cancel_unbonding(
    c: &mut Ctx<'_>,
    operator: Address,
    amount: U256,
    height: u64,
) -> Result<(), Exit> {
    let delegator = c.caller();
    if amount.is_zero() {
        return Err(IDelegation::ZeroAmount {}.into());
    }
    slashing::not_in_progress(c, operator)?;
    let list = address_slot(delegator, U256::from(slot::UNBONDINGS));
    let len = c
        .sload(list)?
        .saturating_to::<u64>()
        .min(MAX_ENTRIES_PER_DELEGATOR);
    let now = c.timestamp();
    for i in 0..len {
        let matches = word_address(c.sload(entry(list, i, unbonding::VALIDATOR))?) == operator
            && c.sload(entry(list, i, unbonding::HEIGHT))? == U256::from(height)
            && c.sload(entry(list, i, unbonding::COMPLETION))? > U256::from(now);
        let held = c.sload(entry(list, i, unbonding::AMOUNT))?;
        if !matches || held < amount {
            continue;
        }
        // Self-stake goes back to a jailed validator too, but never to a tombstoned one.
        if delegator == operator {
            not_tombstoned(c, operator)?;
        } else {
            bonded_validator(c, operator)?;
        }
        if held == amount {
            let new_len = remove_entry(c, list, unbonding::SIZE, i, len)?;
            c.sstore(list, U256::from(new_len))?;
            uncount_entry(c, slot::UNBONDING_ENTRIES, delegator, operator)?;
        } else {
            c.sstore(entry(list, i, unbonding::AMOUNT), held.minus(amount)?)?;
            let initial = c.sload(entry(list, i, unbonding::INITIAL))?;
            c.sstore(
                entry(list, i, unbonding::INITIAL),
                initial.saturating_sub(amount),
            )?;
        }
        c.sub(U256::from(slot::TOTAL_UNBONDING), amount)?;
        settle(c, delegator, operator)?;
        bond(c, delegator, operator, amount)?;
        if delegator == operator {
            update_status(c, operator)?;
        }
        return c.emit(
            DELEGATION_ADDRESS,
            IDelegation::UnbondingCancelled {
                delegator,
                validator: operator,
                amount,
                creationHeight: height,
            }
            .encode_log_data(),
        );
    }
    Err(IDelegation::UnbondingNotFound {
        validator: operator,
        amount,
        creationHeight: height,
    }
    .into())
}

/// `delegation`.
pub(crate) fn delegation_of(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
) -> Result<U256, Exit> {
    delegation_tokens(c, delegator, operator)
}

/// `delegationShares`.
pub(crate) fn delegation_shares(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
) -> Result<U256, Exit> {
    c.sload(delegation_base(delegator, operator) + U256::from(delegation::SHARES))
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
                initialAmount: c.sload(entry(list, i, unbonding::INITIAL))?,
                completionTime: c
                    .sload(entry(list, i, unbonding::COMPLETION))?
                    .saturating_to(),
                creationHeight: c.sload(entry(list, i, unbonding::HEIGHT))?.saturating_to(),
            })
        })
        .collect()
}
