//! The Solidity interfaces, generated from the same files the contracts import (one definition
//! of the ABI).

alloy::sol!(
    #[sol(all_derives)]
    "../contracts/src/interfaces/IStaking.sol"
);

alloy::sol!(
    #[sol(all_derives)]
    "../contracts/src/interfaces/IDelegation.sol"
);
