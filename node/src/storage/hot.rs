//! Accounts as of the newest committed block, kept across blocks.
//!
//! Consecutive blocks touch many of the same accounts (a sender's next transaction, a busy
//! contract). Each would otherwise be read from the overlay or the tables' B-tree again, which at
//! a million accounts costs a few microseconds a read. Every commit writes the accounts its block
//! changed here, and readers at the newest block add what they read. An entry records the first
//! block from which its value is known to hold; commits overwrite an entry whenever its account
//! changes, so the value holds from that block through the newest commit, and a read at any block
//! in that range may use it. The cache is bounded: two generations, the older dropped when the
//! newer fills.

use super::{StoredAccount, generations::Generations};
use alloy::primitives::{Address, map::FbBuildHasher};
use parking_lot::RwLock;

/// Accounts per generation: at most twice this many are held (about 120 bytes each).
const GENERATION: usize = 1 << 17;

/// Recently changed or read accounts, current at the newest committed block.
#[derive(Debug)]
pub(super) struct HotAccounts {
    inner: RwLock<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The newest committed block the entries are current at (`None`: no block yet).
    head: Option<u64>,
    entries: Generations<Address, Entry, FbBuildHasher<20>>,
}

impl Inner {
    fn at(head: Option<u64>) -> Self {
        Self {
            head,
            entries: Generations::new(GENERATION),
        }
    }
}

impl Default for HotAccounts {
    fn default() -> Self {
        Self {
            inner: RwLock::new(Inner::at(None)),
        }
    }
}

/// An account's value and the first block it is known to hold at.
#[derive(Debug, Clone, Copy)]
struct Entry {
    since: u64,
    /// `None`: no account at the address.
    account: Option<StoredAccount>,
}

impl HotAccounts {
    /// Starts at block `head` (the newest committed one when the store opens).
    pub(super) fn reset(&self, head: Option<u64>) {
        *self.inner.write() = Inner::at(head);
    }

    /// The account at `address` as of block `at`, if the cache knows it (`Some(None)`: no
    /// account).
    pub(super) fn get(&self, at: u64, address: &Address) -> Option<Option<StoredAccount>> {
        let inner = self.inner.read();
        // Entries hold through `head` only: a reader past it sees a block not recorded here yet.
        if inner.head.is_none_or(|head| at > head) {
            return None;
        }
        let entry = inner.entries.get(address)?;
        (entry.since <= at).then_some(entry.account)
    }

    /// Whether the cache holds `address`'s account as of the newest committed block.
    #[cfg(test)]
    pub(super) fn knows_latest(&self, address: &Address) -> bool {
        let inner = self.inner.read();
        inner.entries.get(address).is_some()
    }

    /// Records an account read at block `at`, if that is still the newest committed block (a
    /// later block may have changed it).
    pub(super) fn read_at(&self, at: u64, address: Address, account: Option<StoredAccount>) {
        let mut inner = self.inner.write();
        if inner.head == Some(at) && !inner.entries.newer_holds(&address) {
            inner.entries.insert(address, Entry { since: at, account });
        }
    }

    /// Records block `number`'s changed accounts; the cache is then current at `number`.
    pub(super) fn commit<'a>(
        &self,
        number: u64,
        changed: impl IntoIterator<Item = (&'a Address, &'a Option<StoredAccount>)>,
    ) {
        let mut inner = self.inner.write();
        for (address, account) in changed {
            inner.entries.insert(
                *address,
                Entry {
                    since: number,
                    account: *account,
                },
            );
        }
        inner.head = Some(number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;

    fn account(balance: u64) -> Option<StoredAccount> {
        Some(StoredAccount {
            balance: U256::from(balance),
            ..Default::default()
        })
    }

    #[test]
    fn an_entry_answers_only_the_blocks_it_holds_through() {
        let hot = HotAccounts::default();
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        hot.reset(Some(4));
        hot.read_at(4, a, account(10));
        // A read at an older block is not current: not recorded.
        hot.read_at(3, b, account(1));
        assert_eq!(hot.get(4, &a), Some(account(10)));
        assert_eq!(hot.get(3, &a), None, "known since block 4 only");
        assert_eq!(hot.get(4, &b), None);

        hot.commit(5, [(&a, &account(11)), (&b, &None)]);
        assert_eq!(hot.get(5, &a), Some(account(11)));
        assert_eq!(
            hot.get(4, &a),
            None,
            "changed at 5: block 4's value is not here"
        );
        assert_eq!(hot.get(5, &b), Some(None));
        // A reader still at block 4 reads after block 5 was committed: nothing recorded.
        hot.read_at(4, a, account(10));
        assert_eq!(hot.get(5, &a), Some(account(11)));
        // A reader past the newest commit the cache saw gets nothing from it.
        assert_eq!(hot.get(6, &a), None);
        assert!(hot.knows_latest(&a) && hot.knows_latest(&b));
        assert!(!hot.knows_latest(&Address::repeat_byte(3)));
    }

    #[test]
    fn generations_bound_the_entries_and_keep_the_newest_values() {
        let hot = HotAccounts::default();
        hot.reset(Some(0));
        let addresses: Vec<Address> = (0..GENERATION as u64 * 2 + 10)
            .map(|i| Address::left_padding_from(&i.to_be_bytes()))
            .collect();
        for (i, address) in addresses.iter().enumerate() {
            hot.commit(1 + i as u64 / 1000, [(address, &account(i as u64))]);
        }
        let inner = hot.inner.read();
        assert!(inner.entries.len() <= 2 * GENERATION);
        drop(inner);
        let head = 1 + (addresses.len() as u64 - 1) / 1000;
        let last = addresses.len() - 1;
        assert_eq!(hot.get(head, &addresses[last]), Some(account(last as u64)));
        assert_eq!(
            hot.get(head, &addresses[0]),
            None,
            "dropped with its generation"
        );
    }
}
