//! Double-sign evidence: two votes signed by one consensus key for different blocks at the same
//! height and round, while the key held a seat in that height's epoch. Verified here (ed25519),
//! then the offender is slashed from the seat's recorded stake, tombstoned, and the reporter paid
//! a share of the slash capped at the offender's own loss. Also the proof of possession a key
//! gives when it registers.

use super::{SLASH_DOUBLE_SIGN, epoch_start, param, slashing, tombstone};
use crate::{
    ctx::{Ctx, Exit, word_address},
    interfaces::IStaking,
    layout::{self, epoch, epoch_base, epoch_stake_slot, slot},
};
use alloy::primitives::{Address, B256, U256};
use ed25519_dalek::{Signature, VerifyingKey};

/// Domain tag that starts every signed vote, so a vote signature is never valid for anything else.
pub const VOTE_DOMAIN: &[u8] = b"ComputeChain/vote/v1";

/// Gas of one ed25519 verification: priced like ECRECOVER (3,000), whose CPU time it matches
/// (`computechain bench --sections evidence` prints both).
pub const ED25519_VERIFY_GAS: u64 = 3_000;

/// The bytes a consensus key signs for a vote: [`VOTE_DOMAIN`], then chain id (8 bytes), height
/// (8), round (4) and block hash (32), big-endian.
pub fn vote_message(chain_id: u64, height: u64, round: u32, block_hash: B256) -> Vec<u8> {
    let mut message = Vec::with_capacity(VOTE_DOMAIN.len() + 52);
    message.extend_from_slice(VOTE_DOMAIN);
    message.extend_from_slice(&chain_id.to_be_bytes());
    message.extend_from_slice(&height.to_be_bytes());
    message.extend_from_slice(&round.to_be_bytes());
    message.extend_from_slice(block_hash.as_slice());
    message
}

/// Domain tag of the proof of possession a consensus key signs when it registers.
pub const POP_DOMAIN: &[u8] = b"ComputeChain/pop/v1";

/// The bytes a consensus key signs to prove possession for `operator`: [`POP_DOMAIN`], chain id
/// (8 bytes, big-endian), operator (20).
pub fn pop_message(chain_id: u64, operator: Address) -> Vec<u8> {
    [POP_DOMAIN, &chain_id.to_be_bytes(), operator.as_slice()].concat()
}

/// Checks that `proof` is `key`'s signature over [`pop_message`] for the caller: a key cannot be
/// registered (or squatted by front-running) by anyone who does not hold it.
pub(crate) fn check_possession(c: &mut Ctx<'_>, key: B256, proof: &[u8]) -> Result<(), Exit> {
    c.charge(ED25519_VERIFY_GAS)?;
    let invalid = || Exit::from(IStaking::InvalidProofOfPossession { key });
    let verifying_key = VerifyingKey::from_bytes(&key.0).map_err(|_| invalid())?;
    let signature = Signature::from_slice(proof).map_err(|_| invalid())?;
    let chain_id = param(c, slot::CHAIN_ID)?.saturating_to::<u64>();
    verifying_key
        .verify_strict(&pop_message(chain_id, c.caller()), &signature)
        .map_err(|_| invalid())
}

/// The epoch whose set governed block `height`: the latest one starting at or before it
/// (binary search over the recorded starts, so the cost grows with log(epochs)).
fn epoch_of(c: &mut Ctx<'_>, height: u64) -> Result<Option<U256>, Exit> {
    let (mut low, mut high) = (U256::from(1), param(c, slot::CURRENT_EPOCH)?);
    let start = |c: &mut Ctx<'_>, e: U256| c.sload(epoch_base(e) + U256::from(epoch::START_HEIGHT));
    if high.is_zero() || start(c, low)? > U256::from(height) {
        return Ok(None);
    }
    // Invariant: start(low) <= height; the answer is in [low, high].
    while low < high {
        let mid = (low + high + U256::from(1)) >> 1;
        if start(c, mid)? <= U256::from(height) {
            low = mid;
        } else {
            high = mid - U256::from(1);
        }
    }
    Ok(Some(low))
}

/// Whether `key` is a usable ed25519 public key (a valid curve point).
pub(crate) fn valid_consensus_key(key: B256) -> bool {
    VerifyingKey::from_bytes(&key.0).is_ok_and(|k| !k.is_weak())
}

fn verify_vote(
    c: &mut Ctx<'_>,
    key: &VerifyingKey,
    chain_id: u64,
    vote: &IStaking::SignedVote,
) -> Result<(), Exit> {
    c.charge(ED25519_VERIFY_GAS)?;
    let invalid = || IStaking::InvalidVoteSignature {
        height: vote.height,
        round: vote.round,
        blockHash: vote.blockHash,
    };
    let signature = Signature::from_slice(&vote.signature).map_err(|_| invalid())?;
    let message = vote_message(chain_id, vote.height, vote.round, vote.blockHash);
    key.verify_strict(&message, &signature)
        .map_err(|_| invalid().into())
}

/// `submitDoubleSignEvidence`.
pub(crate) fn submit(
    c: &mut Ctx<'_>,
    call: IStaking::submitDoubleSignEvidenceCall,
) -> Result<(), Exit> {
    let IStaking::submitDoubleSignEvidenceCall {
        consensusKey: key,
        first,
        second,
    } = call;
    let owner = c.sload(layout::mapping_slot(key, U256::from(slot::KEY_OWNER)))?;
    if owner.is_zero() {
        return Err(IStaking::UnknownConsensusKey { key }.into());
    }
    let operator = word_address(owner);
    // Punished once per double sign; a validator tombstoned for downtime (slashed to nothing)
    // still answers for one.
    let double_signed =
        layout::validator_base(operator) + U256::from(layout::validator::DOUBLE_SIGNED);
    if !c.sload(double_signed)?.is_zero() {
        return Err(IStaking::Tombstoned { operator }.into());
    }
    if first.height != second.height
        || first.round != second.round
        || first.blockHash == second.blockHash
    {
        return Err(IStaking::VotesNotConflicting {}.into());
    }
    let now = c.block_number();
    let out_of_range = || IStaking::EvidenceOutOfRange {
        height: first.height,
        currentHeight: now,
    };
    if first.height > now {
        return Err(out_of_range().into());
    }
    let epoch = epoch_of(c, first.height)?.ok_or_else(out_of_range)?;
    // Age in seconds, like the unbonding period it must not outlive, counted from the epoch's
    // start (no later than the infraction), so evidence never outlives the entries it reaches.
    let age = c.timestamp().saturating_sub(
        c.sload(epoch_base(epoch) + U256::from(epoch::START_TIME))?
            .saturating_to(),
    );
    if age >= param(c, slot::MAX_EVIDENCE_AGE)?.saturating_to::<u64>() {
        return Err(out_of_range().into());
    }
    let seat_stake = c.sload(epoch_stake_slot(epoch, operator))?;
    let lost = c.sload(layout::seat_lost_slot(epoch, operator))?;
    if seat_stake.is_zero() || (!lost.is_zero() && U256::from(first.height) >= lost) {
        return Err(IStaking::NotInActiveSet {
            operator,
            height: first.height,
        }
        .into());
    }
    // Registered keys are valid points (checked by createValidator).
    let verifying_key = VerifyingKey::from_bytes(&key.0)
        .map_err(|_| Exit::Fatal(format!("stored consensus key {key} is not a point")))?;
    let chain_id = param(c, slot::CHAIN_ID)?.saturating_to::<u64>();
    verify_vote(c, &verifying_key, chain_id, &first)?;
    verify_vote(c, &verifying_key, chain_id, &second)?;

    let bps = param(c, slot::DOUBLE_SIGN_SLASH_BPS)?;
    // Out of the set at once; the slash follows, in bounded steps, starting in this call
    // (stake that left after the epoch's start was still part of the seat at the infraction).
    tombstone(c, operator)?;
    c.sstore(double_signed, U256::from(1))?;
    // Its first step is protocol work the offender sized (not charged; a block holds at most
    // one such step per seat, since the offender is tombstoned).
    let since = epoch_start(c, epoch)?;
    let offence = slashing::Offence {
        reason: SLASH_DOUBLE_SIGN,
        reporter: c.caller(),
        height: first.height,
        round: first.round,
    };
    c.unmetered(|c| slashing::start(c, operator, bps, seat_stake, since, offence))
}
