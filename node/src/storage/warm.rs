//! The account-trie nodes a block will update, read while it executes.
//!
//! A block's state root reads the account-trie nodes on the path to every account it changed.
//! The accounts are known transaction by transaction as the block executes, so a second thread
//! can read (and decode) those nodes meanwhile; the root then only edits and hashes. The nodes
//! are those of the state the reader saw: a commit uses them only if that is still the latest
//! block.

use super::{
    Reader, StoreResult, StoredAccount, overlay::LayeredTrie, overlay::TrieId, top_nodes::TOP_DEPTH,
};
use crate::trie::{self, WarmNodes};
use alloy::primitives::{Address, B256, KECCAK256_EMPTY as KECCAK_EMPTY, keccak256};
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles};

/// Reads account-trie paths ahead of a block's commit, through a snapshot of its own (so it can
/// run on its own thread).
#[derive(Debug)]
pub struct TrieWarmer<'db> {
    reader: Reader<'db>,
}

/// Account-trie nodes read ahead of a block's commit, with the state they were read at.
#[derive(Debug)]
pub struct WarmTrie {
    /// Hash of the latest block when they were read (`None`: no block yet).
    at: Option<B256>,
    nodes: WarmNodes,
}

impl<'db> TrieWarmer<'db> {
    pub(super) fn new(reader: Reader<'db>) -> Self {
        Self { reader }
    }

    /// Reads the account-trie nodes that changing each of `accounts` will read, for
    /// [`super::NewBlock::warm_trie`]. An account's leaf is not read if it is the one its value
    /// before the block (without storage) makes: the state root replaces that without reading
    /// it.
    pub fn read(
        self,
        accounts: impl IntoIterator<Item = (Address, Option<StoredAccount>)>,
    ) -> StoreResult<WarmTrie> {
        let mut nodes = WarmNodes::default();
        let trie = LayeredTrie::committed(&self.reader, TrieId::Accounts);
        for (address, prior) in accounts {
            // Only accounts without code are expected to have no storage.
            let prior_leaf = prior
                .filter(|account| account.code_hash == KECCAK_EMPTY)
                .map(|account| trie::account_leaf(&account, EMPTY_ROOT_HASH));
            nodes.read_path(
                &trie,
                &Nibbles::unpack(keccak256(address)),
                TOP_DEPTH,
                prior_leaf.as_deref(),
            )?;
        }
        Ok(WarmTrie {
            at: self.reader.head()?.map(|head| head.hash()),
            nodes,
        })
    }
}

impl WarmTrie {
    /// The nodes, if they were read at `reader`'s latest block.
    pub(super) fn nodes_at(&self, reader: &Reader<'_>) -> StoreResult<Option<&WarmNodes>> {
        let latest = reader.head()?.map(|head| head.hash());
        Ok((latest == self.at).then_some(&self.nodes))
    }
}
