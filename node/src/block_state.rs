//! The state a block executes on: a cache over the parent state that also remembers, for every
//! account and slot the block changed, its value before the block, so the block's changes come
//! out without revm's per-transaction bundle bookkeeping (which cost about a fifth of block
//! execution). Reads and commits follow revm's `State`/`CacheDB` semantics; a test checks the
//! changes against revm's bundle state.

use crate::storage::{PriorState, StoredAccount};
use alloy::primitives::{
    Address, B256, KECCAK256_EMPTY, U256,
    map::{AddressMap, B256Map, HashMap, U256Map, hash_map::Entry},
};
use revm::{
    Database, DatabaseCommit,
    bytecode::Bytecode,
    database::states::{PlainStorageChangeset, StateChangeset},
    primitives::{StorageKey, StorageValue},
    state::{Account, AccountInfo},
};

/// A slot's value before the block (or before its account's storage was cleared) and now.
#[derive(Debug, Clone, Copy)]
struct Slot {
    original: U256,
    current: U256,
}

/// An account as the block sees it.
#[derive(Debug)]
struct CachedAccount {
    /// Before the block (`None`: did not exist).
    original: Option<AccountInfo>,
    /// Now (`None`: does not exist).
    current: Option<AccountInfo>,
    /// Storage from before the block is gone (destroyed, or created anew): unloaded slots are 0.
    cleared: bool,
    /// A transaction changed it.
    changed: bool,
    /// Slots read or written.
    storage: U256Map<Slot>,
}

/// Execution state over the parent block's state `db` (see the module docs).
#[derive(Debug)]
pub struct BlockState<DB> {
    db: DB,
    /// Index into `accounts` by address, grown as the block reads accounts rather than sized
    /// for them up front: a table sized for a block of 5,000 ERC-20 transfers spread the 500
    /// accounts those read over 400 KB, a cache miss per lookup. The accounts themselves sit
    /// densely, in the order the block first read them, for the same reason.
    index: AddressMap<u32>,
    accounts: Vec<(Address, CachedAccount)>,
    contracts: B256Map<Bytecode>,
}

impl<DB: Database> BlockState<DB> {
    /// Execution state over `db`.
    pub fn new(db: DB) -> Self {
        Self::with_capacity(db, 0)
    }

    /// Execution state over `db`, with room for `accounts` accounts (their index grows).
    pub fn with_capacity(db: DB, accounts: usize) -> Self {
        Self {
            db,
            index: AddressMap::default(),
            accounts: Vec::with_capacity(accounts),
            contracts: B256Map::default(),
        }
    }

    /// Where in `accounts` the account is, loaded from `db` on first use (one map lookup when
    /// cached).
    fn position(&mut self, address: Address) -> Result<usize, DB::Error> {
        Ok(match self.index.entry(address) {
            Entry::Occupied(entry) => *entry.get() as usize,
            Entry::Vacant(entry) => {
                let original = self.db.basic(address)?;
                entry.insert(self.accounts.len() as u32);
                self.accounts.push((
                    address,
                    CachedAccount {
                        current: original.clone(),
                        original,
                        cleared: false,
                        changed: false,
                        storage: U256Map::default(),
                    },
                ));
                self.accounts.len() - 1
            }
        })
    }

    /// The block's changes, as the store commits them, and what the changed accounts and slots
    /// held before the block.
    pub fn into_changes(self) -> (StateChangeset, PriorState) {
        let mut changes = StateChangeset::default();
        let mut prior = PriorState::default();
        for (address, account) in self.accounts {
            if !account.changed || (account.original.is_none() && account.current.is_none()) {
                // Unchanged, or existed only within the block.
                continue;
            }
            let same = |a: &AccountInfo, b: &AccountInfo| {
                a.balance == b.balance && a.nonce == b.nonce && a.code_hash == b.code_hash
            };
            let info_changed = match (&account.original, &account.current) {
                (Some(a), Some(b)) => !same(a, b),
                _ => true,
            };
            // Only storage from before the block needs wiping in the store.
            let wipe = account.cleared && account.original.is_some();
            if wipe || info_changed {
                changes.accounts.push((address, account.current.clone()));
                if let Some(original) = &account.original {
                    prior
                        .accounts
                        .insert(address, StoredAccount::from(original));
                }
            }
            if let Some(info) = &account.current {
                let new_code = account
                    .original
                    .as_ref()
                    .is_none_or(|o| o.code_hash != info.code_hash);
                if new_code
                    && info.code_hash != KECCAK256_EMPTY
                    && let Some(code) = info
                        .code
                        .clone()
                        .or_else(|| self.contracts.get(&info.code_hash).cloned())
                {
                    changes.contracts.push((info.code_hash, code));
                }
            }
            let mut storage = Vec::new();
            let mut prior_slots = HashMap::default();
            for (key, slot) in account.storage {
                let changed = if account.cleared {
                    !slot.current.is_zero()
                } else {
                    slot.original != slot.current
                };
                if changed {
                    storage.push((key, slot.current));
                    // A cleared account's slots start from an empty trie: nothing to replace.
                    if !account.cleared && !slot.original.is_zero() {
                        prior_slots.insert(key, slot.original);
                    }
                }
            }
            if !prior_slots.is_empty() {
                prior.storage.insert(address, prior_slots);
            }
            if wipe || !storage.is_empty() {
                storage.sort_unstable_by_key(|(key, _)| *key);
                changes.storage.push(PlainStorageChangeset {
                    address,
                    wipe_storage: wipe,
                    storage,
                });
            }
        }
        (changes, prior)
    }
}

impl<DB: Database> Database for BlockState<DB> {
    type Error = DB::Error;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let at = self.position(address)?;
        Ok(self.accounts[at].1.current.clone())
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        match self.contracts.get(&code_hash) {
            Some(code) => Ok(code.clone()),
            None => self.db.code_by_hash(code_hash),
        }
    }

    fn storage(
        &mut self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        let at = self.position(address)?;
        let account = &mut self.accounts[at].1;
        if let Some(slot) = account.storage.get(&index) {
            return Ok(slot.current);
        }
        let value = if account.cleared || account.current.is_none() {
            U256::ZERO
        } else {
            self.db.storage(address, index)?
        };
        account.storage.insert(
            index,
            Slot {
                original: value,
                current: value,
            },
        );
        Ok(value)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        self.db.block_hash(number)
    }
}

impl<DB: Database> DatabaseCommit for BlockState<DB> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        for (address, account) in changes {
            if !account.is_touched() {
                continue;
            }
            // The journal loaded every account it commits; a failed load here cannot happen.
            let Ok(at) = self.position(address) else {
                continue;
            };
            let cached = &mut self.accounts[at].1;
            cached.changed = true;
            if account.is_selfdestructed() {
                cached.current = None;
                cached.cleared = true;
                cached.storage.clear();
                continue;
            }
            if account.is_created() {
                cached.cleared = true;
                cached.storage.clear();
            }
            let empty = account.is_empty();
            for (key, value) in account.storage {
                if value.is_changed() {
                    cached
                        .storage
                        .entry(key)
                        .or_insert(Slot {
                            original: value.original_value,
                            current: value.present_value,
                        })
                        .current = value.present_value;
                }
            }
            // EIP-161: a touched empty account is removed.
            // Remember new code only (a contract's code is in every commit that touches it).
            let new_code = cached.current.as_ref().map(|info| info.code_hash)
                != Some(account.info.code_hash)
                && account.info.code_hash != KECCAK256_EMPTY;
            cached.current = (!empty).then_some(account.info);
            if new_code
                && let Some(info) = &cached.current
                && let Some(code) = &info.code
            {
                self.contracts
                    .entry(info.code_hash)
                    .or_insert_with(|| code.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{TxKind, address, bytes};
    use revm::{
        Context, ExecuteCommitEvm, MainBuilder, MainContext,
        context::TxEnv,
        database::{
            CacheDB, EmptyDB, OriginalValuesKnown, State, states::bundle_state::BundleRetention,
        },
        primitives::hardfork::SpecId,
    };

    fn normalized(mut c: StateChangeset) -> StateChangeset {
        c.accounts.sort_by_key(|(a, _)| *a);
        c.storage.sort_by_key(|s| s.address);
        for s in &mut c.storage {
            s.storage.sort_by_key(|(k, _)| *k);
        }
        c.contracts.sort_by_key(|(h, _)| *h);
        c
    }

    /// Runs `txs` on a fresh EVM over `db` and returns the committed database.
    fn run<D: Database + DatabaseCommit>(db: D, txs: &[TxEnv]) -> D
    where
        D::Error: std::fmt::Debug,
    {
        let mut evm = Context::mainnet()
            .with_db(db)
            .modify_cfg_chained(|cfg| {
                cfg.spec = SpecId::PRAGUE;
                cfg.disable_nonce_check = true;
            })
            .build_mainnet();
        for tx in txs {
            evm.transact_commit(tx.clone()).unwrap();
        }
        evm.ctx.journaled_state.database
    }

    #[test]
    fn changes_equal_revm_bundle_state() {
        let sender = address!("0x1000000000000000000000000000000000000001");
        let existing = address!("0x2000000000000000000000000000000000000002");
        let toggler = address!("0x3000000000000000000000000000000000000003");
        let writer = address!("0x4000000000000000000000000000000000000004");
        let fresh = address!("0x5000000000000000000000000000000000000005");
        let mut base = CacheDB::new(EmptyDB::default());
        let balance = U256::from(10u64).pow(U256::from(20));
        base.insert_account_info(sender, AccountInfo::from_balance(balance));
        base.insert_account_info(existing, AccountInfo::from_balance(U256::from(1)));
        // Flips slot 0 between 0 and 1 on every call.
        let toggle = Bytecode::new_raw(bytes!("600054156000555b00"));
        base.insert_account_info(toggler, AccountInfo::default().with_code(toggle));
        // Writes slot 0 = 5 (its value already), slot 1 = 0 (deletes), slot 3 = 9 (new).
        let write = Bytecode::new_raw(bytes!("600560005560006001556009600355"));
        base.insert_account_info(writer, AccountInfo::default().with_code(write));
        for (slot, value) in [(0u64, 5u64), (1, 7), (2, 8)] {
            base.insert_account_storage(writer, U256::from(slot), U256::from(value))
                .unwrap();
        }
        let tx = |nonce: u64, kind: TxKind, value: u64, data: &[u8]| {
            TxEnv::builder()
                .caller(sender)
                .nonce(nonce)
                .kind(kind)
                .value(U256::from(value))
                .data(data.to_vec().into())
                .gas_limit(1_000_000)
                .gas_price(0)
                .build_fill()
        };
        let txs = [
            tx(0, TxKind::Call(existing), 3, &[]),
            // A zero-value call to an empty address touches it; EIP-161 leaves nothing.
            tx(1, TxKind::Call(fresh), 0, &[]),
            // Storage 0x2a at slot 1 and 7 at slot 2, empty code.
            tx(2, TxKind::Create, 0, &bytes!("602a600155600760025500")),
            // Created and destroyed in the same transaction, its value sent on.
            tx(
                3,
                TxKind::Create,
                9,
                &bytes!("732000000000000000000000000000000000000002ff"),
            ),
            tx(4, TxKind::Call(toggler), 0, &[]),
            tx(5, TxKind::Call(toggler), 0, &[]),
            tx(6, TxKind::Call(toggler), 0, &[]),
            tx(7, TxKind::Call(writer), 0, &[]),
            // Deploys runtime code 0x00 (STOP).
            tx(8, TxKind::Create, 0, &bytes!("600160005360016000f3")),
        ];
        let mut bundled = run(
            State::builder()
                .with_database(base.clone())
                .with_bundle_update()
                .build(),
            &txs,
        );
        bundled.merge_transitions(BundleRetention::PlainState);
        let expected = normalized(
            bundled
                .take_bundle()
                .to_plain_state(OriginalValuesKnown::Yes),
        );
        let (ours, prior) = run(BlockState::new(base), &txs).into_changes();
        // Each changed account that existed comes with its value before the block.
        let stored = |balance| StoredAccount::from(&AccountInfo::from_balance(balance));
        assert_eq!(prior.accounts[&sender], stored(balance));
        assert_eq!(prior.accounts[&existing], stored(U256::from(1)));
        assert!(!prior.accounts.contains_key(&fresh));
        let ours = normalized(ours);
        assert!(!expected.accounts.is_empty() && !expected.contracts.is_empty());
        assert_eq!(ours.accounts, expected.accounts);
        assert_eq!(ours.storage, expected.storage);
        assert_eq!(ours.contracts, expected.contracts);
    }
}
