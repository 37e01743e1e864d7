// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IStaking
/// @notice ComputeChain's native staking precompile at 0x0000000000000000000000000000000000001000.
///         Validators are identified by their operator address (the account that created them).
///         Bonded stake (self + delegated) and unbonding funds are escrowed in the delegation
///         precompile's account (0x...1001); the reward pool in this precompile's own account.
///         A validator's stake is held as shares: a delegation of `shares` is worth
///         floor(shares * totalStake / totalShares), so a slash cuts every delegation (self-stake
///         included) pro rata in O(1).
interface IStaking {
    /// @notice Human-readable validator metadata.
    struct Description {
        string moniker;
        string website;
        string details;
    }

    /// @notice A validator as stored.
    struct ValidatorInfo {
        address operator;
        bytes32 consensusKey;
        /// 1 = bonded candidate, 2 = inactive (self-stake below the minimum), 3 = jailed.
        uint8 status;
        /// Worth of the operator's own shares.
        uint256 selfStake;
        uint256 totalStake;
        uint16 commissionBps;
        uint16 maxCommissionBps;
        uint16 maxChangeBps;
        uint64 commissionUpdatedAt;
        uint256 commissionUnclaimed;
        Description description;
        /// When a jailed validator may unjail without the fee (0 if never jailed).
        uint64 jailedUntil;
        /// Blocks missed within the current uptime window.
        uint256 missedBlocks;
        /// Downtime offences so far (each escalates the next slash).
        uint256 downtimeOffences;
        /// Jailed for good (double-signed, or slashed to nothing).
        bool tombstoned;
        /// Shares outstanding (all delegations, self included).
        uint256 totalShares;
    }

    /// @notice A consensus vote as signed with a validator's ed25519 consensus key: the signed
    ///         bytes are `voteMessage(height, round, blockHash)`.
    struct SignedVote {
        uint64 height;
        uint32 round;
        bytes32 blockHash;
        bytes signature;
    }

    /// @notice Chain parameters (from genesis).
    struct Params {
        uint256 minSelfStake;
        uint256 minDelegation;
        uint256 maxValidators;
        uint256 unbondingPeriod;
        uint256 blockReward;
        uint256 epochLength;
        uint256 uptimeWindow;
        uint256 minUptimeBps;
        uint256 jailTime;
        uint256 unjailFee;
        uint256 jailedUnstakePenaltyBps;
        /// Downtime slash for the first, second and third-or-later offence, basis points.
        uint256[3] downtimeSlashBps;
        uint256 doubleSignSlashBps;
        /// Share of the double-signer's own loss paid to the reporter, basis points; the rest is burned.
        uint256 reporterRewardBps;
        /// Oldest evidence accepted: seconds since the start of the epoch holding its height
        ///         (at most `unbondingPeriod`).
        uint256 maxEvidenceAge;
        /// Share of each block's base fee burned, basis points; the rest goes to the proposer's
        /// validator as reward.
        uint256 baseFeeBurnBps;
        uint256 chainId;
    }

    /// @notice A validator was created with `selfStake` escrowed.
    event ValidatorCreated(address indexed operator, bytes32 indexed consensusKey, uint256 selfStake, uint16 commissionBps);
    /// @notice A validator's description or commission changed.
    event ValidatorEdited(address indexed operator, uint16 commissionBps);
    /// @notice Self-stake added.
    event StakeAdded(address indexed operator, uint256 amount);
    /// @notice Self-stake moved into unbonding until `completionTime` (`penalty` of it burned).
    event StakeRemoved(address indexed operator, uint256 amount, uint64 completionTime, uint256 penalty);
    /// @notice A block credited `amount` to `operator`'s validator, `commission` of it to the operator.
    event RewardsDistributed(address indexed operator, uint256 amount, uint256 commission);
    /// @notice A validator signed too few of the last `uptimeWindow` blocks and was jailed.
    event ValidatorJailed(address indexed operator, uint256 missedBlocks, uint64 jailedUntil);
    /// @notice `amount` of `operator`'s stake (bonded, and unbonding entries created at or after the
    ///         infraction) was slashed by `fractionBps`. `reason`: 1 downtime, 2 double sign.
    event ValidatorSlashed(address indexed operator, uint8 reason, uint16 fractionBps, uint256 amount);
    /// @notice `reporter` proved that `operator` signed two blocks at `height`/`round` and received
    ///         `reward` of the slash.
    event DoubleSignReported(address indexed operator, address indexed reporter, uint64 height, uint32 round, uint256 reward);
    /// @notice A jailed validator returned (`fee` burned if it left jail early).
    event ValidatorUnjailed(address indexed operator, uint256 fee);
    /// @notice A block's reward went to a proposer holding no seat (jailed, tombstoned or not a
    ///         validator), and was burned.
    event RewardsBurned(address indexed proposer, uint256 amount);
    /// @notice A new epoch began with `validators` seats filled.
    event EpochAdvanced(uint256 indexed epoch, uint256 validators);

    /// @notice The caller has no validator.
    error NotValidator(address operator);
    /// @notice The caller already has a validator.
    error ValidatorExists(address operator);
    /// @notice The consensus key is zero or another validator's.
    error InvalidConsensusKey(bytes32 key);
    /// @notice Self-stake below the minimum.
    error SelfStakeTooLow(uint256 amount, uint256 minimum);
    /// @notice Commission rates out of order or above 100%.
    error InvalidCommission(uint16 rate, uint16 maxRate, uint16 maxChange);
    /// @notice A commission change larger than the validator's daily maximum, or within a day of the last.
    error CommissionChangeNotAllowed(uint16 current, uint16 requested);
    /// @notice More than is staked.
    error InsufficientStake(uint256 requested, uint256 available);
    /// @notice A zero amount.
    error ZeroAmount();
    /// @notice A description field longer than allowed.
    error DescriptionTooLong(uint256 length, uint256 max);
    /// @notice Value sent to a non-payable method.
    error NonPayable();
    /// @notice A state change requested in a static call.
    error StaticCallNotAllowed();
    /// @notice Called through DELEGATECALL or CALLCODE.
    error DelegateCallNotAllowed();
    /// @notice Only the protocol may call this.
    error Unauthorized(address caller);
    /// @notice No such method.
    error UnknownSelector(bytes4 selector);
    /// @notice The validator is not jailed.
    error NotJailed(address operator);
    /// @notice The validator is jailed for good.
    error Tombstoned(address operator);
    /// @notice No validator has this consensus key.
    error UnknownConsensusKey(bytes32 key);
    /// @notice The two votes are not for different blocks at the same height and round.
    error VotesNotConflicting();
    /// @notice A vote's signature is not the consensus key's.
    error InvalidVoteSignature(uint64 height, uint32 round, bytes32 blockHash);
    /// @notice The evidence is for a future height, or the epoch holding it began more than
    ///         `maxEvidenceAge` seconds ago.
    error EvidenceOutOfRange(uint64 height, uint64 currentHeight);
    /// @notice The offender held no seat in the active set of the epoch holding `height`.
    error NotInActiveSet(address operator, uint64 height);
    /// @notice An escrow cannot pay `amount` (corrupt or overridden state): nothing changed.
    error EscrowShortfall(address escrow, uint256 amount);
    /// @notice A slash of `operator` is in progress (it walks the offender's delegators a
    ///         bounded number per block): stake in its reach cannot move until it finishes.
    error SlashPending(address operator);
    /// @notice `validator` already has `max` open unbonding (or redelegation) entries of the
    ///         caller, or the caller has `max` in all.
    error TooManyEntries(address validator, uint256 max);
    /// @notice `proof` is not the consensus key's ed25519 signature over
    ///         `popMessage(operator)`.
    error InvalidProofOfPossession(bytes32 key);
    /// @notice Leaving jail before `jailedUntil` needs exactly the unjail fee as value.
    error UnjailFeeRequired(uint64 jailedUntil, uint256 fee);

    /// @notice Registers the caller as a validator with `msg.value` as self-stake.
    ///         `proofOfPossession` is the consensus key's ed25519 signature over
    ///         `popMessage(msg.sender)`, so no one can register a key they do not hold.
    function createValidator(
        bytes32 consensusKey,
        uint16 commissionBps,
        uint16 maxCommissionBps,
        uint16 maxChangeBps,
        Description calldata description,
        bytes calldata proofOfPossession
    ) external payable;
    /// @notice Updates the description and (at most once a day, by at most `maxChangeBps`) the commission.
    function editValidator(Description calldata description, uint16 commissionBps) external;
    /// @notice Adds `msg.value` to the caller's self-stake.
    function addStake() external payable;
    /// @notice Moves `amount` of self-stake into unbonding (paid out by IDelegation.withdrawUnbonded).
    ///         While jailed for downtime, and until a full uptime window is served after it,
    ///         `jailedUnstakePenaltyBps` of it is burned.
    function unstake(uint256 amount) external;
    /// @notice Leaves jail: free after `jailedUntil`, earlier for `unjailFee` (sent as value, burned).
    ///         Tombstoned validators never leave.
    function unjail() external payable;
    /// @notice Evidence that `consensusKey` signed two different blocks at the same height and
    ///         round, while it held a seat in that height's epoch (not yet jailed in it). The
    ///         offender is slashed `doubleSignSlashBps` of the seat's recorded stake (first from
    ///         unbonding and redelegation entries created since the epoch's start, the rest
    ///         from bonded stake), jailed for good, and the caller receives `reporterRewardBps`
    ///         of the offender's own loss (self-stake and its own entries), so reporting oneself
    ///         recovers a tenth of one's loss and none of the delegators'; the rest is burned. Anyone may call. The slash
    ///         walks the offender's delegators 32 per step (this call, then each block): until
    ///         it finishes, stake in its reach cannot move (`SlashPending`).
    function submitDoubleSignEvidence(bytes32 consensusKey, SignedVote calldata first, SignedVote calldata second) external;
    /// @notice The bytes a consensus key signs for a vote: "ComputeChain/vote/v1" followed by
    ///         chainId (8 bytes), height (8), round (4) and blockHash (32), big-endian.
    function voteMessage(uint64 height, uint32 round, bytes32 blockHash) external view returns (bytes memory);
    /// @notice The bytes a consensus key signs to prove possession for `operator`:
    ///         "ComputeChain/pop/v1" followed by chainId (8 bytes, big-endian) and the operator
    ///         address (20).
    function popMessage(address operator) external view returns (bytes memory);
    /// @notice A validator; reverts with NotValidator if none.
    function validator(address operator) external view returns (ValidatorInfo memory);
    /// @notice Operators with `status` (0 = any), paginated in creation order.
    function validators(uint8 status, uint256 offset, uint256 limit) external view returns (address[] memory);
    /// @notice The active set of the current epoch: the top `maxValidators` bonded validators by
    ///         total stake (ties: earlier first), computed at the epoch's first block; a member
    ///         jailed during the epoch leaves it at once.
    function activeSet() external view returns (address[] memory);
    /// @notice The current epoch (1 from genesis; advanced at every block whose number is a
    ///         multiple of `epochLength`).
    function currentEpoch() external view returns (uint256);
    /// @notice Rewards (block reward + fees) credited to `operator`'s validator during `epoch`.
    function rewardHistory(address operator, uint256 epoch) external view returns (uint256);
    /// @notice Total bonded stake (self + delegated) of all validators.
    function totalStake() external view returns (uint256);
    /// @notice Total in unbonding entries not yet withdrawn.
    function totalUnbonding() external view returns (uint256);
    /// @notice Everything the staking system has burned: slashes, jailed-unstake penalties, unjail fees.
    function totalBurned() external view returns (uint256);
    /// @notice Chain parameters.
    function params() external view returns (Params memory);
    /// @notice Protocol only (called by the block producer as 0xff..fe): credits `amount`, already
    ///         in this account, to `proposer`'s commission and delegators.
    function distributeRewards(address proposer, uint256 amount) external;
    /// @notice Protocol only: starts the next epoch and fixes its active set.
    function advanceEpoch() external;
    /// @notice Protocol only: the active validators that signed this block (from the consensus
    ///         certificate); the others count a missed block in their uptime window.
    function recordSigners(address[] calldata signers) external;
}
