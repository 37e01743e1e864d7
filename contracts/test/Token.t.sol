// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Token} from "../src/examples/Token.sol";

interface Vm {
    function load(address target, bytes32 slot) external view returns (bytes32);
}

Vm constant VM = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

contract TokenTest {
    Token internal token;

    function setUp() public {
        token = new Token(1000);
    }

    function test_TransferMovesExactAmounts() public {
        token.transfer(address(0xBEEF), 300);
        require(token.balanceOf(address(this)) == 700, "sender");
        require(token.balanceOf(address(0xBEEF)) == 300, "recipient");
        require(token.totalSupply() == 1000, "supply");
    }

    function test_TransferAboveBalanceReverts() public {
        try token.transfer(address(0xBEEF), 1001) {
            revert("expected revert");
        } catch (bytes memory data) {
            require(bytes4(data) == Token.InsufficientBalance.selector, "custom error");
        }
    }

    function test_TransferFromSpendsAllowance() public {
        token.approve(address(this), 50);
        token.transferFrom(address(this), address(0xCAFE), 40);
        require(token.allowance(address(this), address(this)) == 10, "allowance");
        require(token.balanceOf(address(0xCAFE)) == 40, "moved");
    }

    function testFuzz_BalanceSlotLayout(address holder, uint256 amount) public {
        amount = amount % 1001;
        token.transfer(holder, amount);
        // The benchmark seeds balances straight into storage: slot keccak256(holder . 0).
        bytes32 slot = keccak256(abi.encode(holder, uint256(0)));
        require(uint256(VM.load(address(token), slot)) == token.balanceOf(holder), "layout");
    }
}
