//! Account and storage reads at a given block, for revm and the RPC.

use super::{
    OpenTable, Reader, StoreError, StoreResult, codec::*, corrupt, overlay::PendingBlock, tables::*,
};
use alloy::primitives::{Address, B256, U256};
use revm::{
    DatabaseRef,
    bytecode::Bytecode,
    primitives::{KECCAK_EMPTY, StorageKey, StorageValue},
    state::AccountInfo,
};
use std::sync::Arc;

/// State at the end of a block (or the latest state), readable by revm through [`DatabaseRef`].
pub struct StateDb<'r, 'db> {
    reader: &'r Reader<'db>,
    /// Committed blocks not yet in the tables, up to the requested block, oldest first: their
    /// changes are read before the tables'.
    pending: &'r [Arc<PendingBlock>],
    /// What to read from the tables. `None`: their latest state; `Some(n)`: as of the end of
    /// block `n`.
    at: Option<u64>,
    /// The block this state is at (`None`: no block committed yet).
    block: Option<u64>,
    accounts: OpenTable<'r>,
    storage: OpenTable<'r>,
}

impl std::fmt::Debug for StateDb<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl<'r, 'db> StateDb<'r, 'db> {
    pub(super) fn new(reader: &'r Reader<'db>, at: Option<u64>) -> Self {
        let head = reader.head_number();
        let block = match at {
            Some(n) => head.map(|head| n.min(head)),
            None => head,
        };
        let (pending, at) = match at {
            // Older than the tables' head: history, from the tables alone.
            Some(n) if reader.tables_head.is_some_and(|head| n < head) => (&[][..], Some(n)),
            // At or past it: the pending blocks up to `n` over the tables' latest state.
            Some(n) => (
                &reader.pending[..reader.pending.partition_point(|p| p.number() <= n)],
                None,
            ),
            None => (&reader.pending[..], None),
        };
        Self {
            reader,
            pending,
            at,
            block,
            accounts: OpenTable::new(PLAIN_ACCOUNTS),
            storage: OpenTable::new(PLAIN_STORAGE),
        }
    }

    /// The first block after `self.at` whose history entry under `prefix` exists, if any.
    fn first_change_after(&self, history: &str, prefix: &[u8]) -> StoreResult<Option<u64>> {
        let Some(at) = self.at else { return Ok(None) };
        let table = self.reader.table(history)?;
        let mut cursor = self.reader.txn.cursor(&table)?;
        let mut seek = prefix.to_vec();
        seek.extend_from_slice(&(at + 1).to_be_bytes());
        Ok(match cursor.set_range::<Vec<u8>, ()>(&seek)? {
            Some((key, ())) if key.len() == prefix.len() + 8 && key.starts_with(prefix) => {
                decode_u64(&key[prefix.len()..])
            }
            _ => None,
        })
    }

    /// The account at this block, `None` if it did not exist.
    pub fn account(&self, address: &Address) -> StoreResult<Option<StoredAccount>> {
        let Some(block) = self.block else {
            return self.account_uncached(address);
        };
        let hot = &self.reader.shared.hot_accounts;
        if let Some(account) = hot.get(block, address) {
            return Ok(account);
        }
        let account = self.account_uncached(address)?;
        hot.read_at(block, *address, account);
        Ok(account)
    }

    /// The account at this block from the pending blocks, the changesets or the tables.
    fn account_uncached(&self, address: &Address) -> StoreResult<Option<StoredAccount>> {
        if let Some(account) = self
            .pending
            .iter()
            .rev()
            .find_map(|p| p.state.account(address))
        {
            return Ok(account);
        }
        // An empty value: the account did not exist.
        let decode = |raw: &[u8]| -> StoreResult<Option<StoredAccount>> {
            if raw.is_empty() {
                return Ok(None);
            }
            StoredAccount::decode(raw)
                .map(Some)
                .ok_or_else(|| corrupt(PLAIN_ACCOUNTS, "account"))
        };
        match self.first_change_after(ACCOUNT_HISTORY, address.as_slice())? {
            Some(block) => self
                .reader
                .get_decoded(
                    ACCOUNT_CHANGESETS,
                    account_changeset_key(block, address),
                    decode,
                )?
                .ok_or_else(|| corrupt(ACCOUNT_CHANGESETS, "history points at missing changeset")),
            None => Ok(self
                .reader
                .get_decoded_in(&self.accounts, address, decode)?
                .flatten()),
        }
    }

    /// A storage slot at this block (zero if unset).
    pub fn storage(&self, address: &Address, slot: &B256) -> StoreResult<U256> {
        if let Some(value) = self
            .pending
            .iter()
            .rev()
            .find_map(|p| p.state.storage(address, slot))
        {
            return Ok(value);
        }
        let key = storage_key(address, slot);
        let raw = match self.first_change_after(STORAGE_HISTORY, &key)? {
            Some(block) => self
                .reader
                .get(
                    STORAGE_CHANGESETS,
                    storage_changeset_key(block, address, slot),
                )?
                .ok_or_else(|| {
                    corrupt(STORAGE_CHANGESETS, "history points at missing changeset")
                })?,
            None => self.reader.get_in(&self.storage, key)?.unwrap_or_default(),
        };
        Ok(decode_word(&raw))
    }

    /// Code by hash (code is immutable, so no history is needed).
    pub fn code(&self, hash: &B256) -> StoreResult<Option<Bytecode>> {
        if *hash == KECCAK_EMPTY {
            return Ok(Some(Bytecode::default()));
        }
        // Any committed block's code will do: code never changes under its hash.
        if let Some(code) = self.reader.pending.iter().find_map(|p| p.state.code(hash)) {
            return Ok(Some(code));
        }
        Ok(self
            .reader
            .get(BYTECODES, hash)?
            .map(|code| Bytecode::new_raw(code.into())))
    }
}

impl DatabaseRef for StateDb<'_, '_> {
    type Error = StoreError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        Ok(self.account(&address)?.map(AccountInfo::from))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        self.code(&code_hash)?
            .ok_or_else(|| corrupt(BYTECODES, format!("missing code {code_hash}")))
    }

    fn storage_ref(
        &self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        self.storage(&address, &B256::from(index))
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        Ok(self.reader.canonical_hash(number)?.unwrap_or_default())
    }
}
