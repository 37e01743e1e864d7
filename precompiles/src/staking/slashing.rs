//! Slashing in bounded steps.
//!
//! A slash takes `bps` of the stake the offender's seat held (Cosmos semantics): first from the
//! unbonding and redelegation entries created at or after the infraction's `since` height and
//! not yet matured (each cut `bps` of its initial amount, at most what is left), the rest from
//! the bonded stake. Finding those entries means walking every delegator listed under the
//! offender, and anyone can list many addresses; so the walk is a job that advances
//! [`WALK_PER_STEP`] delegators at a time: once in the call that starts it, then once per block
//! in the protocol's `recordSigners` call, until it finishes and the bonded cut, burn, reporter
//! reward and events follow. While a job runs, nothing that would move stake out of its reach
//! (undelegating, unstaking, redelegating, cancelling or withdrawing the offender's entries,
//! moving stake redelegated from it, unjailing) is allowed: those revert with `SlashPending`.
//! Tokens cut from entries wait in the escrow, counted by `totalSlashing`, until the job ends.

use super::{BPS, Holding, at, burn, settle, tombstone, update_status};
use crate::{
    DELEGATION_ADDRESS, STAKING_ADDRESS,
    ctx::{Checked, Ctx, Exit, address_word, word_address},
    interfaces::IStaking,
    layout::{
        self, MAX_ENTRIES_PER_DELEGATOR, address_slot, array_slot, redelegation, slash_job, slot,
        unbonding, validator, validator_base,
    },
};
use alloy::{
    primitives::{Address, U256},
    sol_types::SolEvent,
};

/// Delegators a slash job walks per step (each with at most [`MAX_ENTRIES_PER_DELEGATOR`]
/// unbonding and as many redelegation entries): the most protocol work one block does for it.
pub const WALK_PER_STEP: u64 = 32;

/// What a slash is for, and who reported it (double signs).
pub(crate) struct Offence {
    /// `ValidatorSlashed.reason`.
    pub(crate) reason: u8,
    /// The reporter of a double sign (paid at most the offender's own loss); zero for downtime.
    pub(crate) reporter: Address,
    /// Height and round of the double-signed votes (for `DoubleSignReported`).
    pub(crate) height: u64,
    pub(crate) round: u32,
}

fn job(operator: Address) -> U256 {
    address_slot(operator, U256::from(slot::SLASH_JOBS))
}

/// Whether a slash of `operator` is in progress.
pub(crate) fn in_progress(c: &mut Ctx<'_>, operator: Address) -> Result<bool, Exit> {
    Ok(!c.sload(at(job(operator), slash_job::ACTIVE))?.is_zero())
}

/// Fails while a slash of `operator` is in progress.
pub(crate) fn not_in_progress(c: &mut Ctx<'_>, operator: Address) -> Result<(), Exit> {
    if in_progress(c, operator)? {
        return Err(IStaking::SlashPending { operator }.into());
    }
    Ok(())
}

/// Whether any slash is in progress (one read: the common case skips every other check).
pub(crate) fn any_in_progress(c: &mut Ctx<'_>) -> Result<bool, Exit> {
    Ok(!c.sload(U256::from(slot::SLASH_QUEUE))?.is_zero())
}

/// Fails if `delegator`'s stake at `holder` came by redelegation from a validator whose slash is
/// in progress: that slash may still cut it.
pub(crate) fn redelegated_stake_free(
    c: &mut Ctx<'_>,
    delegator: Address,
    holder: Address,
) -> Result<(), Exit> {
    if !any_in_progress(c)? {
        return Ok(());
    }
    let list = address_slot(delegator, U256::from(slot::REDELEGATIONS));
    for i in 0..list_len(c, list)? {
        let entry = |f| array_slot(list, i, redelegation::SIZE) + U256::from(f);
        if word_address(c.sload(entry(redelegation::DST))?) == holder {
            let src = word_address(c.sload(entry(redelegation::SRC))?);
            not_in_progress(c, src)?;
        }
    }
    Ok(())
}

/// Starts slashing `operator` by `bps` of `basis` (its seat's recorded stake) for an infraction
/// reaching entries created at or after `since`, and walks the first step.
pub(crate) fn start(
    c: &mut Ctx<'_>,
    operator: Address,
    bps: U256,
    basis: U256,
    since: u64,
    offence: Offence,
) -> Result<(), Exit> {
    not_in_progress(c, operator)?;
    let j = job(operator);
    for (field, value) in [
        (slash_job::ACTIVE, U256::from(1)),
        (slash_job::TARGET, basis.mul_div(bps, U256::from(BPS))?),
        (slash_job::SINCE, U256::from(since)),
        (slash_job::REPORTER, address_word(offence.reporter)),
        (slash_job::REASON, U256::from(offence.reason)),
        (slash_job::HEIGHT, U256::from(offence.height)),
        (slash_job::ROUND, U256::from(offence.round)),
        (slash_job::FRACTION, bps),
        (slash_job::START_TIME, U256::from(c.timestamp())),
    ] {
        c.sstore(at(j, field), value)?;
    }
    if !advance(c, operator, WALK_PER_STEP)?.0 {
        c.push_address(U256::from(slot::SLASH_QUEUE), operator)?;
    }
    Ok(())
}

/// Advances the slashes in progress by at most [`WALK_PER_STEP`] delegators in all: the
/// protocol's per-block share of the work, taken by the jobs in turn, so a long job does not
/// hold the others back.
pub(crate) fn advance_queue(c: &mut Ctx<'_>) -> Result<(), Exit> {
    let queue = U256::from(slot::SLASH_QUEUE);
    let next = U256::from(slot::SLASH_QUEUE_NEXT);
    let mut budget = WALK_PER_STEP;
    while budget > 0 {
        let len = c.sload(queue)?.saturating_to::<u64>();
        if len == 0 {
            break;
        }
        let i = c.sload(next)?.saturating_to::<u64>() % len;
        let operator = word_address(c.sload(array_slot(queue, i, 1))?);
        let (done, walked) = advance(c, operator, budget)?;
        budget = budget.saturating_sub(walked.max(1));
        if done {
            // The last job moves into this place and gets the next turn.
            c.swap_remove_address(queue, i, len)?;
            c.sstore(next, U256::from(i))?;
        } else {
            c.sstore(next, U256::from(i + 1))?;
        }
    }
    Ok(())
}

/// Walks up to `budget` delegators of `operator`'s job; finishes it when none are left.
/// Returns whether it finished, and how many delegators it walked.
fn advance(c: &mut Ctx<'_>, operator: Address, budget: u64) -> Result<(bool, u64), Exit> {
    let j = job(operator);
    let bps = c.sload(at(j, slash_job::FRACTION))?;
    let since = c.sload(at(j, slash_job::SINCE))?.saturating_to::<u64>();
    let started = c.sload(at(j, slash_job::START_TIME))?;
    let delegators = address_slot(operator, U256::from(slot::UNBONDING_DELEGATORS));
    let mut count = c.sload(delegators)?.saturating_to::<u64>();
    let mut cursor = c.sload(at(j, slash_job::CURSOR))?.saturating_to::<u64>();
    let (mut cut, mut own) = (U256::ZERO, U256::ZERO);
    let mut steps = 0;
    while cursor < count && steps < budget {
        steps += 1;
        let delegator = word_address(c.sload(array_slot(delegators, cursor, 1))?);
        let walked = walk(c, operator, delegator, bps, since, started)?;
        cut = cut.plus(walked.cut)?;
        if delegator == operator {
            own = own.plus(walked.cut)?;
        }
        if walked.live {
            cursor += 1;
            continue;
        }
        // No live entry left from `operator`: unlist (the last one moves here, unvisited).
        c.swap_remove_address(delegators, cursor, count)?;
        count -= 1;
        c.sstore(
            layout::mapping_slot(
                delegator.into_word(),
                address_slot(operator, U256::from(slot::UNBONDING_LISTED)),
            ),
            U256::ZERO,
        )?;
    }
    c.sstore(at(j, slash_job::CURSOR), U256::from(cursor))?;
    if !cut.is_zero() {
        c.add(at(j, slash_job::ENTRIES_CUT), cut)?;
        c.add(U256::from(slot::TOTAL_SLASHING), cut)?;
    }
    if !own.is_zero() {
        c.add(at(j, slash_job::OWN_CUT), own)?;
    }
    if cursor < count {
        return Ok((false, steps));
    }
    finish(c, operator)?;
    Ok((true, steps))
}

/// What walking one delegator's entries found.
struct Walked {
    /// Whether it still has an unmatured entry from the offender.
    live: bool,
    /// Tokens cut from its entries.
    cut: U256,
}

/// Cuts `bps` of each of `delegator`'s unbonding entries from `operator` created at or after
/// `since` and unmatured when the job `started` (of the initial amount, at most what is left),
/// and of the destination shares of its redelegations away from `operator` since then (at most
/// those still held).
fn walk(
    c: &mut Ctx<'_>,
    operator: Address,
    delegator: Address,
    bps: U256,
    since: u64,
    started: U256,
) -> Result<Walked, Exit> {
    let reach = Reach {
        operator,
        started,
        since: U256::from(since),
    };
    let (mut live, mut unbonding_cut, mut redelegated_cut) = (false, U256::ZERO, U256::ZERO);
    let list = address_slot(delegator, U256::from(slot::UNBONDINGS));
    for i in 0..list_len(c, list)? {
        let entry = |f| array_slot(list, i, unbonding::SIZE) + U256::from(f);
        let fields = [
            unbonding::VALIDATOR,
            unbonding::COMPLETION,
            unbonding::HEIGHT,
        ];
        let Some(in_reach) = reach.of(c, fields.map(entry))? else {
            continue;
        };
        live = true;
        if !in_reach {
            continue;
        }
        let left = c.sload(entry(unbonding::AMOUNT))?;
        let cut = c
            .sload(entry(unbonding::INITIAL))?
            .mul_div(bps, U256::from(BPS))?
            .min(left);
        if !cut.is_zero() {
            c.sstore(entry(unbonding::AMOUNT), left.minus(cut)?)?;
            unbonding_cut = unbonding_cut.plus(cut)?;
        }
    }
    c.sub(U256::from(slot::TOTAL_UNBONDING), unbonding_cut)?;
    let list = address_slot(delegator, U256::from(slot::REDELEGATIONS));
    for i in 0..list_len(c, list)? {
        let entry = |f| array_slot(list, i, redelegation::SIZE) + U256::from(f);
        let fields = [
            redelegation::SRC,
            redelegation::COMPLETION,
            redelegation::HEIGHT,
        ];
        let Some(in_reach) = reach.of(c, fields.map(entry))? else {
            continue;
        };
        live = true;
        if !in_reach {
            continue;
        }
        let dst = word_address(c.sload(entry(redelegation::DST))?);
        let entry_shares = c.sload(entry(redelegation::DST_SHARES))?;
        let holding = Holding::load(c, delegator, dst)?;
        let shares = entry_shares
            .mul_div(bps, U256::from(BPS))?
            .min(holding.shares);
        if shares.is_zero() {
            continue;
        }
        settle(c, delegator, dst)?;
        let tokens = holding.worth(shares)?;
        holding.remove(c, shares, tokens)?;
        redelegated_cut = redelegated_cut.plus(tokens)?;
        c.sstore(entry(redelegation::DST_SHARES), entry_shares.minus(shares)?)?;
        if delegator == dst {
            update_status(c, dst)?;
        }
    }
    Ok(Walked {
        live,
        cut: unbonding_cut.plus(redelegated_cut)?,
    })
}

/// What a job reaches: entries from `operator`, unmatured when it `started`, created at or
/// after `since`.
struct Reach {
    operator: Address,
    started: U256,
    since: U256,
}

impl Reach {
    /// For an entry with the given (validator, completion, height) slots: `None` if it is not
    /// the offender's or was matured, else whether it was created late enough to be cut.
    fn of(
        &self,
        c: &mut Ctx<'_>,
        [validator, completion, height]: [U256; 3],
    ) -> Result<Option<bool>, Exit> {
        if word_address(c.sload(validator)?) != self.operator
            || c.sload(completion)? <= self.started
        {
            return Ok(None);
        }
        Ok(Some(c.sload(height)? >= self.since))
    }
}

/// Length of a delegator's entry list, at most [`MAX_ENTRIES_PER_DELEGATOR`].
fn list_len(c: &mut Ctx<'_>, list: U256) -> Result<u64, Exit> {
    Ok(c.sload(list)?
        .saturating_to::<u64>()
        .min(MAX_ENTRIES_PER_DELEGATOR))
}

/// Ends `operator`'s job: the rest of the amount from the bonded stake, the reporter paid at
/// most the offender's own loss, everything else burned, the events logged.
fn finish(c: &mut Ctx<'_>, operator: Address) -> Result<(), Exit> {
    let j = job(operator);
    let word = |c: &mut Ctx<'_>, f| c.sload(at(j, f));
    let (target, entries_cut, own_cut) = (
        word(c, slash_job::TARGET)?,
        word(c, slash_job::ENTRIES_CUT)?,
        word(c, slash_job::OWN_CUT)?,
    );
    let (bps, reason) = (word(c, slash_job::FRACTION)?, word(c, slash_job::REASON)?);
    let reporter = word_address(word(c, slash_job::REPORTER)?);
    let (height, round) = (word(c, slash_job::HEIGHT)?, word(c, slash_job::ROUND)?);
    for field in 0..slash_job::SIZE {
        c.sstore(at(j, field), U256::ZERO)?;
    }
    c.sub(U256::from(slot::TOTAL_SLASHING), entries_cut)?;

    let base = validator_base(operator);
    let total_stake = c.sload(at(base, validator::TOTAL_STAKE))?;
    let bonded_cut = target.saturating_sub(entries_cut).min(total_stake);
    let self_before = super::delegation_tokens(c, operator, operator)?;
    c.sstore(
        at(base, validator::TOTAL_STAKE),
        total_stake.minus(bonded_cut)?,
    )?;
    c.sub(U256::from(slot::TOTAL_BONDED), bonded_cut)?;
    let self_after = super::delegation_tokens(c, operator, operator)?;
    let amount = bonded_cut.plus(entries_cut)?;
    let own_loss = self_before.minus(self_after)?.plus(own_cut)?;

    let reason = reason.saturating_to::<u8>();
    let reward = if reason == super::SLASH_DOUBLE_SIGN {
        // A share of what the offender itself lost: reporting oneself recovers at most
        // `reporterRewardBps` of one's own loss, and never the delegators' loss.
        own_loss.mul_div(super::param(c, slot::REPORTER_REWARD_BPS)?, U256::from(BPS))?
    } else {
        U256::ZERO
    };
    if !reward.is_zero() {
        c.transfer(DELEGATION_ADDRESS, reporter, reward)?;
    }
    burn(c, DELEGATION_ADDRESS, amount.minus(reward)?)?;
    if total_stake == bonded_cut {
        // Slashed to nothing: jailed for good (double-sign evidence still counts against it).
        tombstone(c, operator)?;
    }
    c.emit(
        STAKING_ADDRESS,
        IStaking::ValidatorSlashed {
            operator,
            reason,
            fractionBps: bps.saturating_to(),
            amount,
        }
        .encode_log_data(),
    )?;
    if reason == super::SLASH_DOUBLE_SIGN {
        c.emit(
            STAKING_ADDRESS,
            IStaking::DoubleSignReported {
                operator,
                reporter,
                height: height.saturating_to(),
                round: round.saturating_to(),
                reward,
            }
            .encode_log_data(),
        )?;
    }
    Ok(())
}
