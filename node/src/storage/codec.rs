//! Byte encodings of the keys and values stored in MDBX. Keys are big-endian so that MDBX's
//! lexicographic order is numeric order; values are fixed-width where the type allows.

use alloy::primitives::{Address, B256, U256};
use revm::state::AccountInfo;

/// An account as stored: nonce, balance and code hash (72 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredAccount {
    /// Transaction count / contract nonce.
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// keccak256 of the code (`KECCAK_EMPTY` for none).
    pub code_hash: B256,
}

impl StoredAccount {
    /// Encoded length.
    pub const LEN: usize = 72;

    /// Fixed-width encoding.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.nonce.to_be_bytes());
        out[8..40].copy_from_slice(&self.balance.to_be_bytes::<32>());
        out[40..].copy_from_slice(self.code_hash.as_slice());
        out
    }

    /// Decodes [`Self::encode`]'s output; `None` for any other length.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::LEN {
            return None;
        }
        Some(Self {
            nonce: u64::from_be_bytes(bytes[..8].try_into().ok()?),
            balance: U256::from_be_slice(&bytes[8..40]),
            code_hash: B256::from_slice(&bytes[40..]),
        })
    }
}

impl From<&AccountInfo> for StoredAccount {
    fn from(info: &AccountInfo) -> Self {
        Self {
            nonce: info.nonce,
            balance: info.balance,
            code_hash: info.code_hash,
        }
    }
}

impl From<StoredAccount> for AccountInfo {
    fn from(acc: StoredAccount) -> Self {
        AccountInfo::new(acc.balance, acc.nonce, acc.code_hash, Default::default()).without_code()
    }
}

/// Key of a block-number table.
pub(crate) fn block_key(number: u64) -> [u8; 8] {
    number.to_be_bytes()
}

/// `address ++ slot`: the key of plain storage.
pub(crate) fn storage_key(address: &Address, slot: &B256) -> [u8; 52] {
    let mut key = [0u8; 52];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(slot.as_slice());
    key
}

/// `hashed address ++ hashed slot`: the key of hashed storage.
pub(crate) fn hashed_storage_key(hashed_address: &B256, hashed_slot: &B256) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(hashed_address.as_slice());
    key[32..].copy_from_slice(hashed_slot.as_slice());
    key
}

/// `block ++ address`: the key of an account changeset entry.
pub(crate) fn account_changeset_key(number: u64, address: &Address) -> [u8; 28] {
    let mut key = [0u8; 28];
    key[..8].copy_from_slice(&number.to_be_bytes());
    key[8..].copy_from_slice(address.as_slice());
    key
}

/// `block ++ address ++ slot`: the key of a storage changeset entry.
pub(crate) fn storage_changeset_key(number: u64, address: &Address, slot: &B256) -> [u8; 60] {
    let mut key = [0u8; 60];
    key[..8].copy_from_slice(&number.to_be_bytes());
    key[8..].copy_from_slice(&storage_key(address, slot));
    key
}

/// `address ++ block`: the account history index (which blocks changed an account).
pub(crate) fn account_history_key(address: &Address, number: u64) -> [u8; 28] {
    let mut key = [0u8; 28];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(&number.to_be_bytes());
    key
}

/// `address ++ slot ++ block`: the storage history index.
pub(crate) fn storage_history_key(address: &Address, slot: &B256, number: u64) -> [u8; 60] {
    let mut key = [0u8; 60];
    key[..52].copy_from_slice(&storage_key(address, slot));
    key[52..].copy_from_slice(&number.to_be_bytes());
    key
}

/// `block ++ tx index`: where a transaction lives.
pub(crate) fn tx_location(number: u64, index: u32) -> [u8; 12] {
    let mut v = [0u8; 12];
    v[..8].copy_from_slice(&number.to_be_bytes());
    v[8..].copy_from_slice(&index.to_be_bytes());
    v
}

/// Decodes [`tx_location`].
pub(crate) fn decode_tx_location(bytes: &[u8]) -> Option<(u64, u32)> {
    if bytes.len() != 12 {
        return None;
    }
    Some((
        u64::from_be_bytes(bytes[..8].try_into().ok()?),
        u32::from_be_bytes(bytes[8..].try_into().ok()?),
    ))
}

/// Big-endian u64 from an 8-byte slice.
pub(crate) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Storage values are stored as 32-byte big-endian words.
pub(crate) fn encode_word(value: &U256) -> [u8; 32] {
    value.to_be_bytes::<32>()
}

/// Decodes a stored word (an empty slice is zero: a slot that did not exist).
pub(crate) fn decode_word(bytes: &[u8]) -> U256 {
    U256::from_be_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_round_trips_and_rejects_wrong_length() {
        let acc = StoredAccount {
            nonce: 7,
            balance: U256::MAX - U256::from(1),
            code_hash: B256::repeat_byte(3),
        };
        assert_eq!(StoredAccount::decode(&acc.encode()), Some(acc));
        assert_eq!(StoredAccount::decode(&acc.encode()[..71]), None);
    }

    #[test]
    fn keys_sort_numerically() {
        let a = Address::repeat_byte(1);
        assert!(account_history_key(&a, 255) < account_history_key(&a, 256));
        assert!(block_key(255) < block_key(256));
        assert_eq!(decode_tx_location(&tx_location(9, 3)), Some((9, 3)));
    }
}
