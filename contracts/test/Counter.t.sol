// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Counter} from "../src/examples/Counter.sol";

/// Forge tests without forge-std: a failing `require` fails the test.
contract CounterTest {
    Counter internal counter;

    function setUp() public {
        counter = new Counter();
    }

    function test_IncrementAndSet() public {
        counter.increment();
        require(counter.number() == 1, "increment");
        counter.setNumber(42);
        require(counter.number() == 42, "set");
        require(counter.lastCaller() == address(this), "caller");
    }

    function test_TooLargeReverts() public {
        try counter.setNumber(2_000_000) {
            revert("expected revert");
        } catch (bytes memory data) {
            require(bytes4(data) == Counter.TooLarge.selector, "custom error");
        }
        require(counter.number() == 0, "unchanged");
    }

    function testFuzz_SetWithinMax(uint256 value) public {
        value = value % (counter.MAX() + 1);
        counter.setNumber(value);
        require(counter.number() == value, "fuzz");
    }
}
