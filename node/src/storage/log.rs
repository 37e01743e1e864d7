//! The block log: where a block becomes durable.
//!
//! Committing a block appends it (header, body, receipts and its state changes) to this small,
//! separate MDBX environment with one durable write; the large state tables are written later, in
//! the background, by the persister. The log's write does not grow with the state, so neither does
//! the time to commit a block. Entries the tables already hold are pruned on later appends; on
//! restart, entries past the tables' head are replayed.

use super::{CommittedBlock, NewBlock, StoreResult, StoredAccount, codec::block_key, corrupt};
use alloy::{
    consensus::{Header, ReceiptEnvelope, TxEnvelope},
    eips::{Decodable2718, Encodable2718},
    primitives::{Address, B256, Bytes, Log, U256},
    rlp::{Decodable, Encodable},
};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use libmdbx::{
    Database, DatabaseOptions, Mode, NoWriteMap, ReadWriteOptions, SyncMode, TableFlags, WriteFlags,
};
use revm::{
    bytecode::Bytecode,
    database::states::{PlainStorageChangeset, StateChangeset},
    state::AccountInfo,
};
use std::path::Path;

const BLOCKS: &str = "Blocks";

/// A block as the log stores it.
#[derive(RlpEncodable, RlpDecodable)]
struct LoggedBlock {
    header: Header,
    transactions: Vec<TxEnvelope>,
    senders: Vec<Address>,
    /// EIP-2718 encodings.
    receipts: Vec<Bytes>,
    system_logs: Vec<Log>,
    accounts: Vec<LoggedAccount>,
    storage: Vec<LoggedStorage>,
    contracts: Vec<LoggedCode>,
}

#[derive(RlpEncodable, RlpDecodable)]
struct LoggedAccount {
    address: Address,
    /// [`StoredAccount`] encoding; empty: the account was removed.
    account: Bytes,
}

#[derive(RlpEncodable, RlpDecodable)]
struct LoggedStorage {
    address: Address,
    wiped: bool,
    slots: Vec<LoggedSlot>,
}

#[derive(RlpEncodable, RlpDecodable)]
struct LoggedSlot {
    slot: U256,
    value: U256,
}

#[derive(RlpEncodable, RlpDecodable)]
struct LoggedCode {
    hash: B256,
    code: Bytes,
}

impl LoggedBlock {
    fn new(block: &CommittedBlock) -> Self {
        let changes = &block.changes;
        Self {
            header: block.header.inner().clone(),
            transactions: block.transactions.clone(),
            senders: block.senders.clone(),
            receipts: block
                .receipts
                .iter()
                .map(|r| r.encoded_2718().into())
                .collect(),
            system_logs: block.system_logs.clone(),
            accounts: changes
                .accounts
                .iter()
                .map(|(address, info)| LoggedAccount {
                    address: *address,
                    account: info
                        .as_ref()
                        .map(|info| Bytes::copy_from_slice(&StoredAccount::from(info).encode()))
                        .unwrap_or_default(),
                })
                .collect(),
            storage: changes
                .storage
                .iter()
                .map(|change| LoggedStorage {
                    address: change.address,
                    wiped: change.wipe_storage,
                    slots: change
                        .storage
                        .iter()
                        .map(|(slot, value)| LoggedSlot {
                            slot: *slot,
                            value: *value,
                        })
                        .collect(),
                })
                .collect(),
            contracts: changes
                .contracts
                .iter()
                .map(|(hash, code)| LoggedCode {
                    hash: *hash,
                    code: Bytes::copy_from_slice(code.original_byte_slice()),
                })
                .collect(),
        }
    }

    fn into_block(self) -> StoreResult<NewBlock> {
        let receipts = self
            .receipts
            .iter()
            .map(|b| ReceiptEnvelope::decode_2718(&mut b.as_ref()).map_err(|e| corrupt(BLOCKS, e)))
            .collect::<StoreResult<_>>()?;
        let accounts = self
            .accounts
            .into_iter()
            .map(|logged| {
                let info = if logged.account.is_empty() {
                    None
                } else {
                    let stored = StoredAccount::decode(&logged.account)
                        .ok_or_else(|| corrupt(BLOCKS, "account"))?;
                    Some(AccountInfo::from(stored))
                };
                Ok((logged.address, info))
            })
            .collect::<StoreResult<_>>()?;
        Ok(NewBlock {
            header: self.header,
            transactions: self.transactions,
            senders: self.senders,
            receipts,
            system_logs: self.system_logs,
            prior: Default::default(),
            changes: StateChangeset {
                accounts,
                storage: self
                    .storage
                    .into_iter()
                    .map(|s| PlainStorageChangeset {
                        address: s.address,
                        wipe_storage: s.wiped,
                        storage: s.slots.into_iter().map(|s| (s.slot, s.value)).collect(),
                    })
                    .collect(),
                contracts: self
                    .contracts
                    .into_iter()
                    .map(|c| (c.hash, Bytecode::new_raw(c.code)))
                    .collect(),
            },
        })
    }
}

/// The durable log of blocks the state tables may not hold yet.
pub(super) struct BlockLog {
    db: Database<NoWriteMap>,
}

impl BlockLog {
    /// Opens (creating if needed) the log in `dir`.
    pub(super) fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(|error| super::StoreError::DataDir {
            path: dir.display().to_string(),
            error,
        })?;
        let options = DatabaseOptions {
            max_tables: Some(2),
            exclusive: true,
            mode: Mode::ReadWrite(ReadWriteOptions {
                // A commit returns only once the appended block is on disk.
                sync_mode: SyncMode::Durable,
                max_size: Some(1 << 36),
                growth_step: Some(16 << 20),
                ..Default::default()
            }),
            ..Default::default()
        };
        let db = Database::open_with_options(dir, options)?;
        let txn = db.begin_rw_txn()?;
        txn.create_table(Some(BLOCKS), TableFlags::empty())?;
        txn.commit()?;
        Ok(Self { db })
    }

    /// Durably appends `block` and drops the entries through `persisted`, which the tables hold.
    pub(super) fn append(&self, block: &CommittedBlock, persisted: u64) -> StoreResult<()> {
        let mut buf = Vec::with_capacity(1 << 16);
        LoggedBlock::new(block).encode(&mut buf);
        let txn = self.db.begin_rw_txn()?;
        let table = txn.open_table(Some(BLOCKS))?;
        let mut cursor = txn.cursor(&table)?;
        while let Some((key, ())) = cursor.first::<Vec<u8>, ()>()? {
            if super::codec::decode_u64(&key).is_none_or(|n| n > persisted) {
                break;
            }
            cursor.del(WriteFlags::empty())?;
        }
        drop(cursor);
        txn.put(
            &table,
            block_key(block.header.number),
            &buf,
            WriteFlags::UPSERT,
        )?;
        txn.commit()?;
        Ok(())
    }

    /// The logged blocks after `number`, in order.
    pub(super) fn blocks_after(&self, number: u64) -> StoreResult<Vec<NewBlock>> {
        let txn = self.db.begin_ro_txn()?;
        let table = txn.open_table(Some(BLOCKS))?;
        let mut blocks = Vec::new();
        for item in txn
            .cursor(&table)?
            .iter_from::<Vec<u8>, Vec<u8>>(&block_key(number + 1))
        {
            let (_, value) = item?;
            let logged =
                LoggedBlock::decode(&mut value.as_slice()).map_err(|e| corrupt(BLOCKS, e))?;
            blocks.push(logged.into_block()?);
        }
        Ok(blocks)
    }
}
