// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Counter
/// @notice Minimal example used by the README's Foundry walkthrough and the end-to-end tests:
///         state, an event, a custom error and a payable path.
contract Counter {
    /// @notice Current value.
    uint256 public number;
    /// @notice Who last changed the value.
    address public lastCaller;

    /// @notice Emitted on every change.
    event NumberChanged(address indexed caller, uint256 oldValue, uint256 newValue);

    /// @notice Setting a value above `max`.
    error TooLarge(uint256 value, uint256 max);

    /// @notice Largest accepted value.
    uint256 public constant MAX = 1_000_000;

    /// @notice Sets the value; reverts with `TooLarge` above `MAX`.
    function setNumber(uint256 value) public {
        if (value > MAX) revert TooLarge(value, MAX);
        emit NumberChanged(msg.sender, number, value);
        number = value;
        lastCaller = msg.sender;
    }

    /// @notice Adds one.
    function increment() public {
        setNumber(number + 1);
    }

    /// @notice Reverts with a reason string (for revert-data tests).
    function fail() public pure {
        revert("counter: always fails");
    }

    /// @notice Accepts a deposit and records the sender.
    function deposit() public payable {
        lastCaller = msg.sender;
    }
}
