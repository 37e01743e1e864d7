//! Merkle-Patricia roots: genesis, and the state root after a block.
//!
//! Storage roots are cached per account in the `StorageRoots` table and recomputed only for
//! accounts whose storage a block changed; the account trie is rebuilt from the hashed account
//! table. (Issue 3 replaces the account-trie rebuild with stored branch nodes.)

use crate::storage::{StoreError, StoredAccount};
use alloy::{
    genesis::GenesisAccount,
    primitives::{Address, B256, U256, keccak256, map::HashMap},
};
use alloy_trie::{
    EMPTY_ROOT_HASH, TrieAccount,
    root::{state_root, storage_root},
};
use libmdbx::{NoWriteMap, RW, Transaction, WriteFlags};
use revm::{
    bytecode::Bytecode,
    database::states::{PlainStorageChangeset, StateChangeset},
    primitives::KECCAK_EMPTY,
    state::AccountInfo,
};
use std::collections::{BTreeMap, HashSet};

/// The state root of a genesis allocation.
pub fn genesis_state_root(alloc: &BTreeMap<Address, GenesisAccount>) -> B256 {
    let mut accounts: Vec<(B256, TrieAccount)> = alloc
        .iter()
        .map(|(address, acc)| {
            let storage: Vec<(B256, U256)> = {
                let mut s: Vec<(B256, U256)> = acc
                    .storage
                    .iter()
                    .flatten()
                    .filter(|(_, v)| !v.is_zero())
                    .map(|(k, v)| (keccak256(k), U256::from_be_bytes(v.0)))
                    .collect();
                s.sort_unstable_by_key(|(k, _)| *k);
                s
            };
            let code_hash = acc.code.as_ref().map(keccak256).unwrap_or(KECCAK_EMPTY);
            (
                keccak256(address),
                TrieAccount {
                    nonce: acc.nonce.unwrap_or_default(),
                    balance: acc.balance,
                    storage_root: storage_root(storage),
                    code_hash,
                },
            )
        })
        .collect();
    accounts.sort_unstable_by_key(|(k, _)| *k);
    state_root(accounts)
}

/// The genesis allocation as a state changeset, so genesis is written like any other block.
pub fn genesis_changeset(alloc: &BTreeMap<Address, GenesisAccount>) -> StateChangeset {
    let mut accounts = Vec::new();
    let mut storage = Vec::new();
    let mut contracts = Vec::new();
    for (address, acc) in alloc {
        let code = acc.code.as_ref().map(|c| Bytecode::new_raw(c.clone()));
        let code_hash = code.as_ref().map(|c| c.hash_slow()).unwrap_or(KECCAK_EMPTY);
        if let Some(code) = code {
            contracts.push((code_hash, code));
        }
        accounts.push((
            *address,
            Some(
                AccountInfo::new(
                    acc.balance,
                    acc.nonce.unwrap_or_default(),
                    code_hash,
                    Bytecode::default(),
                )
                .without_code(),
            ),
        ));
        if let Some(slots) = &acc.storage {
            storage.push(PlainStorageChangeset {
                address: *address,
                wipe_storage: false,
                storage: slots
                    .iter()
                    .map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0)))
                    .collect(),
            });
        }
    }
    StateChangeset {
        accounts,
        storage,
        contracts,
    }
}

/// Recomputes the storage roots of `touched` accounts, then the state root.
pub(crate) fn update_state_root(
    txn: &Transaction<'_, RW, NoWriteMap>,
    touched: &HashSet<B256>,
) -> Result<B256, StoreError> {
    use crate::storage::tables_for_trie::*;
    let hashed_storage = txn.open_table(Some(HASHED_STORAGE))?;
    let roots = txn.open_table(Some(STORAGE_ROOTS))?;
    for hashed_address in touched {
        let mut cursor = txn.cursor(&hashed_storage)?;
        let mut slots = Vec::new();
        let mut entry = cursor.set_range::<Vec<u8>, Vec<u8>>(hashed_address.as_slice())?;
        while let Some((key, value)) = entry {
            if !key.starts_with(hashed_address.as_slice()) {
                break;
            }
            slots.push((B256::from_slice(&key[32..]), U256::from_be_slice(&value)));
            entry = cursor.next()?;
        }
        let root = storage_root(slots);
        if root == EMPTY_ROOT_HASH {
            txn.del(&roots, hashed_address, None)?;
        } else {
            txn.put(&roots, hashed_address, root, WriteFlags::UPSERT)?;
        }
    }
    let stored_roots: HashMap<B256, B256> = {
        let mut cursor = txn.cursor(&roots)?;
        cursor
            .iter_start::<Vec<u8>, Vec<u8>>()
            .map(|r| r.map(|(k, v)| (B256::from_slice(&k), B256::from_slice(&v))))
            .collect::<Result<_, _>>()?
    };
    let accounts = txn.open_table(Some(HASHED_ACCOUNTS))?;
    let mut cursor = txn.cursor(&accounts)?;
    let mut leaves = Vec::new();
    for item in cursor.iter_start::<Vec<u8>, Vec<u8>>() {
        let (key, value) = item?;
        let hashed = B256::from_slice(&key);
        let acc = StoredAccount::decode(&value).ok_or_else(|| StoreError::Corrupt {
            table: HASHED_ACCOUNTS,
            detail: "account".into(),
        })?;
        leaves.push((
            hashed,
            TrieAccount {
                nonce: acc.nonce,
                balance: acc.balance,
                storage_root: stored_roots
                    .get(&hashed)
                    .copied()
                    .unwrap_or(EMPTY_ROOT_HASH),
                code_hash: acc.code_hash,
            },
        ));
    }
    Ok(state_root(leaves))
}
