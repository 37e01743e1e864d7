//! Staking: validators, self-stake, the active set, and reward distribution (F1).
//!
//! A validator's self-stake is its operator's delegation to itself, so rewards and slashes reach
//! self-stake and delegations the same way.
//!
//! Stake is held as shares: bonding `amount` mints `floor(amount * totalShares / totalStake)`
//! shares (`amount` for the first), a delegation is worth `floor(shares * totalStake /
//! totalShares)`, and unbonding burns `ceil(amount * totalShares / totalStake)` shares (all of
//! them when the whole worth leaves). Roundings favour the validator's remaining stake, so the
//! escrow always covers every delegation. A slash lowers `totalStake` only: every delegation loses
//! the same fraction in O(1).
//!
//! Rewards (F1): distributing `amount` to a validator: commission
//! `floor(amount * commissionBps / 10000)` goes to the operator; the rest raises the validator's
//! index by `floor((rest * 1e36 + remainder) / totalShares)`, carrying the new remainder. A
//! delegation settles `floor(shares * (index - snapshot) / 1e36)` before any change to it: O(1)
//! per block and per claim, no loop over delegators; flooring never pays out more than came in.

pub mod dispatch;

pub mod evidence;

pub mod slashing;

use crate::{
    DELEGATION_ADDRESS, STAKING_ADDRESS,
    ctx::{Checked, Ctx, Exit, address_word, word_address},
    interfaces::IStaking,
    layout::{
        self, MAX_DESCRIPTION_LEN, MAX_ENTRIES_PER_DELEGATOR, MAX_ENTRIES_PER_VALIDATOR,
        address_slot, array_slot, delegation, delegation_base, epoch, epoch_base, epoch_stake_slot,
        reward_scale, slot, status, unbonding, validator, validator_base,
    },
};
use alloy::{
    primitives::{Address, B256, U256},
    sol_types::SolEvent,
};

const BPS: u64 = 10_000;
const DAY: u64 = 86_400;
/// `ValidatorSlashed.reason` of a downtime slash.
const SLASH_DOWNTIME: u8 = 1;
/// `ValidatorSlashed.reason` of a double-sign slash.
const SLASH_DOUBLE_SIGN: u8 = 2;

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

/// The worth of `shares` of a validator's stake.
fn shares_worth(shares: U256, total_shares: U256, total_stake: U256) -> Result<U256, Exit> {
    if total_shares.is_zero() {
        Ok(U256::ZERO)
    } else {
        shares.mul_div(total_stake, total_shares)
    }
}

/// The worth of a delegation's shares.
pub(crate) fn delegation_tokens(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
) -> Result<U256, Exit> {
    let shares = c.sload(at(delegation_base(delegator, operator), delegation::SHARES))?;
    if shares.is_zero() {
        return Ok(U256::ZERO);
    }
    let v = validator_base(operator);
    let total_shares = c.sload(at(v, validator::TOTAL_SHARES))?;
    let total_stake = c.sload(at(v, validator::TOTAL_STAKE))?;
    shares_worth(shares, total_shares, total_stake)
}

/// Settles a delegation's rewards up to the validator's current index; returns the worth of
/// its shares.
pub(crate) fn settle(c: &mut Ctx<'_>, delegator: Address, operator: Address) -> Result<U256, Exit> {
    let d = delegation_base(delegator, operator);
    let shares = c.sload(at(d, delegation::SHARES))?;
    let snapshot = c.sload(at(d, delegation::SNAPSHOT))?;
    let index = c.sload(at(validator_base(operator), validator::INDEX))?;
    if index != snapshot {
        let earned = shares.mul_div(index.minus(snapshot)?, reward_scale())?;
        if !earned.is_zero() {
            c.add(at(d, delegation::UNCLAIMED), earned)?;
        }
        c.sstore(at(d, delegation::SNAPSHOT), index)?;
    }
    delegation_tokens(c, delegator, operator)
}

/// Rewards a delegation could claim now (settled + unsettled), without writing.
pub(crate) fn pending(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
) -> Result<U256, Exit> {
    let d = delegation_base(delegator, operator);
    let v = validator_base(operator);
    let shares = c.sload(at(d, delegation::SHARES))?;
    let snapshot = c.sload(at(d, delegation::SNAPSHOT))?;
    let index = c.sload(at(v, validator::INDEX))?;
    let mut total = c
        .sload(at(d, delegation::UNCLAIMED))?
        .plus(shares.mul_div(index.minus(snapshot)?, reward_scale())?)?;
    if delegator == operator {
        total = total.plus(c.sload(at(v, validator::COMMISSION_UNCLAIMED))?)?;
    }
    Ok(total)
}

/// Bonds `amount` (already in the delegation escrow) to a (settled) delegation as shares;
/// returns the shares minted.
pub(crate) fn bond(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
    amount: U256,
) -> Result<U256, Exit> {
    let v = validator_base(operator);
    let total_shares = c.sload(at(v, validator::TOTAL_SHARES))?;
    let total_stake = c.sload(at(v, validator::TOTAL_STAKE))?;
    let shares = if total_shares.is_zero() {
        amount
    } else if total_stake.is_zero() {
        // Slashed to nothing: new stake would buy worthless shares. Such a validator is
        // tombstoned, and callers refuse tombstoned validators before bonding.
        return Err(IStaking::Tombstoned { operator }.into());
    } else {
        amount.mul_div(total_shares, total_stake)?
    };
    if shares.is_zero() {
        return Err(IStaking::ZeroAmount {}.into());
    }
    c.sstore(at(v, validator::TOTAL_SHARES), total_shares.plus(shares)?)?;
    let d = delegation_base(delegator, operator);
    c.add(at(d, delegation::SHARES), shares)?;
    if c.sload(at(d, delegation::LISTED))?.is_zero() {
        c.sstore(at(d, delegation::LISTED), U256::from(1))?;
        let list = address_slot(delegator, U256::from(slot::DELEGATED_TO));
        c.push_address(list, operator)?;
    }
    c.sstore(at(v, validator::TOTAL_STAKE), total_stake.plus(amount)?)?;
    c.add(U256::from(slot::TOTAL_BONDED), amount)?;
    Ok(shares)
}

/// A delegation's shares with its validator's totals, as loaded.
pub(crate) struct Holding {
    delegation: U256,
    validator: U256,
    pub(crate) shares: U256,
    total_shares: U256,
    total_stake: U256,
}

impl Holding {
    pub(crate) fn load(
        c: &mut Ctx<'_>,
        delegator: Address,
        operator: Address,
    ) -> Result<Self, Exit> {
        let delegation = delegation_base(delegator, operator);
        let validator = validator_base(operator);
        Ok(Self {
            shares: c.sload(at(delegation, delegation::SHARES))?,
            total_shares: c.sload(at(validator, validator::TOTAL_SHARES))?,
            total_stake: c.sload(at(validator, validator::TOTAL_STAKE))?,
            delegation,
            validator,
        })
    }

    pub(crate) fn worth(&self, shares: U256) -> Result<U256, Exit> {
        shares_worth(shares, self.total_shares, self.total_stake)
    }

    /// Removes `shares` of the delegation and `tokens` (left in the escrow) from the stake.
    pub(crate) fn remove(&self, c: &mut Ctx<'_>, shares: U256, tokens: U256) -> Result<(), Exit> {
        c.sstore(
            at(self.delegation, delegation::SHARES),
            self.shares.minus(shares)?,
        )?;
        c.sstore(
            at(self.validator, validator::TOTAL_SHARES),
            self.total_shares.minus(shares)?,
        )?;
        c.sstore(
            at(self.validator, validator::TOTAL_STAKE),
            self.total_stake.minus(tokens)?,
        )?;
        c.sub(U256::from(slot::TOTAL_BONDED), tokens)
    }
}

/// Takes `amount` (at most its worth, which the caller checks) out of a (settled) delegation,
/// burning the shares it was worth; the funds stay in the delegation escrow.
pub(crate) fn take_shares(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
    amount: U256,
) -> Result<(), Exit> {
    let holding = Holding::load(c, delegator, operator)?;
    let burned = if amount == holding.worth(holding.shares)? {
        holding.shares
    } else if holding.total_stake.is_zero() {
        return Err(IStaking::ZeroAmount {}.into());
    } else {
        // Rounded up, so what stays behind is never worth more than the shares left.
        amount
            .times(holding.total_shares)?
            .div_ceil(holding.total_stake)
    };
    holding.remove(c, burned, amount)
}

/// Burns `amount` held by `account` (an escrow) and counts it in `totalBurned`.
pub(crate) fn burn(c: &mut Ctx<'_>, account: Address, amount: U256) -> Result<(), Exit> {
    if amount.is_zero() {
        return Ok(());
    }
    c.burn(account, amount)?;
    c.add(U256::from(slot::TOTAL_BURNED), amount)
}

/// Moves `amount` of a (settled) delegation into an unbonding entry, burning `penalty` of it;
/// returns the completion time.
pub(crate) fn unbond(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
    amount: U256,
    penalty: U256,
) -> Result<u64, Exit> {
    let list = address_slot(delegator, U256::from(slot::UNBONDINGS));
    let len = c.sload(list)?.saturating_to::<u64>();
    count_entry(c, slot::UNBONDING_ENTRIES, delegator, operator, len)?;
    take_shares(c, delegator, operator, amount)?;
    burn(c, DELEGATION_ADDRESS, penalty)?;
    let amount = amount.minus(penalty)?;
    c.add(U256::from(slot::TOTAL_UNBONDING), amount)?;
    let completion = completion_time(c)?;
    let entry = |field| array_slot(list, len, unbonding::SIZE) + U256::from(field);
    c.sstore(entry(unbonding::VALIDATOR), address_word(operator))?;
    c.sstore(entry(unbonding::AMOUNT), amount)?;
    c.sstore(entry(unbonding::COMPLETION), U256::from(completion))?;
    c.sstore(entry(unbonding::HEIGHT), U256::from(c.block_number()))?;
    c.sstore(entry(unbonding::INITIAL), amount)?;
    c.sstore(list, U256::from(len + 1))?;
    list_for_slashing(c, delegator, operator)?;
    Ok(completion)
}

/// When an entry created now matures: one unbonding period from now.
pub(crate) fn completion_time(c: &mut Ctx<'_>) -> Result<u64, Exit> {
    let period = param(c, slot::UNBONDING_PERIOD)?.saturating_to::<u64>();
    Ok(c.timestamp().saturating_add(period))
}

/// Slot of a per-(delegator, validator) entry counter in the mapping at `counters`.
pub(crate) fn entry_counter(counters: u64, delegator: Address, operator: Address) -> U256 {
    address_slot(operator, address_slot(delegator, U256::from(counters)))
}

/// Counts a new entry of `delegator` at `operator` in the counters at `counters`, refusing it
/// beyond [`MAX_ENTRIES_PER_VALIDATOR`] for the pair or [`MAX_ENTRIES_PER_DELEGATOR`] in the
/// delegator's list (now `list_len` long).
pub(crate) fn count_entry(
    c: &mut Ctx<'_>,
    counters: u64,
    delegator: Address,
    operator: Address,
    list_len: u64,
) -> Result<(), Exit> {
    let counter = entry_counter(counters, delegator, operator);
    let held = c.sload(counter)?;
    if held >= U256::from(MAX_ENTRIES_PER_VALIDATOR) {
        return Err(IStaking::TooManyEntries {
            validator: operator,
            max: U256::from(MAX_ENTRIES_PER_VALIDATOR),
        }
        .into());
    }
    if list_len >= MAX_ENTRIES_PER_DELEGATOR {
        return Err(IStaking::TooManyEntries {
            validator: operator,
            max: U256::from(MAX_ENTRIES_PER_DELEGATOR),
        }
        .into());
    }
    c.sstore(counter, held.plus(U256::from(1))?)
}

/// Indexes `delegator` under `operator` (once), so a slash of `operator` finds the delegator's
/// unbonding and redelegation entries from it.
pub(crate) fn list_for_slashing(
    c: &mut Ctx<'_>,
    delegator: Address,
    operator: Address,
) -> Result<(), Exit> {
    let listed = layout::mapping_slot(
        delegator.into_word(),
        address_slot(operator, U256::from(slot::UNBONDING_LISTED)),
    );
    if c.sload(listed)?.is_zero() {
        c.sstore(listed, U256::from(1))?;
        c.push_address(
            address_slot(operator, U256::from(slot::UNBONDING_DELEGATORS)),
            delegator,
        )?;
    }
    Ok(())
}

/// Jails `operator` for good: out of the active set, never unjailed, never bonded to again.
pub(crate) fn tombstone(c: &mut Ctx<'_>, operator: Address) -> Result<(), Exit> {
    let base = validator_base(operator);
    set_status(c, operator, status::JAILED)?;
    c.sstore(at(base, validator::TOMBSTONED), U256::from(1))?;
    c.sstore(at(base, validator::JAILED_UNTIL), U256::from(u64::MAX))?;
    leave_active_set(c, operator)
}

/// Removes `operator` from the current epoch's active set, keeping the others' order: a jailed
/// validator loses its seat (rewards, uptime duty) at once. Its recorded seat stake stays, so
/// evidence for the heights it held the seat still counts.
fn leave_active_set(c: &mut Ctx<'_>, operator: Address) -> Result<(), Exit> {
    let base = U256::from(slot::EPOCH_SET);
    let len = c.sload(base)?.saturating_to::<u64>();
    let mut found = false;
    for i in 0..len {
        let word = c.sload(array_slot(base, i, 1))?;
        if found {
            c.sstore(array_slot(base, i - 1, 1), word)?;
        } else if word_address(word) == operator {
            found = true;
        }
    }
    if found {
        c.sstore(array_slot(base, len - 1, 1), U256::ZERO)?;
        c.sstore(base, U256::from(len - 1))?;
        // Votes it signs from the next block on carry no seat: no evidence counts for them.
        let epoch = param(c, slot::CURRENT_EPOCH)?;
        c.sstore(
            layout::seat_lost_slot(epoch, operator),
            U256::from(c.block_number()).plus(U256::from(1))?,
        )?;
    }
    Ok(())
}

/// The first block governed by `epoch`'s set.
pub(crate) fn epoch_start(c: &mut Ctx<'_>, epoch: U256) -> Result<u64, Exit> {
    Ok(c.sload(at(epoch_base(epoch), layout::epoch::START_HEIGHT))?
        .saturating_to())
}

/// Whether `operator` holds a seat now: one in the current epoch's set that it has not lost
/// (jailed, even if unjailed since). Two reads, not a walk of the set: this runs every block.
fn holds_seat(c: &mut Ctx<'_>, operator: Address) -> Result<bool, Exit> {
    let epoch = param(c, slot::CURRENT_EPOCH)?;
    Ok(!c.sload(epoch_stake_slot(epoch, operator))?.is_zero()
        && c.sload(layout::seat_lost_slot(epoch, operator))?.is_zero())
}

/// Fails if `operator`'s validator is tombstoned.
pub(crate) fn not_tombstoned(c: &mut Ctx<'_>, operator: Address) -> Result<(), Exit> {
    if !c
        .sload(at(validator_base(operator), validator::TOMBSTONED))?
        .is_zero()
    {
        return Err(IStaking::Tombstoned { operator }.into());
    }
    Ok(())
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
    c.store_bytes(
        at(base, validator::MONIKER),
        d.moniker.as_bytes(),
        MAX_DESCRIPTION_LEN,
    )?;
    c.store_bytes(
        at(base, validator::WEBSITE),
        d.website.as_bytes(),
        MAX_DESCRIPTION_LEN,
    )?;
    c.store_bytes(
        at(base, validator::DETAILS),
        d.details.as_bytes(),
        MAX_DESCRIPTION_LEN,
    )
}

/// Re-evaluates whether the validator's self-stake keeps it a bonded candidate.
pub(crate) fn update_status(c: &mut Ctx<'_>, operator: Address) -> Result<(), Exit> {
    let base = validator_base(operator);
    if c.sload(at(base, validator::STATUS))? == U256::from(status::JAILED) {
        // Only `unjail` leaves jail.
        return Ok(());
    }
    let self_stake = delegation_tokens(c, operator, operator)?;
    let min = param(c, slot::MIN_SELF_STAKE)?;
    let new = if self_stake >= min && !self_stake.is_zero() {
        status::BONDED
    } else {
        status::INACTIVE
    };
    set_status(c, operator, new)
}

/// Sets `operator`'s status, keeping the candidate list (what each epoch boundary walks) to
/// exactly the BONDED validators: every member is backed by at least `minSelfStake`.
pub(crate) fn set_status(c: &mut Ctx<'_>, operator: Address, new: u64) -> Result<(), Exit> {
    let base = validator_base(operator);
    c.sstore(at(base, validator::STATUS), U256::from(new))?;
    let position = c
        .sload(at(base, validator::CANDIDATE_POSITION))?
        .saturating_to::<u64>();
    let list = U256::from(slot::CANDIDATES);
    if new == status::BONDED && position == 0 {
        let len = c.sload(list)?.saturating_to::<u64>();
        c.push_address(list, operator)?;
        c.sstore(at(base, validator::CANDIDATE_POSITION), U256::from(len + 1))?;
    } else if new != status::BONDED && position != 0 {
        // Swap-remove: creation order lives in `registryIndex`, not in the list's order.
        let len = c.sload(list)?.saturating_to::<u64>();
        let moved = c.swap_remove_address(list, position - 1, len)?;
        c.sstore(
            at(
                validator_base(word_address(moved)),
                validator::CANDIDATE_POSITION,
            ),
            U256::from(position),
        )?;
        c.sstore(at(base, validator::CANDIDATE_POSITION), U256::ZERO)?;
    }
    Ok(())
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
    if !evidence::valid_consensus_key(call.consensusKey) || !c.sload(key_slot)?.is_zero() {
        return Err(IStaking::InvalidConsensusKey {
            key: call.consensusKey,
        }
        .into());
    }
    evidence::check_possession(c, call.consensusKey, &call.proofOfPossession)?;
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
    store_description(c, base, &call.description)?;
    let registry = U256::from(slot::VALIDATOR_LIST);
    let index = c.sload(registry)?;
    c.sstore(at(base, validator::REGISTRY_INDEX), index)?;
    c.push_address(registry, operator)?;
    set_status(c, operator, status::BONDED)?;
    c.transfer(STAKING_ADDRESS, DELEGATION_ADDRESS, stake)?;
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
    existing_validator(c, operator)?;
    not_tombstoned(c, operator)?;
    slashing::not_in_progress(c, operator)?;
    let amount = c.value();
    if amount.is_zero() {
        return Err(IStaking::ZeroAmount {}.into());
    }
    settle(c, operator, operator)?;
    c.transfer(STAKING_ADDRESS, DELEGATION_ADDRESS, amount)?;
    bond(c, operator, operator, amount)?;
    update_status(c, operator)?;
    c.emit(
        STAKING_ADDRESS,
        IStaking::StakeAdded { operator, amount }.encode_log_data(),
    )
}

/// `unstake`.
pub(crate) fn unstake(c: &mut Ctx<'_>, amount: U256) -> Result<(), Exit> {
    let operator = c.caller();
    let base = existing_validator(c, operator)?;
    slashing::not_in_progress(c, operator)?;
    slashing::redelegated_stake_free(c, operator, operator)?;
    if amount.is_zero() {
        return Err(IStaking::ZeroAmount {}.into());
    }
    let self_stake = settle(c, operator, operator)?;
    if amount > self_stake {
        return Err(IStaking::InsufficientStake {
            requested: amount,
            available: self_stake,
        }
        .into());
    }
    // The penalty holds from jailing until a full uptime window is served after it: waiting
    // out the jail time and unjailing for free does not dodge it.
    let penalised = c.sload(at(base, validator::STATUS))? == U256::from(status::JAILED)
        || !c.sload(at(base, validator::PENALTY_DUE))?.is_zero();
    let penalty = if penalised {
        amount.mul_div(param(c, slot::JAILED_UNSTAKE_PENALTY_BPS)?, U256::from(BPS))?
    } else {
        U256::ZERO
    };
    let completion = unbond(c, operator, operator, amount, penalty)?;
    update_status(c, operator)?;
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

/// `distributeRewards`: protocol only. Credits `amount` (already in the pool) to the proposer's
/// validator; a proposer holding no seat (jailed, tombstoned, no validator) earns nothing, and
/// the amount is burned rather than left in the pool owed to no one.
pub(crate) fn distribute_rewards(
    c: &mut Ctx<'_>,
    proposer: Address,
    amount: U256,
) -> Result<(), Exit> {
    if !c.is_system_call() {
        return Err(IStaking::Unauthorized { caller: c.caller() }.into());
    }
    if amount.is_zero() {
        return Ok(());
    }
    if !holds_seat(c, proposer)? {
        burn(c, STAKING_ADDRESS, amount)?;
        return c.emit(
            STAKING_ADDRESS,
            IStaking::RewardsBurned { proposer, amount }.encode_log_data(),
        );
    }
    let base = validator_base(proposer);
    let total = c.sload(at(base, validator::TOTAL_SHARES))?;
    // With no shares left (everything unbonded), the whole amount is the operator's.
    let commission = if total.is_zero() {
        amount
    } else {
        amount.mul_div(c.sload(at(base, validator::COMMISSION))?, U256::from(BPS))?
    };
    c.add(at(base, validator::COMMISSION_UNCLAIMED), commission)?;
    record_reward(c, proposer, amount)?;
    let rest = amount.minus(commission)?;
    if !rest.is_zero() {
        let numerator = rest
            .times(reward_scale())?
            .plus(c.sload(at(base, validator::REMAINDER))?)?;
        c.add(at(base, validator::INDEX), numerator.over(total)?)?;
        c.sstore(at(base, validator::REMAINDER), numerator % total)?;
    }
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

/// `advanceEpoch`: protocol only. Fixes the next epoch's active set and each seat's stake, and
/// records where the epoch starts (the blocks after this one) and when.
pub(crate) fn advance_epoch(c: &mut Ctx<'_>) -> Result<(), Exit> {
    if !c.is_system_call() {
        return Err(IStaking::Unauthorized { caller: c.caller() }.into());
    }
    let set = layout::next_active_set(c)?;
    let epoch = param(c, slot::CURRENT_EPOCH)?.plus(U256::from(1))?;
    let base = U256::from(slot::EPOCH_SET);
    let old_len = c.sload(base)?.saturating_to::<u64>();
    for (i, (operator, stake)) in set.iter().enumerate() {
        c.sstore(array_slot(base, i as u64, 1), address_word(*operator))?;
        c.sstore(epoch_stake_slot(epoch, *operator), *stake)?;
    }
    for i in set.len() as u64..old_len {
        c.sstore(array_slot(base, i, 1), U256::ZERO)?;
    }
    c.sstore(base, U256::from(set.len()))?;
    let record = epoch_base(epoch);
    c.sstore(
        at(record, epoch::START_HEIGHT),
        U256::from(c.block_number()).plus(U256::from(1))?,
    )?;
    c.sstore(at(record, epoch::START_TIME), U256::from(c.timestamp()))?;
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

/// `recordSigners`: protocol only. Updates the uptime window of every member of the epoch's set
/// (whatever its self-stake: unstaking to INACTIVE does not end the duty of the seat it holds);
/// one below the minimum uptime over a full window is jailed (leaving the set at once) and
/// slashed, escalating with each offence, from the seat's recorded stake (unbonding entries
/// created within the window are slashed too). A full window served clears a pending
/// jailed-unstake penalty.
pub(crate) fn record_signers(c: &mut Ctx<'_>, signers: &[Address]) -> Result<(), Exit> {
    if !c.is_system_call() {
        return Err(IStaking::Unauthorized { caller: c.caller() }.into());
    }
    // This block's share of the slashes in progress.
    slashing::advance_queue(c)?;
    let window = param(c, slot::UPTIME_WINDOW)?
        .saturating_to::<u64>()
        .clamp(1, 256);
    let max_missed = U256::from(window).mul_div(
        U256::from(BPS).saturating_sub(param(c, slot::MIN_UPTIME_BPS)?),
        U256::from(BPS),
    )?;
    let bit = U256::from(1) << (c.block_number() % window) as usize;
    for (operator, seat_stake) in layout::epoch_set(c)? {
        let base = validator_base(operator);
        let missed = !signers.contains(&operator);
        let bitmap = c.sload(at(base, validator::MISSED_BITMAP))?;
        let was_missed = !(bitmap & bit).is_zero();
        let mut count = c.sload(at(base, validator::MISSED_COUNT))?;
        if missed != was_missed {
            c.sstore(at(base, validator::MISSED_BITMAP), bitmap ^ bit)?;
            count = if missed {
                count.plus(U256::from(1))?
            } else {
                count.minus(U256::from(1))?
            };
            c.sstore(at(base, validator::MISSED_COUNT), count)?;
        }
        let filled = c.sload(at(base, validator::WINDOW_FILLED))?;
        if filled < U256::from(window) {
            c.sstore(
                at(base, validator::WINDOW_FILLED),
                filled.plus(U256::from(1))?,
            )?;
        } else if count <= max_missed {
            if !c.sload(at(base, validator::PENALTY_DUE))?.is_zero() {
                c.sstore(at(base, validator::PENALTY_DUE), U256::ZERO)?;
            }
        } else {
            jail_for_downtime(c, operator, count, seat_stake, window)?;
        }
    }
    Ok(())
}

/// Jails `operator` for missing `missed` blocks of the last `window` and slashes its seat.
fn jail_for_downtime(
    c: &mut Ctx<'_>,
    operator: Address,
    missed: U256,
    seat_stake: U256,
    window: u64,
) -> Result<(), Exit> {
    let base = validator_base(operator);
    let until = c
        .timestamp()
        .saturating_add(param(c, slot::JAIL_TIME)?.saturating_to::<u64>());
    set_status(c, operator, status::JAILED)?;
    c.sstore(at(base, validator::JAILED_UNTIL), U256::from(until))?;
    c.sstore(at(base, validator::PENALTY_DUE), U256::from(1))?;
    for field in [
        validator::MISSED_BITMAP,
        validator::MISSED_COUNT,
        validator::WINDOW_FILLED,
    ] {
        c.sstore(at(base, field), U256::ZERO)?;
    }
    leave_active_set(c, operator)?;
    c.emit(
        STAKING_ADDRESS,
        IStaking::ValidatorJailed {
            operator,
            missedBlocks: missed,
            jailedUntil: until,
        }
        .encode_log_data(),
    )?;
    let offences = c.sload(at(base, validator::DOWNTIME_OFFENCES))?;
    c.sstore(
        at(base, validator::DOWNTIME_OFFENCES),
        offences.plus(U256::from(1))?,
    )?;
    let bps = param(
        c,
        slot::DOWNTIME_SLASH_BPS + offences.saturating_to::<u64>().min(2),
    )?;
    // The seat's stake was fixed at the epoch's start: stake that left since then (or within
    // the window) was part of it and is in reach.
    let epoch = param(c, slot::CURRENT_EPOCH)?;
    let since = c
        .block_number()
        .saturating_sub(window)
        .min(epoch_start(c, epoch)?);
    slashing::start(
        c,
        operator,
        bps,
        seat_stake,
        since,
        slashing::Offence {
            reason: SLASH_DOWNTIME,
            reporter: Address::ZERO,
            height: 0,
            round: 0,
        },
    )
}

/// `unjail`.
pub(crate) fn unjail(c: &mut Ctx<'_>) -> Result<(), Exit> {
    let operator = c.caller();
    let base = existing_validator(c, operator)?;
    if c.sload(at(base, validator::STATUS))? != U256::from(status::JAILED) {
        return Err(IStaking::NotJailed { operator }.into());
    }
    not_tombstoned(c, operator)?;
    slashing::not_in_progress(c, operator)?;
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
    burn(c, STAKING_ADDRESS, fee)?;
    // Out of jail; bonded again if its self-stake suffices.
    set_status(c, operator, status::INACTIVE)?;
    update_status(c, operator)?;
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
        Ok(String::from_utf8_lossy(&c.load_bytes(at(base, f), MAX_DESCRIPTION_LEN)?).into_owned())
    };
    Ok(IStaking::ValidatorInfo {
        operator,
        consensusKey: B256::from(word(c, validator::KEY)?),
        status: word(c, validator::STATUS)?.saturating_to(),
        selfStake: delegation_tokens(c, operator, operator)?,
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
        downtimeOffences: word(c, validator::DOWNTIME_OFFENCES)?,
        tombstoned: !word(c, validator::TOMBSTONED)?.is_zero(),
        totalShares: word(c, validator::TOTAL_SHARES)?,
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
        downtimeSlashBps: [
            param(c, slot::DOWNTIME_SLASH_BPS)?,
            param(c, slot::DOWNTIME_SLASH_BPS + 1)?,
            param(c, slot::DOWNTIME_SLASH_BPS + 2)?,
        ],
        doubleSignSlashBps: param(c, slot::DOUBLE_SIGN_SLASH_BPS)?,
        reporterRewardBps: param(c, slot::REPORTER_REWARD_BPS)?,
        maxEvidenceAge: param(c, slot::MAX_EVIDENCE_AGE)?,
        baseFeeBurnBps: param(c, slot::BASE_FEE_BURN_BPS)?,
        chainId: param(c, slot::CHAIN_ID)?,
    })
}
