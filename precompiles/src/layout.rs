//! Storage layout of the staking system. All state lives in the staking precompile's account
//! (`0x…1000`), laid out as this Solidity contract would lay it out, so `eth_getStorageAt` and
//! explorers can read it:
//!
//! ```solidity
//! contract StakingStorage {
//!     uint256 minSelfStake;        // slot 0
//!     uint256 minDelegation;       // slot 1
//!     uint256 maxValidators;       // slot 2
//!     uint256 unbondingPeriod;     // slot 3 (seconds)
//!     uint256 blockReward;         // slot 4 (wei per block)
//!     uint256 totalBonded;         // slot 5
//!     uint256 totalUnbonding;      // slot 6
//!     uint256 epochLength;         // slot 7 (blocks)
//!     uint256 currentEpoch;        // slot 8
//!     uint256 totalBurned;         // slot 9 (slashes, penalties, unjail fees)
//!     uint256 uptimeWindow;        // slot 20 (blocks, at most 256)
//!     uint256 minUptimeBps;        // slot 21
//!     uint256 jailTime;            // slot 22 (seconds)
//!     uint256 unjailFee;           // slot 23 (wei)
//!     uint256 jailedUnstakePenaltyBps; // slot 24
//!     uint256[3] downtimeSlashBps; // slots 25..27 (first, second, third-or-later offence)
//!     uint256 doubleSignSlashBps;  // slot 28
//!     uint256 reporterRewardBps;   // slot 29
//!     uint256 maxEvidenceAge;      // slot 30 (seconds since the start of the evidence's epoch)
//!     uint256 baseFeeBurnBps;      // slot 31
//!     uint256 chainId;             // slot 32 (bound into signed votes)
//!     mapping(address => Validator) validators;                          // slot 10
//!     mapping(bytes32 => address) consensusKeyOwner;                     // slot 11
//!     address[] validatorList;                                            // slot 12 (every validator
//!                                                                         //   ever created; views only)
//!     mapping(address => mapping(address => Delegation)) delegations;    // slot 13 [delegator][validator]
//!     mapping(address => Unbonding[]) unbondings;                        // slot 14
//!     mapping(address => address[]) delegatedTo;                         // slot 15
//!     address[] epochSet;                                                 // slot 16
//!     mapping(address => mapping(uint256 => uint256)) rewardHistory;     // slot 17 [operator][epoch]
//!     mapping(address => address[]) unbondingDelegators;                  // slot 18 [operator]: who has
//!                                                                         //   unbonding entries from it
//!     mapping(address => mapping(address => bool)) unbondingListed;      // slot 19 [operator][delegator]
//!     mapping(address => Redelegation[]) redelegations;                  // slot 33 [delegator]
//!     mapping(uint256 => Epoch) epochs;                                   // slot 34 [epoch]
//!     mapping(uint256 => mapping(address => uint256)) epochStake;        // slot 35 [epoch][operator]:
//!                                                                         //   seat stake fixed at the boundary
//!     mapping(address => mapping(address => uint256)) unbondingEntries;  // slot 36 [delegator][validator]
//!     mapping(address => mapping(address => uint256)) redelegationEntries; // slot 37 [delegator][src]
//!     address[] candidates;                                               // slot 38: the BONDED validators,
//!                                                                         //   what each epoch boundary walks
//!     mapping(address => SlashJob) slashJobs;                             // slot 39 [operator]
//!     address[] slashQueue;                                               // slot 40: jobs in progress
//!     uint256 totalSlashing;                                              // slot 41: cut from entries by
//!                                                                         //   jobs in progress, in the escrow
//!     uint256 slashQueueNext;                                             // slot 42: round-robin position
//!     mapping(uint256 => mapping(address => uint256)) seatLostAt;        // slot 43 [epoch][operator]: first
//!                                                                         //   height without the seat (jailed)
//! }
//! struct SlashJob { bool active; uint256 fractionBps; uint256 target; uint256 since;
//!                   uint256 cursor; uint256 entriesCut; uint256 ownCut; address reporter;
//!                   uint256 reason; uint256 height; uint256 round; uint256 startTime; }
//! struct Epoch { uint256 startHeight; uint256 startTime; } // first block it governs; boundary time
//! struct Validator {
//!     uint256 status;               // +0: 0 none, 1 bonded candidate, 2 inactive
//!     bytes32 consensusKey;         // +1
//!     uint256 commissionBps;        // +2
//!     uint256 maxCommissionBps;     // +3
//!     uint256 maxChangeBps;         // +4
//!     uint256 commissionUpdatedAt;  // +5
//!     uint256 totalShares;          // +6  shares of all delegations (self-stake included)
//!     uint256 totalStake;           // +7  tokens those shares are worth
//!     uint256 rewardIndex;          // +8  cumulative reward per share, scaled by 1e36
//!     uint256 rewardRemainder;      // +9  numerator carried to the next distribution
//!     uint256 commissionUnclaimed;  // +10
//!     bytes moniker;                // +11 (always the long form: length at the slot, data at keccak(slot))
//!     bytes website;                // +12
//!     bytes details;                // +13
//!     uint256 jailedUntil;          // +14
//!     uint256 missedBitmap;         // +15 bit (block % uptimeWindow) set: missed
//!     uint256 missedCount;          // +16
//!     uint256 windowFilled;         // +17 blocks observed in the window, up to uptimeWindow
//!     uint256 downtimeOffences;     // +18
//!     bool tombstoned;              // +19 jailed for good
//!     bool penaltyDue;              // +20 jailed for downtime, no full window served since
//!     uint256 registryIndex;        // +21 position in validatorList (creation order)
//!     uint256 candidatePosition;    // +22 1-based position in candidates; 0 when not BONDED
//!     bool doubleSigned;            // +23 punished for a double sign (once)
//! }
//! struct Delegation { uint256 shares; uint256 indexSnapshot; uint256 unclaimed; bool listed; }
//! struct Unbonding { address validator; uint256 amount; uint256 completionTime;
//!                    uint256 creationHeight; uint256 initialAmount; }
//! struct Redelegation { address src; address dst; uint256 dstShares; uint256 initialAmount;
//!                       uint256 creationHeight; uint256 completionTime; }
//! ```

use alloy::primitives::{Address, B256, U256, keccak256};

/// Slots of the scalar state.
pub mod slot {
    /// `minSelfStake`.
    pub const MIN_SELF_STAKE: u64 = 0;
    /// `minDelegation`.
    pub const MIN_DELEGATION: u64 = 1;
    /// `maxValidators`.
    pub const MAX_VALIDATORS: u64 = 2;
    /// `unbondingPeriod`.
    pub const UNBONDING_PERIOD: u64 = 3;
    /// `blockReward`.
    pub const BLOCK_REWARD: u64 = 4;
    /// `totalBonded`.
    pub const TOTAL_BONDED: u64 = 5;
    /// `totalUnbonding`.
    pub const TOTAL_UNBONDING: u64 = 6;
    /// `validators` mapping.
    pub const VALIDATORS: u64 = 10;
    /// `consensusKeyOwner` mapping.
    pub const KEY_OWNER: u64 = 11;
    /// `validatorList` array.
    pub const VALIDATOR_LIST: u64 = 12;
    /// `delegations` mapping.
    pub const DELEGATIONS: u64 = 13;
    /// `unbondings` mapping.
    pub const UNBONDINGS: u64 = 14;
    /// `delegatedTo` mapping.
    pub const DELEGATED_TO: u64 = 15;
    /// `epochLength`.
    pub const EPOCH_LENGTH: u64 = 7;
    /// `currentEpoch`.
    pub const CURRENT_EPOCH: u64 = 8;
    /// `totalBurned`.
    pub const TOTAL_BURNED: u64 = 9;
    /// `unbondingDelegators` mapping.
    pub const UNBONDING_DELEGATORS: u64 = 18;
    /// `unbondingListed` mapping.
    pub const UNBONDING_LISTED: u64 = 19;
    /// `redelegations` mapping.
    pub const REDELEGATIONS: u64 = 33;
    /// `epochSet` array: the active set of the current epoch (members leave it when jailed).
    pub const EPOCH_SET: u64 = 16;
    /// `epochs` mapping.
    pub const EPOCHS: u64 = 34;
    /// `epochStake` mapping.
    pub const EPOCH_STAKE: u64 = 35;
    /// `unbondingEntries` mapping.
    pub const UNBONDING_ENTRIES: u64 = 36;
    /// `redelegationEntries` mapping.
    pub const REDELEGATION_ENTRIES: u64 = 37;
    /// `candidates` array.
    pub const CANDIDATES: u64 = 38;
    /// `slashJobs` mapping.
    pub const SLASH_JOBS: u64 = 39;
    /// `slashQueue` array.
    pub const SLASH_QUEUE: u64 = 40;
    /// `totalSlashing`.
    pub const TOTAL_SLASHING: u64 = 41;
    /// `slashQueueNext`.
    pub const SLASH_QUEUE_NEXT: u64 = 42;
    /// `seatLostAt` mapping.
    pub const SEAT_LOST_AT: u64 = 43;
    /// `rewardHistory` mapping.
    pub const REWARD_HISTORY: u64 = 17;
    /// `uptimeWindow`.
    pub const UPTIME_WINDOW: u64 = 20;
    /// `minUptimeBps`.
    pub const MIN_UPTIME_BPS: u64 = 21;
    /// `jailTime`.
    pub const JAIL_TIME: u64 = 22;
    /// `unjailFee`.
    pub const UNJAIL_FEE: u64 = 23;
    /// `jailedUnstakePenaltyBps`.
    pub const JAILED_UNSTAKE_PENALTY_BPS: u64 = 24;
    /// `downtimeSlashBps[0]`; offence `n` (0-based, capped at 2) is at `+ n`.
    pub const DOWNTIME_SLASH_BPS: u64 = 25;
    /// `doubleSignSlashBps`.
    pub const DOUBLE_SIGN_SLASH_BPS: u64 = 28;
    /// `reporterRewardBps`.
    pub const REPORTER_REWARD_BPS: u64 = 29;
    /// `maxEvidenceAge`.
    pub const MAX_EVIDENCE_AGE: u64 = 30;
    /// `baseFeeBurnBps`.
    pub const BASE_FEE_BURN_BPS: u64 = 31;
    /// `chainId`.
    pub const CHAIN_ID: u64 = 32;
}

/// Field offsets in `Validator`.
pub mod validator {
    /// Status.
    pub const STATUS: u64 = 0;
    /// Consensus key.
    pub const KEY: u64 = 1;
    /// Commission.
    pub const COMMISSION: u64 = 2;
    /// Maximum commission.
    pub const MAX_COMMISSION: u64 = 3;
    /// Maximum change per day.
    pub const MAX_CHANGE: u64 = 4;
    /// Time of the last commission change.
    pub const COMMISSION_AT: u64 = 5;
    /// Shares of all delegations.
    pub const TOTAL_SHARES: u64 = 6;
    /// Self + delegated stake.
    pub const TOTAL_STAKE: u64 = 7;
    /// F1 reward index (per share).
    pub const INDEX: u64 = 8;
    /// F1 remainder.
    pub const REMAINDER: u64 = 9;
    /// Unclaimed commission.
    pub const COMMISSION_UNCLAIMED: u64 = 10;
    /// Moniker string.
    pub const MONIKER: u64 = 11;
    /// Website string.
    pub const WEBSITE: u64 = 12;
    /// Details string.
    pub const DETAILS: u64 = 13;
    /// End of the jail time.
    pub const JAILED_UNTIL: u64 = 14;
    /// Missed-block bitmap of the uptime window.
    pub const MISSED_BITMAP: u64 = 15;
    /// Missed blocks in the window.
    pub const MISSED_COUNT: u64 = 16;
    /// Blocks observed in the window.
    pub const WINDOW_FILLED: u64 = 17;
    /// Downtime offences so far.
    pub const DOWNTIME_OFFENCES: u64 = 18;
    /// Jailed for good.
    pub const TOMBSTONED: u64 = 19;
    /// Jailed for downtime and not yet through a full uptime window since: unstaking pays the
    /// jailed-unstake penalty.
    pub const PENALTY_DUE: u64 = 20;
    /// Position in `validatorList`: creation order, the active set's tie-break.
    pub const REGISTRY_INDEX: u64 = 21;
    /// 1-based position in `candidates`; 0 when not BONDED.
    pub const CANDIDATE_POSITION: u64 = 22;
    /// Punished for a double sign: further evidence is refused.
    pub const DOUBLE_SIGNED: u64 = 23;
}

/// Fields of a `SlashJob`, and its size in slots.
pub mod slash_job {
    /// Whether the job is in progress.
    pub const ACTIVE: u64 = 0;
    /// Slashed fraction, basis points.
    pub const FRACTION: u64 = 1;
    /// Amount to slash: the fraction of the seat's recorded stake.
    pub const TARGET: u64 = 2;
    /// Entries created at or after this height are in reach.
    pub const SINCE: u64 = 3;
    /// Next delegator to walk in `unbondingDelegators[operator]`.
    pub const CURSOR: u64 = 4;
    /// Cut from entries so far.
    pub const ENTRIES_CUT: u64 = 5;
    /// Cut from the operator's own entries so far.
    pub const OWN_CUT: u64 = 6;
    /// Reporter of a double sign.
    pub const REPORTER: u64 = 7;
    /// `ValidatorSlashed.reason`.
    pub const REASON: u64 = 8;
    /// Height of the double-signed votes.
    pub const HEIGHT: u64 = 9;
    /// Round of the double-signed votes.
    pub const ROUND: u64 = 10;
    /// When the job started: entries unmatured then stay in reach until it ends.
    pub const START_TIME: u64 = 11;
    /// Slots per job.
    pub const SIZE: u64 = 12;
}

/// Fields of an `Epoch`.
pub mod epoch {
    /// First block the epoch's set governs.
    pub const START_HEIGHT: u64 = 0;
    /// Timestamp of the boundary block that fixed the set.
    pub const START_TIME: u64 = 1;
}

/// Field offsets in `Delegation`.
pub mod delegation {
    /// Shares of the validator's stake.
    pub const SHARES: u64 = 0;
    /// Reward index at the last settlement.
    pub const SNAPSHOT: u64 = 1;
    /// Settled, unclaimed rewards.
    pub const UNCLAIMED: u64 = 2;
    /// Whether the validator is in the delegator's `delegatedTo` list.
    pub const LISTED: u64 = 3;
}

/// Fields of an `Unbonding` entry, and its size in slots.
pub mod unbonding {
    /// Validator.
    pub const VALIDATOR: u64 = 0;
    /// Amount.
    pub const AMOUNT: u64 = 1;
    /// Completion time.
    pub const COMPLETION: u64 = 2;
    /// Creation height.
    pub const HEIGHT: u64 = 3;
    /// Amount at creation (slashes are fractions of it).
    pub const INITIAL: u64 = 4;
    /// Slots per entry.
    pub const SIZE: u64 = 5;
}

/// Fields of a `Redelegation` entry (kept for the unbonding period, so a slash of the source for
/// an earlier infraction still reaches the moved stake), and its size in slots.
pub mod redelegation {
    /// Source validator.
    pub const SRC: u64 = 0;
    /// Destination validator.
    pub const DST: u64 = 1;
    /// Shares received at the destination (what a slash of the source cuts from).
    pub const DST_SHARES: u64 = 2;
    /// Amount moved.
    pub const INITIAL: u64 = 3;
    /// Creation height.
    pub const HEIGHT: u64 = 4;
    /// Completion time.
    pub const COMPLETION: u64 = 5;
    /// Slots per entry.
    pub const SIZE: u64 = 6;
}

/// Status values.
pub mod status {
    /// No validator.
    pub const NONE: u64 = 0;
    /// Bonded candidate for the active set.
    pub const BONDED: u64 = 1;
    /// Self-stake below the minimum: out of the active set.
    pub const INACTIVE: u64 = 2;
    /// Jailed (downtime or double sign): out of the active set until unjailed, or for good if
    /// tombstoned.
    pub const JAILED: u64 = 3;
}

/// Scale of the F1 reward index.
pub fn reward_scale() -> U256 {
    U256::from(10u64).pow(U256::from(36))
}

/// Longest description field, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 280;

/// Most open unbonding entries per (delegator, validator), and redelegation entries per
/// (delegator, source): Cosmos's `MaxEntries`.
pub const MAX_ENTRIES_PER_VALIDATOR: u64 = 7;

/// Most entries in one delegator's unbonding list, and in its redelegation list: bounds every
/// walk over them (withdrawal, slashing) to a fixed cost.
pub const MAX_ENTRIES_PER_DELEGATOR: u64 = 64;

/// `keccak256(key . base)`: the slot of `mapping[key]` at `base`.
pub fn mapping_slot(key: B256, base: U256) -> U256 {
    let mut preimage = [0u8; 64];
    preimage[..32].copy_from_slice(key.as_slice());
    preimage[32..].copy_from_slice(&base.to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(preimage).0)
}

/// The slot of `mapping[address]` at `base`.
pub fn address_slot(address: Address, base: U256) -> U256 {
    mapping_slot(address.into_word(), base)
}

/// Slot `index * size` past the data start of the dynamic array at `base`.
pub fn array_slot(base: U256, index: u64, size: u64) -> U256 {
    U256::from_be_bytes(keccak256(base.to_be_bytes::<32>()).0) + U256::from(index * size)
}

/// Base slot of `validators[operator]`.
pub fn validator_base(operator: Address) -> U256 {
    address_slot(operator, U256::from(slot::VALIDATORS))
}

/// Base slot of `delegations[delegator][validator]`.
pub fn delegation_base(delegator: Address, validator: Address) -> U256 {
    address_slot(
        validator,
        address_slot(delegator, U256::from(slot::DELEGATIONS)),
    )
}

/// Base slot of `epochs[epoch]`.
pub fn epoch_base(epoch: U256) -> U256 {
    mapping_slot(B256::from(epoch), U256::from(slot::EPOCHS))
}

/// Slot of `epochStake[epoch][operator]`.
pub fn epoch_stake_slot(epoch: U256, operator: Address) -> U256 {
    address_slot(
        operator,
        mapping_slot(B256::from(epoch), U256::from(slot::EPOCH_STAKE)),
    )
}

/// Slot of `seatLostAt[epoch][operator]`.
pub fn seat_lost_slot(epoch: U256, operator: Address) -> U256 {
    address_slot(
        operator,
        mapping_slot(B256::from(epoch), U256::from(slot::SEAT_LOST_AT)),
    )
}

/// Reads state slots (the precompile's own journal, or the node's database).
pub trait Slots {
    /// Error of a read.
    type Error;
    /// The value at `slot` of the staking account.
    fn load(&mut self, slot: U256) -> Result<U256, Self::Error>;
}

/// The active set of the current epoch, with each seat's stake as fixed at the epoch's boundary
/// (delegations inside the epoch do not move it). The consensus engine reads it through this
/// function, without an EVM call.
pub fn epoch_set<S: Slots>(s: &mut S) -> Result<Vec<(Address, U256)>, S::Error> {
    let epoch = s.load(U256::from(slot::CURRENT_EPOCH))?;
    let base = U256::from(slot::EPOCH_SET);
    let len = s.load(base)?.saturating_to::<u64>();
    (0..len)
        .map(|i| {
            let operator = Address::from_word(B256::from(s.load(array_slot(base, i, 1))?));
            Ok((operator, s.load(epoch_stake_slot(epoch, operator))?))
        })
        .collect()
}

/// The set the next epoch would get now: the top `maxValidators` bonded validators by total
/// stake, ties broken by creation order. Walks only the candidates (the BONDED validators), each
/// backed by at least `minSelfStake`, never the validators that left.
pub fn next_active_set<S: Slots>(s: &mut S) -> Result<Vec<(Address, U256)>, S::Error> {
    let list = U256::from(slot::CANDIDATES);
    let count = s.load(list)?.saturating_to::<u64>();
    let max = s
        .load(U256::from(slot::MAX_VALIDATORS))?
        .saturating_to::<usize>();
    let mut candidates = Vec::new();
    for i in 0..count {
        let operator = Address::from_word(B256::from(s.load(array_slot(list, i, 1))?));
        let base = validator_base(operator);
        let stake = s.load(base + U256::from(validator::TOTAL_STAKE))?;
        let created = s.load(base + U256::from(validator::REGISTRY_INDEX))?;
        candidates.push((operator, stake, created));
    }
    candidates.sort_by_key(|c| (std::cmp::Reverse(c.1), c.2));
    candidates.truncate(max);
    Ok(candidates
        .into_iter()
        .map(|(a, stake, _)| (a, stake))
        .collect())
}
