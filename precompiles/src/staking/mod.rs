//! Staking: validators, self-stake, the active set, and reward distribution (F1).
//!
//! A validator's self-stake is its operator's delegation to itself, so rewards reach self-stake
//! and delegations through the same index. Distributing `amount` to a validator: commission
//! `floor(amount * commissionBps / 10000)` goes to the operator; the rest raises the validator's
//! index by `floor((rest * 1e36 + remainder) / totalStake)`, carrying the new remainder. A
//! delegation settles `floor(stake * (index - snapshot) / 1e36)` before any change to it: O(1)
//! per block and per claim, no loop over delegators; flooring never pays out more than came in.

pub mod dispatch;

use crate::{
    STAKING_ADDRESS, SYSTEM_ADDRESS,
    ctx::{Ctx, Exit, address_word, word_address},
    interfaces::IStaking,
    layout::{
        self, MAX_DESCRIPTION_LEN, address_slot, array_slot, delegation, delegation_base,
        reward_scale, slot, status, unbonding, validator, validator_base,
    },
};
use alloy::{
    primitives::{Address, B256, U256},
    sol_types::SolEvent,
};

const BPS: u64 = 10_000;
const DAY: u64 = 86_400;

fn at(base: U256, field: u64) -> U256 {
    base + U256::from(field)
}

/// Reads a scalar parameter.
pub(crate) fn param(c: &mut Ctx<'_>, index: u64) -> Result<U256, Exit> {
    c.sload(U256::from(index))
}

/// Fails unless `operator` has a validator; returns its base slot.
pub(crate) fn existing_validator(c: &mut Ctx<'_>, operator: Address) -> Result<U256, Exit> {
    let base = validator_base(operator);
    if c.sload(at(base, validator::STATUS))?.is_zero() {
        return Err(IStaking::NotValidator { operator }.into());
    }
    Ok(base)
}

/// Settles a delegation's rewards up to the validator's current index; returns its stake.
pub(crate) fn settle(c: &mut Ctx<'_>, delegator: Address, operator: Address) -> Result<U256, Exit> {
    let d = delegation_base(delegator, operator);
    let stake = c.sload(at(d, delegation::STAKE))?;
    let snapshot = c.sload(at(d, delegation::SNAPSHOT))?;
    let index = c.sload(at(validator_base(operator), validator::INDEX))?;
    if index != snapshot {
        let earned = stake * (index - snapshot) / reward_scale();
        if !earned.is_zero() {
            c.add(at(d, delegation::UNCLAIMED), earned)?;
        }
        c.sstore(at(d, delegation::SNAPSHOT), index)?;
    }
    Ok(stake)
}

/// Rewards a delegation could claim now (settled + unsettled), without writing.
pub(crate) fn pending(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
) -> Result<U256, Exit> {
    let d = delegation_base(delegator, operator);
    let v = validator_base(operator);
    let stake = c.sload(at(d, delegation::STAKE))?;
    let snapshot = c.sload(at(d, delegation::SNAPSHOT))?;
    let index = c.sload(at(v, validator::INDEX))?;
    let mut total =
        c.sload(at(d, delegation::UNCLAIMED))? + stake * (index - snapshot) / reward_scale();
    if delegator == operator {
        total += c.sload(at(v, validator::COMMISSION_UNCLAIMED))?;
    }
    Ok(total)
}

/// Adds `amount` to a (settled) delegation and the totals.
pub(crate) fn bond(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
    amount: U256,
) -> Result<(), Exit> {
    let d = delegation_base(delegator, operator);
    c.add(at(d, delegation::STAKE), amount)?;
    if c.sload(at(d, delegation::LISTED))?.is_zero() {
        c.sstore(at(d, delegation::LISTED), U256::from(1))?;
        let list = address_slot(delegator, U256::from(slot::DELEGATED_TO));
        c.push_address(list, operator)?;
    }
    c.add(at(validator_base(operator), validator::TOTAL_STAKE), amount)?;
    c.add(U256::from(slot::TOTAL_BONDED), amount)
}

/// Removes `amount` from a (settled) delegation into an unbonding entry whose funds stay in
/// `escrow`, burning `penalty` of it; returns the completion time.
pub(crate) fn unbond(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
    amount: U256,
    penalty: U256,
    escrow: Address,
) -> Result<u64, Exit> {
    let d = delegation_base(delegator, operator);
    c.sub(at(d, delegation::STAKE), amount)?;
    c.sub(at(validator_base(operator), validator::TOTAL_STAKE), amount)?;
    c.sub(U256::from(slot::TOTAL_BONDED), amount)?;
    if !penalty.is_zero() {
        c.burn(escrow, penalty)?;
    }
    let amount = amount - penalty;
    c.add(U256::from(slot::TOTAL_UNBONDING), amount)?;
    let completion = c.timestamp() + param(c, slot::UNBONDING_PERIOD)?.saturating_to::<u64>();
    let list = address_slot(delegator, U256::from(slot::UNBONDINGS));
    let len = c.sload(list)?.saturating_to::<u64>();
    let entry = |field| array_slot(list, len, unbonding::SIZE) + U256::from(field);
    c.sstore(entry(unbonding::VALIDATOR), address_word(operator))?;
    c.sstore(entry(unbonding::AMOUNT), amount)?;
    c.sstore(entry(unbonding::COMPLETION), U256::from(completion))?;
    c.sstore(entry(unbonding::HEIGHT), U256::from(c.block_number()))?;
    c.sstore(entry(unbonding::ESCROW), address_word(escrow))?;
    c.sstore(list, U256::from(len + 1))?;
    Ok(completion)
}

fn check_description(d: &IStaking::Description) -> Result<(), Exit> {
    for field in [&d.moniker, &d.website, &d.details] {
        if field.len() > MAX_DESCRIPTION_LEN {
            return Err(IStaking::DescriptionTooLong {
                length: U256::from(field.len()),
                max: U256::from(MAX_DESCRIPTION_LEN),
            }
            .into());
        }
    }
    Ok(())
}

fn store_description(c: &mut Ctx<'_>, base: U256, d: &IStaking::Description) -> Result<(), Exit> {
    c.store_bytes(at(base, validator::MONIKER), d.moniker.as_bytes())?;
    c.store_bytes(at(base, validator::WEBSITE), d.website.as_bytes())?;
    c.store_bytes(at(base, validator::DETAILS), d.details.as_bytes())
}

/// Re-evaluates whether the validator's self-stake keeps it a bonded candidate.
pub(crate) fn update_status(c: &mut Ctx<'_>, base: U256) -> Result<(), Exit> {
    if c.sload(at(base, validator::STATUS))? == U256::from(status::JAILED) {
        // Only `unjail` leaves jail.
        return Ok(());
    }
    let self_stake = c.sload(at(base, validator::SELF_STAKE))?;
    let min = param(c, slot::MIN_SELF_STAKE)?;
    let new = if self_stake >= min && !self_stake.is_zero() {
        status::BONDED
    } else {
        status::INACTIVE
    };
    c.sstore(at(base, validator::STATUS), U256::from(new))
}

/// `createValidator`.
pub(crate) fn create_validator(
    c: &mut Ctx<'_>,
    call: IStaking::createValidatorCall,
) -> Result<(), Exit> {
    let operator = c.caller();
    let base = validator_base(operator);
    if !c.sload(at(base, validator::STATUS))?.is_zero() {
        return Err(IStaking::ValidatorExists { operator }.into());
    }
    let key_slot = layout::mapping_slot(call.consensusKey, U256::from(slot::KEY_OWNER));
    if call.consensusKey == B256::ZERO || !c.sload(key_slot)?.is_zero() {
        return Err(IStaking::InvalidConsensusKey {
            key: call.consensusKey,
        }
        .into());
    }
    let (rate, max, change) = (call.commissionBps, call.maxCommissionBps, call.maxChangeBps);
    if max as u64 > BPS || rate > max || change > max {
        return Err(IStaking::InvalidCommission {
            rate,
            maxRate: max,
            maxChange: change,
        }
        .into());
    }
    check_description(&call.description)?;
    let min = param(c, slot::MIN_SELF_STAKE)?;
    let stake = c.value();
    if stake < min || stake.is_zero() {
        return Err(IStaking::SelfStakeTooLow {
            amount: stake,
            minimum: min,
        }
        .into());
    }
    c.sstore(key_slot, address_word(operator))?;
    c.sstore(
        at(base, validator::KEY),
        U256::from_be_bytes(call.consensusKey.0),
    )?;
    c.sstore(at(base, validator::COMMISSION), U256::from(rate))?;
    c.sstore(at(base, validator::MAX_COMMISSION), U256::from(max))?;
    c.sstore(at(base, validator::MAX_CHANGE), U256::from(change))?;
    c.sstore(
        at(base, validator::COMMISSION_AT),
        U256::from(c.timestamp()),
    )?;
    c.sstore(at(base, validator::SELF_STAKE), stake)?;
    c.sstore(at(base, validator::STATUS), U256::from(status::BONDED))?;
    store_description(c, base, &call.description)?;
    c.push_address(U256::from(slot::VALIDATOR_LIST), operator)?;
    bond(c, operator, operator, stake)?;
    c.emit(
        STAKING_ADDRESS,
        IStaking::ValidatorCreated {
            operator,
            consensusKey: call.consensusKey,
            selfStake: stake,
            commissionBps: rate,
        }
        .encode_log_data(),
    )
}

/// `editValidator`.
pub(crate) fn edit_validator(
    c: &mut Ctx<'_>,
    call: IStaking::editValidatorCall,
) -> Result<(), Exit> {
    let operator = c.caller();
    let base = existing_validator(c, operator)?;
    check_description(&call.description)?;
    let current = c
        .sload(at(base, validator::COMMISSION))?
        .saturating_to::<u16>();
    if call.commissionBps != current {
        let max = c
            .sload(at(base, validator::MAX_COMMISSION))?
            .saturating_to::<u16>();
        let max_change = c
            .sload(at(base, validator::MAX_CHANGE))?
            .saturating_to::<u16>();
        let last = c
            .sload(at(base, validator::COMMISSION_AT))?
            .saturating_to::<u64>();
        if call.commissionBps > max
            || call.commissionBps.abs_diff(current) > max_change
            || c.timestamp() < last + DAY
        {
            return Err(IStaking::CommissionChangeNotAllowed {
                current,
                requested: call.commissionBps,
            }
            .into());
        }
        c.sstore(
            at(base, validator::COMMISSION),
            U256::from(call.commissionBps),
        )?;
        c.sstore(
            at(base, validator::COMMISSION_AT),
            U256::from(c.timestamp()),
        )?;
    }
    store_description(c, base, &call.description)?;
    c.emit(
        STAKING_ADDRESS,
        IStaking::ValidatorEdited {
            operator,
            commissionBps: call.commissionBps,
        }
        .encode_log_data(),
    )
}

/// `addStake`.
pub(crate) fn add_stake(c: &mut Ctx<'_>) -> Result<(), Exit> {
    let operator = c.caller();
    let base = existing_validator(c, operator)?;
    let amount = c.value();
    if amount.is_zero() {
        return Err(IStaking::ZeroAmount {}.into());
    }
    settle(c, operator, operator)?;
    bond(c, operator, operator, amount)?;
    c.add(at(base, validator::SELF_STAKE), amount)?;
    update_status(c, base)?;
    c.emit(
        STAKING_ADDRESS,
        IStaking::StakeAdded { operator, amount }.encode_log_data(),
    )
}

/// `unstake`.
pub(crate) fn unstake(c: &mut Ctx<'_>, amount: U256) -> Result<(), Exit> {
    let operator = c.caller();
    let base = existing_validator(c, operator)?;
    if amount.is_zero() {
        return Err(IStaking::ZeroAmount {}.into());
    }
    let self_stake = c.sload(at(base, validator::SELF_STAKE))?;
    if amount > self_stake {
        return Err(IStaking::InsufficientStake {
            requested: amount,
            available: self_stake,
        }
        .into());
    }
    settle(c, operator, operator)?;
    let penalty = if c.sload(at(base, validator::STATUS))? == U256::from(status::JAILED) {
        amount * param(c, slot::JAILED_UNSTAKE_PENALTY_BPS)? / U256::from(BPS)
    } else {
        U256::ZERO
    };
    let completion = unbond(c, operator, operator, amount, penalty, STAKING_ADDRESS)?;
    c.sstore(at(base, validator::SELF_STAKE), self_stake - amount)?;
    update_status(c, base)?;
    c.emit(
        STAKING_ADDRESS,
        IStaking::StakeRemoved {
            operator,
            amount,
            completionTime: completion,
            penalty,
        }
        .encode_log_data(),
    )
}

/// `distributeRewards`: protocol only.
pub(crate) fn distribute_rewards(
    c: &mut Ctx<'_>,
    proposer: Address,
    amount: U256,
) -> Result<(), Exit> {
    if c.caller() != SYSTEM_ADDRESS {
        return Err(IStaking::Unauthorized { caller: c.caller() }.into());
    }
    let base = validator_base(proposer);
    if amount.is_zero() || c.sload(at(base, validator::STATUS))?.is_zero() {
        // No such validator: the amount stays in the pool, owed to no one.
        return Ok(());
    }
    let commission = amount * c.sload(at(base, validator::COMMISSION))? / U256::from(BPS);
    let rest = amount - commission;
    let total = c.sload(at(base, validator::TOTAL_STAKE))?;
    if total.is_zero() {
        record_reward(c, proposer, amount)?;
        c.add(at(base, validator::COMMISSION_UNCLAIMED), amount)?;
        return c.emit(
            STAKING_ADDRESS,
            IStaking::RewardsDistributed {
                operator: proposer,
                amount,
                commission: amount,
            }
            .encode_log_data(),
        );
    }
    c.add(at(base, validator::COMMISSION_UNCLAIMED), commission)?;
    record_reward(c, proposer, amount)?;
    let numerator = rest * reward_scale() + c.sload(at(base, validator::REMAINDER))?;
    c.add(at(base, validator::INDEX), numerator / total)?;
    c.sstore(at(base, validator::REMAINDER), numerator % total)?;
    c.emit(
        STAKING_ADDRESS,
        IStaking::RewardsDistributed {
            operator: proposer,
            amount,
            commission,
        }
        .encode_log_data(),
    )
}

fn record_reward(c: &mut Ctx<'_>, operator: Address, amount: U256) -> Result<(), Exit> {
    let epoch = param(c, slot::CURRENT_EPOCH)?;
    let history = layout::mapping_slot(
        B256::from(epoch),
        address_slot(operator, U256::from(slot::REWARD_HISTORY)),
    );
    c.add(history, amount)
}

/// `rewardHistory`.
pub(crate) fn reward_history(
    c: &mut Ctx<'_>,
    operator: Address,
    epoch: U256,
) -> Result<U256, Exit> {
    c.sload(layout::mapping_slot(
        B256::from(epoch),
        address_slot(operator, U256::from(slot::REWARD_HISTORY)),
    ))
}

/// `advanceEpoch`: protocol only. Fixes the next epoch's active set.
pub(crate) fn advance_epoch(c: &mut Ctx<'_>) -> Result<(), Exit> {
    if c.caller() != SYSTEM_ADDRESS {
        return Err(IStaking::Unauthorized { caller: c.caller() }.into());
    }
    let set = layout::next_active_set(c)?;
    let base = U256::from(slot::EPOCH_SET);
    let old_len = c.sload(base)?.saturating_to::<u64>();
    for (i, (operator, _)) in set.iter().enumerate() {
        c.sstore(array_slot(base, i as u64, 1), address_word(*operator))?;
    }
    for i in set.len() as u64..old_len {
        c.sstore(array_slot(base, i, 1), U256::ZERO)?;
    }
    c.sstore(base, U256::from(set.len()))?;
    let epoch = param(c, slot::CURRENT_EPOCH)? + U256::from(1);
    c.sstore(U256::from(slot::CURRENT_EPOCH), epoch)?;
    c.emit(
        STAKING_ADDRESS,
        IStaking::EpochAdvanced {
            epoch,
            validators: U256::from(set.len()),
        }
        .encode_log_data(),
    )
}

/// `recordSigners`: protocol only. Updates every bonded member of the epoch set's uptime window
/// and jails those below the minimum uptime over a full window.
pub(crate) fn record_signers(c: &mut Ctx<'_>, signers: &[Address]) -> Result<(), Exit> {
    if c.caller() != SYSTEM_ADDRESS {
        return Err(IStaking::Unauthorized { caller: c.caller() }.into());
    }
    let window = param(c, slot::UPTIME_WINDOW)?
        .saturating_to::<u64>()
        .clamp(1, 256);
    let max_missed =
        U256::from(window) * (U256::from(BPS) - param(c, slot::MIN_UPTIME_BPS)?) / U256::from(BPS);
    let bit = U256::from(1) << (c.block_number() % window) as usize;
    for (operator, _) in layout::epoch_set(c)? {
        let base = validator_base(operator);
        if c.sload(at(base, validator::STATUS))? != U256::from(status::BONDED) {
            continue;
        }
        let missed = !signers.contains(&operator);
        let bitmap = c.sload(at(base, validator::MISSED_BITMAP))?;
        let was_missed = !(bitmap & bit).is_zero();
        let mut count = c.sload(at(base, validator::MISSED_COUNT))?;
        if missed != was_missed {
            c.sstore(at(base, validator::MISSED_BITMAP), bitmap ^ bit)?;
            count = if missed {
                count + U256::from(1)
            } else {
                count - U256::from(1)
            };
            c.sstore(at(base, validator::MISSED_COUNT), count)?;
        }
        let filled = c.sload(at(base, validator::WINDOW_FILLED))?;
        if filled < U256::from(window) {
            c.sstore(at(base, validator::WINDOW_FILLED), filled + U256::from(1))?;
        } else if count > max_missed {
            let until = c.timestamp() + param(c, slot::JAIL_TIME)?.saturating_to::<u64>();
            c.sstore(at(base, validator::STATUS), U256::from(status::JAILED))?;
            c.sstore(at(base, validator::JAILED_UNTIL), U256::from(until))?;
            for field in [
                validator::MISSED_BITMAP,
                validator::MISSED_COUNT,
                validator::WINDOW_FILLED,
            ] {
                c.sstore(at(base, field), U256::ZERO)?;
            }
            c.emit(
                STAKING_ADDRESS,
                IStaking::ValidatorJailed {
                    operator,
                    missedBlocks: count,
                    jailedUntil: until,
                }
                .encode_log_data(),
            )?;
        }
    }
    Ok(())
}

/// `unjail`.
pub(crate) fn unjail(c: &mut Ctx<'_>) -> Result<(), Exit> {
    let operator = c.caller();
    let base = existing_validator(c, operator)?;
    if c.sload(at(base, validator::STATUS))? != U256::from(status::JAILED) {
        return Err(IStaking::NotJailed { operator }.into());
    }
    let until = c
        .sload(at(base, validator::JAILED_UNTIL))?
        .saturating_to::<u64>();
    let fee = if c.timestamp() < until {
        param(c, slot::UNJAIL_FEE)?
    } else {
        U256::ZERO
    };
    if c.value() != fee {
        return Err(IStaking::UnjailFeeRequired {
            jailedUntil: until,
            fee,
        }
        .into());
    }
    if !fee.is_zero() {
        c.burn(STAKING_ADDRESS, fee)?;
    }
    c.sstore(at(base, validator::STATUS), U256::from(status::BONDED))?;
    update_status(c, base)?;
    c.emit(
        STAKING_ADDRESS,
        IStaking::ValidatorUnjailed { operator, fee }.encode_log_data(),
    )
}

/// `validator`.
pub(crate) fn validator_info(
    c: &mut Ctx<'_>,
    operator: Address,
) -> Result<IStaking::ValidatorInfo, Exit> {
    let base = existing_validator(c, operator)?;
    let word = |c: &mut Ctx<'_>, f| c.sload(at(base, f));
    let text = |c: &mut Ctx<'_>, f| -> Result<String, Exit> {
        Ok(String::from_utf8_lossy(&c.load_bytes(at(base, f))?).into_owned())
    };
    Ok(IStaking::ValidatorInfo {
        operator,
        consensusKey: B256::from(word(c, validator::KEY)?),
        status: word(c, validator::STATUS)?.saturating_to(),
        selfStake: word(c, validator::SELF_STAKE)?,
        totalStake: word(c, validator::TOTAL_STAKE)?,
        commissionBps: word(c, validator::COMMISSION)?.saturating_to(),
        maxCommissionBps: word(c, validator::MAX_COMMISSION)?.saturating_to(),
        maxChangeBps: word(c, validator::MAX_CHANGE)?.saturating_to(),
        commissionUpdatedAt: word(c, validator::COMMISSION_AT)?.saturating_to(),
        commissionUnclaimed: word(c, validator::COMMISSION_UNCLAIMED)?,
        description: IStaking::Description {
            moniker: text(c, validator::MONIKER)?,
            website: text(c, validator::WEBSITE)?,
            details: text(c, validator::DETAILS)?,
        },
        jailedUntil: word(c, validator::JAILED_UNTIL)?.saturating_to(),
        missedBlocks: word(c, validator::MISSED_COUNT)?,
    })
}

/// `validators`: operators with `status` (0: any), paginated.
pub(crate) fn validators(
    c: &mut Ctx<'_>,
    wanted: u8,
    offset: U256,
    limit: U256,
) -> Result<Vec<Address>, Exit> {
    let list = U256::from(slot::VALIDATOR_LIST);
    let len = c.sload(list)?.saturating_to::<u64>();
    let mut out = Vec::new();
    let mut skipped = U256::ZERO;
    for i in 0..len {
        if U256::from(out.len()) >= limit {
            break;
        }
        let operator = word_address(c.sload(array_slot(list, i, 1))?);
        let st = c.sload(at(validator_base(operator), validator::STATUS))?;
        if wanted == 0 || st == U256::from(wanted) {
            if skipped < offset {
                skipped += U256::from(1);
            } else {
                out.push(operator);
            }
        }
    }
    Ok(out)
}

/// `params`.
pub(crate) fn params(c: &mut Ctx<'_>) -> Result<IStaking::Params, Exit> {
    Ok(IStaking::Params {
        minSelfStake: param(c, slot::MIN_SELF_STAKE)?,
        minDelegation: param(c, slot::MIN_DELEGATION)?,
        maxValidators: param(c, slot::MAX_VALIDATORS)?,
        unbondingPeriod: param(c, slot::UNBONDING_PERIOD)?,
        blockReward: param(c, slot::BLOCK_REWARD)?,
        epochLength: param(c, slot::EPOCH_LENGTH)?,
        uptimeWindow: param(c, slot::UPTIME_WINDOW)?,
        minUptimeBps: param(c, slot::MIN_UPTIME_BPS)?,
        jailTime: param(c, slot::JAIL_TIME)?,
        unjailFee: param(c, slot::UNJAIL_FEE)?,
        jailedUnstakePenaltyBps: param(c, slot::JAILED_UNSTAKE_PENALTY_BPS)?,
    })
}
