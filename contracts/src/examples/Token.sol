// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Token
/// @notice Minimal ERC-20 used by the execution benchmark (`computechain bench`): `balanceOf` is
///         the first state variable, so a holder's balance lives at keccak256(holder . 0).
contract Token {
    /// @notice Balances by holder (storage slot 0).
    mapping(address => uint256) public balanceOf;
    /// @notice Allowances by owner and spender (slot 1).
    mapping(address => mapping(address => uint256)) public allowance;
    /// @notice Total supply (slot 2).
    uint256 public totalSupply;

    /// @notice ERC-20 transfer event.
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// @notice ERC-20 approval event.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice Balance too low.
    error InsufficientBalance(uint256 balance, uint256 needed);
    /// @notice Allowance too low.
    error InsufficientAllowance(uint256 allowance, uint256 needed);

    /// @notice Mints `supply` to the deployer.
    constructor(uint256 supply) {
        balanceOf[msg.sender] = supply;
        totalSupply = supply;
        emit Transfer(address(0), msg.sender, supply);
    }

    /// @notice Moves `value` from the caller to `to`.
    function transfer(address to, uint256 value) external returns (bool) {
        _move(msg.sender, to, value);
        return true;
    }

    /// @notice Lets `spender` move up to `value` of the caller's tokens.
    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    /// @notice Moves `value` from `from` to `to` using the caller's allowance.
    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed < value) revert InsufficientAllowance(allowed, value);
        allowance[from][msg.sender] = allowed - value;
        _move(from, to, value);
        return true;
    }

    function _move(address from, address to, uint256 value) private {
        uint256 balance = balanceOf[from];
        if (balance < value) revert InsufficientBalance(balance, value);
        unchecked {
            balanceOf[from] = balance - value;
        }
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }
}
