//! Double-sign evidence: two votes signed by one consensus key for different blocks at the same
//! height and round. Verified here (ed25519), then the offender is slashed, tombstoned, and the
//! reporter paid a share of the slash.

use super::{BPS, SLASH_DOUBLE_SIGN, burn, not_tombstoned, param, slash, tombstone};
use crate::{
    DELEGATION_ADDRESS, STAKING_ADDRESS,
    ctx::{Ctx, Exit, word_address},
    interfaces::IStaking,
    layout::{self, slot, validator_base},
};
use alloy::{
    primitives::{B256, U256},
    sol_types::SolEvent,
};
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
    not_tombstoned(c, operator)?;
    if first.height != second.height
        || first.round != second.round
        || first.blockHash == second.blockHash
    {
        return Err(IStaking::VotesNotConflicting {}.into());
    }
    let now = c.block_number();
    let max_age = param(c, slot::MAX_EVIDENCE_AGE)?.saturating_to::<u64>();
    if first.height > now || now - first.height > max_age {
        return Err(IStaking::EvidenceOutOfRange {
            height: first.height,
            currentHeight: now,
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
    // The slash walks the offender's unbonding and redelegation entries. The offender controls
    // how many there are, so that walk is not charged to the reporter: evidence always fits.
    let amount = c.unmetered(|c| slash(c, operator, bps, first.height))?;
    let reward = amount * param(c, slot::REPORTER_REWARD_BPS)? / U256::from(BPS);
    let reporter = c.caller();
    if !reward.is_zero() {
        c.transfer(DELEGATION_ADDRESS, reporter, reward)?;
    }
    burn(c, DELEGATION_ADDRESS, amount - reward)?;
    tombstone(c, validator_base(operator))?;
    c.emit(
        STAKING_ADDRESS,
        IStaking::ValidatorSlashed {
            operator,
            reason: SLASH_DOUBLE_SIGN,
            fractionBps: bps.saturating_to(),
            amount,
        }
        .encode_log_data(),
    )?;
    c.emit(
        STAKING_ADDRESS,
        IStaking::DoubleSignReported {
            operator,
            reporter,
            height: first.height,
            round: first.round,
            reward,
        }
        .encode_log_data(),
    )
}
