// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IDelegation
/// @notice ComputeChain's native delegation precompile at 0x0000000000000000000000000000000000001001.
///         Bonded and unbonding funds (self-stake included) are escrowed in this precompile's
///         own account. A delegation holds shares of its validator's stake, worth
///         floor(shares * totalStake / totalShares); a slash lowers totalStake, so every delegation
///         loses the same fraction. Rewards follow the F1 method: each validator keeps a cumulative
///         reward-per-share index (scaled by 1e36); a delegation earns
///         floor(shares * (index - snapshot) / 1e36). The index remainder carries over to the next
///         distribution; what flooring leaves stays in the reward pool.
interface IDelegation {
    /// @notice An unbonding entry: `amount` left of `initialAmount` (slashes for infractions at
    ///         or before `creationHeight` cut it by a fraction of `initialAmount`).
    struct Unbonding {
        address validator;
        uint256 amount;
        uint256 initialAmount;
        uint64 completionTime;
        uint64 creationHeight;
    }

    /// @notice A redelegation, kept until `completionTime` (one unbonding period): a slash of
    ///         `srcValidator` for an infraction at or before `creationHeight` cuts the same
    ///         fraction of `dstShares` from the delegation at `dstValidator`.
    struct Redelegation {
        address srcValidator;
        address dstValidator;
        uint256 dstShares;
        uint256 initialAmount;
        uint64 creationHeight;
        uint64 completionTime;
    }

    /// @notice `amount` delegated to `validator`.
    event Delegated(address indexed delegator, address indexed validator, uint256 amount);
    /// @notice `amount` moved into unbonding until `completionTime`.
    event Undelegated(address indexed delegator, address indexed validator, uint256 amount, uint64 completionTime);
    /// @notice Matured unbonding entries paid out.
    event Withdrawn(address indexed delegator, uint256 amount);
    /// @notice Rewards paid out.
    event RewardsClaimed(address indexed delegator, address indexed validator, uint256 amount);
    /// @notice `amount` moved from `srcValidator` to `dstValidator` without unbonding.
    event Redelegated(address indexed delegator, address indexed srcValidator, address indexed dstValidator, uint256 amount);
    /// @notice `amount` of an unbonding entry bonded again to `validator`.
    event UnbondingCancelled(address indexed delegator, address indexed validator, uint256 amount, uint64 creationHeight);

    /// @notice No such validator.
    error NotValidator(address validator);
    /// @notice Below the minimum delegation.
    error DelegationTooLow(uint256 amount, uint256 minimum);
    /// @notice More than is delegated.
    error InsufficientDelegation(uint256 requested, uint256 available);
    /// @notice A zero amount.
    error ZeroAmount();
    /// @notice Nothing matured to withdraw, or no rewards to claim.
    error NothingToWithdraw();
    /// @notice Source and destination are the same validator, or the source is the caller's own.
    error InvalidRedelegation(address srcValidator, address dstValidator);
    /// @notice Stake redelegated to `validator` cannot move on until that redelegation completes.
    error TransitiveRedelegation(address validator);
    /// @notice No unbonding entry of `validator` created at `creationHeight` holds `amount`.
    error UnbondingNotFound(address validator, uint256 amount, uint64 creationHeight);
    /// @notice Value sent to a non-payable method.
    error NonPayable();
    /// @notice A state change requested in a static call.
    error StaticCallNotAllowed();
    /// @notice Called through DELEGATECALL or CALLCODE.
    error DelegateCallNotAllowed();
    /// @notice No such method.
    error UnknownSelector(bytes4 selector);
    /// @notice An escrow cannot pay `amount` (corrupt or overridden state): nothing changed.
    error EscrowShortfall(address escrow, uint256 amount);
    /// @notice A slash of `operator` is in progress (it walks the offender's delegators a
    ///         bounded number per block): stake in its reach cannot move until it finishes.
    error SlashPending(address operator);
    /// @notice `validator` already has `max` open unbonding (or redelegation) entries of the
    ///         caller, or the caller has `max` in all.
    error TooManyEntries(address validator, uint256 max);

    /// @notice Delegates `msg.value` to `validator`.
    function delegate(address validator) external payable;
    /// @notice Moves `amount` of the caller's delegation into unbonding.
    function undelegate(address validator, uint256 amount) external;
    /// @notice Moves `amount` of the caller's delegation from `srcValidator` to `dstValidator` at
    ///         once; the move stays answerable for `srcValidator`'s earlier infractions for one
    ///         unbonding period (see `Redelegation`).
    function redelegate(address srcValidator, address dstValidator, uint256 amount) external;
    /// @notice Bonds `amount` of a not yet matured unbonding entry (found by validator and
    ///         creation height) to its validator again.
    function cancelUnbonding(address validator, uint256 amount, uint64 creationHeight) external;
    /// @notice Pays out every matured unbonding entry of the caller; returns the amount.
    function withdrawUnbonded() external returns (uint256);
    /// @notice Pays out the caller's rewards at `validator` (and its commission if the caller operates it).
    function claimRewards(address validator) external returns (uint256);
    /// @notice Pays out the caller's rewards at up to `maxValidators` of the validators it
    ///         delegated to (in delegation order); returns the total.
    function claimAllRewards(uint256 maxValidators) external returns (uint256);
    /// @notice Stake delegated by `delegator` to `validator` (the worth of its shares; for the
    ///         operator itself, its self-stake).
    function delegation(address delegator, address validator) external view returns (uint256);
    /// @notice Shares `delegator` holds of `validator`'s stake.
    function delegationShares(address delegator, address validator) external view returns (uint256);
    /// @notice Rewards `delegator` could claim from `validator` now.
    function pendingRewards(address delegator, address validator) external view returns (uint256);
    /// @notice Validators `delegator` has delegated to, and the amounts.
    function delegationsOf(address delegator) external view returns (address[] memory validators, uint256[] memory amounts);
    /// @notice The caller's unbonding entries.
    function unbondingOf(address delegator) external view returns (Unbonding[] memory);
    /// @notice `delegator`'s redelegations that have not completed yet.
    function redelegationsOf(address delegator) external view returns (Redelegation[] memory);
}
