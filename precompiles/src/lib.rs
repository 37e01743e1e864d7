//! ComputeChain's native precompiles. Each is a stateful precompile whose state lives in the EVM
//! journal (so a revert rolls it back), with its ABI defined once in `contracts/src/interfaces`
//! and generated here with `alloy::sol!`.
//!
//! | address | precompile |
//! |---|---|
//! | `0x…1000` | [`staking`]: validators, self-stake, rewards pool |
//! | `0x…1001` | [`delegation`]: delegations, unbonding, reward claims |
//! | `0x…1002` | reserved: proof-of-compute |
//! | `0x…1003` | reserved: GPU-worker attestation |

mod ctx;
pub mod delegation;
pub mod genesis;
pub mod interfaces;
pub mod layout;
pub mod staking;

use alloy::primitives::{Address, address};
use alloy_evm::precompiles::{DynPrecompile, PrecompileInput, PrecompilesMap};
use revm::precompile::{PrecompileId, PrecompileResult};

/// The staking precompile's address.
pub const STAKING_ADDRESS: Address = address!("0x0000000000000000000000000000000000001000");
/// The delegation precompile's address.
pub const DELEGATION_ADDRESS: Address = address!("0x0000000000000000000000000000000000001001");
/// Reserved for the proof-of-compute precompile.
pub const PROOF_OF_COMPUTE_ADDRESS: Address =
    address!("0x0000000000000000000000000000000000001002");
/// Reserved for the GPU-worker attestation precompile.
pub const ATTESTATION_ADDRESS: Address = address!("0x0000000000000000000000000000000000001003");
/// The protocol's caller for block-boundary work (EIP-4788's system address).
pub const SYSTEM_ADDRESS: Address = address!("0xfffffffffffffffffffffffffffffffffffffffe");

/// Code placed at each precompile address in genesis: `INVALID`. Precompiles run before code, and
/// a non-empty account is neither EIP-161-deleted nor refused by Solidity's `extcodesize` check.
pub const PLACEHOLDER_CODE: [u8; 1] = [0xfe];

/// The native precompiles' accounts, whose storage is protocol state: nothing but the
/// precompiles may write it (RPC state overrides of these accounts are refused).
pub const NATIVE_PRECOMPILES: [Address; 4] = [
    STAKING_ADDRESS,
    DELEGATION_ADDRESS,
    PROOF_OF_COMPUTE_ADDRESS,
    ATTESTATION_ADDRESS,
];

/// Whether an EVM runs the protocol's own system calls, whose caller is [`SYSTEM_ADDRESS`].
///
/// A caller address proves nothing where the caller is chosen freely (`eth_call`'s `from`):
/// only the EVMs that build blocks and genesis honour [`SYSTEM_ADDRESS`]'s privileges (the
/// protocol-only methods, and gas-free protocol work). Everywhere else it is an ordinary caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemCalls {
    /// Block building and genesis: calls from [`SYSTEM_ADDRESS`] are the protocol's.
    Honoured,
    /// RPC calls: [`SYSTEM_ADDRESS`] has no privileges and pays gas like any caller.
    Refused,
}

/// Adds ComputeChain's precompiles to `map`.
pub fn register(map: &mut PrecompilesMap, system_calls: SystemCalls) {
    map.apply_precompile(&STAKING_ADDRESS, move |_| {
        Some(DynPrecompile::new_stateful(
            PrecompileId::custom("computechain-staking"),
            move |input: PrecompileInput<'_>| -> PrecompileResult {
                staking::dispatch::call(input, system_calls)
            },
        ))
    });
    map.apply_precompile(&DELEGATION_ADDRESS, move |_| {
        Some(DynPrecompile::new_stateful(
            PrecompileId::custom("computechain-delegation"),
            move |input: PrecompileInput<'_>| -> PrecompileResult {
                delegation::dispatch::call(input, system_calls)
            },
        ))
    });
}
