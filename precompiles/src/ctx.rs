//! A precompile call's access to the journal, metered at EVM gas rates.

use crate::interfaces::IStaking;
use crate::{STAKING_ADDRESS, SYSTEM_ADDRESS, SystemCalls, layout::Slots};
use alloy::{
    primitives::{Address, B256, Bytes, Log, LogData, U256},
    sol_types::{Panic, PanicKind, SolError},
};
use alloy_evm::precompiles::PrecompileInput;
use revm::precompile::{PrecompileError, PrecompileHalt, PrecompileOutput, PrecompileResult};

/// Gas of a cold / warm storage read (EIP-2929).
const COLD_SLOAD: u64 = 2_100;
const WARM_READ: u64 = 100;
/// Base cost of every call: decoding and dispatch, priced like a CALL's fixed work.
pub(crate) const CALL_BASE: u64 = 200;

/// Why a call stopped early.
#[derive(Debug)]
pub(crate) enum Exit {
    /// A user error: revert with this data (journal changes of the call are rolled back).
    Revert(Bytes),
    /// Out of gas: halt.
    OutOfGas,
    /// The database failed: the block cannot be built. Never for anything a caller controls
    /// (those revert), so no transaction can stop block production.
    Fatal(String),
}

impl<E: SolError> From<E> for Exit {
    fn from(error: E) -> Self {
        Exit::Revert(error.abi_encode().into())
    }
}

/// Checked arithmetic on stored amounts: an overflow, underflow or division by zero is a bug or
/// corrupt state, and reverts with Solidity's `Panic(0x11)` / `Panic(0x12)` instead of wrapping.
pub(crate) trait Checked: Sized {
    /// `self + other`.
    fn plus(self, other: Self) -> Result<Self, Exit>;
    /// `self - other`.
    fn minus(self, other: Self) -> Result<Self, Exit>;
    /// `self * other`.
    fn times(self, other: Self) -> Result<Self, Exit>;
    /// `self / other`, rounded down.
    fn over(self, other: Self) -> Result<Self, Exit>;
    /// `self * numerator / denominator`, rounded down.
    fn mul_div(self, numerator: Self, denominator: Self) -> Result<Self, Exit> {
        self.times(numerator)?.over(denominator)
    }
}

fn panic(kind: PanicKind) -> Exit {
    Panic::from(kind).into()
}

impl Checked for U256 {
    fn plus(self, other: U256) -> Result<U256, Exit> {
        self.checked_add(other)
            .ok_or_else(|| panic(PanicKind::UnderOverflow))
    }
    fn minus(self, other: U256) -> Result<U256, Exit> {
        self.checked_sub(other)
            .ok_or_else(|| panic(PanicKind::UnderOverflow))
    }
    fn times(self, other: U256) -> Result<U256, Exit> {
        self.checked_mul(other)
            .ok_or_else(|| panic(PanicKind::UnderOverflow))
    }
    fn over(self, other: U256) -> Result<U256, Exit> {
        self.checked_div(other)
            .ok_or_else(|| panic(PanicKind::DivisionByZero))
    }
}

/// The call's input plus a gas meter.
pub(crate) struct Ctx<'a> {
    pub(crate) input: PrecompileInput<'a>,
    gas_used: u64,
    /// Protocol work inside a user call (a slash step walking the offender's delegators) is not
    /// metered: the offender sizes it, so the reporter must not pay for it.
    unmetered: bool,
    /// A system call made by the block builder (never an RPC call naming the system address).
    system_call: bool,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(input: PrecompileInput<'a>, system_calls: SystemCalls) -> Self {
        let system_call = system_calls == SystemCalls::Honoured && input.caller == SYSTEM_ADDRESS;
        Self {
            input,
            gas_used: 0,
            unmetered: false,
            system_call,
        }
    }

    /// Whether this is the protocol's own block-boundary call.
    pub(crate) fn is_system_call(&self) -> bool {
        self.system_call
    }

    /// Runs `work` without charging gas: protocol work whose size the caller does not control
    /// and must not be able to price out of reach (it is bounded by the protocol instead).
    pub(crate) fn unmetered<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<T, Exit>,
    ) -> Result<T, Exit> {
        let was = std::mem::replace(&mut self.unmetered, true);
        let result = work(self);
        self.unmetered = was;
        result
    }

    pub(crate) fn caller(&self) -> Address {
        self.input.caller
    }

    pub(crate) fn value(&self) -> U256 {
        self.input.value
    }

    pub(crate) fn charge(&mut self, gas: u64) -> Result<(), Exit> {
        // Protocol work at block boundaries is not metered: its cost grows with the validator
        // count, and running out of gas there would stop every block from being built.
        if self.unmetered || self.system_call {
            return Ok(());
        }
        self.gas_used = self.gas_used.saturating_add(gas);
        if self.gas_used > self.input.gas {
            Err(Exit::OutOfGas)
        } else {
            Ok(())
        }
    }

    fn fatal(e: impl std::fmt::Debug) -> Exit {
        Exit::Fatal(format!("{e:?}"))
    }

    /// Reads a slot of the staking account.
    pub(crate) fn sload(&mut self, slot: U256) -> Result<U256, Exit> {
        let loaded = self
            .input
            .internals
            .sload(STAKING_ADDRESS, slot)
            .map_err(Self::fatal)?;
        self.charge(if loaded.is_cold {
            COLD_SLOAD
        } else {
            WARM_READ
        })?;
        Ok(loaded.data)
    }

    /// Writes a slot of the staking account, charged as SSTORE (EIP-2200/2929/3529, without
    /// refunds).
    pub(crate) fn sstore(&mut self, slot: U256, value: U256) -> Result<(), Exit> {
        let stored = self
            .input
            .internals
            .sstore(STAKING_ADDRESS, slot, value)
            .map_err(Self::fatal)?;
        let r = &stored.data;
        let mut gas = if r.new_value == r.present_value || r.original_value != r.present_value {
            WARM_READ
        } else if r.original_value.is_zero() {
            20_000
        } else {
            2_900
        };
        if stored.is_cold {
            gas += COLD_SLOAD;
        }
        self.charge(gas)
    }

    /// Emits a log from `address`, charged as LOG<n>.
    pub(crate) fn emit(&mut self, address: Address, data: LogData) -> Result<(), Exit> {
        self.charge(375 + 375 * data.topics().len() as u64 + 8 * data.data.len() as u64)?;
        self.input.internals.log(Log { address, data });
        Ok(())
    }

    /// Moves native balance between accounts (escrow payouts), charged as a value transfer. An
    /// escrow that cannot pay (corrupt or overridden state) reverts the call.
    pub(crate) fn transfer(
        &mut self,
        from: Address,
        to: Address,
        amount: U256,
    ) -> Result<(), Exit> {
        self.charge(9_000)?;
        match self
            .input
            .internals
            .transfer(from, to, amount)
            .map_err(Self::fatal)?
        {
            None => Ok(()),
            Some(_) => Err(IStaking::EscrowShortfall {
                escrow: from,
                amount,
            }
            .into()),
        }
    }

    /// Burns `amount` from `address`'s balance; reverts if the balance does not cover it.
    pub(crate) fn burn(&mut self, address: Address, amount: U256) -> Result<(), Exit> {
        let balance = self
            .input
            .internals
            .load_account(address)
            .map_err(Self::fatal)?
            .data
            .info
            .balance;
        let left = balance
            .checked_sub(amount)
            .ok_or(IStaking::EscrowShortfall {
                escrow: address,
                amount,
            })?;
        self.input
            .internals
            .set_balance(address, left)
            .map_err(Self::fatal)?;
        Ok(())
    }

    /// Block timestamp.
    pub(crate) fn timestamp(&self) -> u64 {
        self.input.internals.block_timestamp().saturating_to()
    }

    /// Block number.
    pub(crate) fn block_number(&self) -> u64 {
        self.input.internals.block_number().saturating_to()
    }

    /// Reads a `bytes` value stored in the long form, of at most `max_len` bytes: the stored
    /// length is clamped, never trusted for an allocation.
    pub(crate) fn load_bytes(&mut self, slot: U256, max_len: usize) -> Result<Vec<u8>, Exit> {
        let len = self.sload(slot)?.saturating_to::<usize>().min(max_len);
        let mut out = Vec::with_capacity(len);
        for i in 0..len.div_ceil(32) {
            let word = self.sload(crate::layout::array_slot(slot, i as u64, 1))?;
            out.extend_from_slice(&word.to_be_bytes::<32>());
        }
        out.truncate(len);
        Ok(out)
    }

    /// Stores a `bytes` value in the long form (clearing words the old value, of at most
    /// `max_len` bytes, used beyond it).
    pub(crate) fn store_bytes(
        &mut self,
        slot: U256,
        bytes: &[u8],
        max_len: usize,
    ) -> Result<(), Exit> {
        let old_words = self
            .sload(slot)?
            .saturating_to::<usize>()
            .min(max_len)
            .div_ceil(32);
        self.sstore(slot, U256::from(bytes.len()))?;
        for (i, chunk) in bytes.chunks(32).enumerate() {
            let mut word = [0u8; 32];
            word[..chunk.len()].copy_from_slice(chunk);
            self.sstore(
                crate::layout::array_slot(slot, i as u64, 1),
                U256::from_be_bytes(word),
            )?;
        }
        for i in bytes.len().div_ceil(32)..old_words {
            self.sstore(crate::layout::array_slot(slot, i as u64, 1), U256::ZERO)?;
        }
        Ok(())
    }

    /// Appends `address` to the `address[]` stored at `list`.
    pub(crate) fn push_address(&mut self, list: U256, address: Address) -> Result<(), Exit> {
        let len = self.sload(list)?;
        self.sstore(
            crate::layout::array_slot(list, len.saturating_to(), 1),
            address_word(address),
        )?;
        self.sstore(list, len.plus(U256::from(1))?)
    }

    /// Removes element `index` of the `address[]` at `list` (`len` long) by moving the last one
    /// into its place; returns the moved word (the removed one's if it was the last).
    pub(crate) fn swap_remove_address(
        &mut self,
        list: U256,
        index: u64,
        len: u64,
    ) -> Result<U256, Exit> {
        let last = self.sload(crate::layout::array_slot(list, len - 1, 1))?;
        self.sstore(crate::layout::array_slot(list, index, 1), last)?;
        self.sstore(crate::layout::array_slot(list, len - 1, 1), U256::ZERO)?;
        self.sstore(list, U256::from(len - 1))?;
        Ok(last)
    }

    /// Adds `delta` to the counter at `slot`.
    pub(crate) fn add(&mut self, slot: U256, delta: U256) -> Result<(), Exit> {
        let v = self.sload(slot)?;
        self.sstore(slot, v.plus(delta)?)
    }

    /// Subtracts `delta` from the counter at `slot` (an underflow reverts: corrupt state).
    pub(crate) fn sub(&mut self, slot: U256, delta: U256) -> Result<(), Exit> {
        let v = self.sload(slot)?;
        self.sstore(slot, v.minus(delta)?)
    }

    /// Finishes the call: output and gas, or revert / halt / fatal.
    pub(crate) fn finish(self, result: Result<Bytes, Exit>) -> PrecompileResult {
        let reservoir = self.input.reservoir;
        match result {
            Ok(bytes) => Ok(PrecompileOutput::new(
                self.gas_used.min(self.input.gas),
                bytes,
                reservoir,
            )),
            Err(Exit::Revert(data)) => Ok(PrecompileOutput::revert(
                self.gas_used.min(self.input.gas),
                data,
                reservoir,
            )),
            Err(Exit::OutOfGas) => Ok(PrecompileOutput::halt(PrecompileHalt::OutOfGas, reservoir)),
            Err(Exit::Fatal(e)) => Err(PrecompileError::Fatal(e)),
        }
    }
}

impl Slots for Ctx<'_> {
    type Error = Exit;
    fn load(&mut self, slot: U256) -> Result<U256, Exit> {
        self.sload(slot)
    }
}

/// A 32-byte word as an address.
pub(crate) fn word_address(word: U256) -> Address {
    Address::from_word(B256::from(word))
}

/// An address as a 32-byte word (the inverse of [`word_address`]).
pub(crate) fn address_word(address: Address) -> U256 {
    U256::from_be_bytes(address.into_word().0)
}
