// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Counter} from "../src/examples/Counter.sol";

interface Vm {
    function startBroadcast() external;
    function stopBroadcast() external;
}

/// Deploys a Counter and sets it to 7: `forge script contracts/script/DeployCounter.s.sol
/// --rpc-url http://127.0.0.1:8545 --broadcast --private-key <key>`.
contract DeployCounter {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function run() external returns (Counter counter) {
        vm.startBroadcast();
        counter = new Counter();
        counter.setNumber(7);
        vm.stopBroadcast();
    }
}
