//! A block's transactions root, receipts root and logs blooms, computed on a second thread while
//! the block executes. Each included transaction and its receipt are streamed to the thread, which
//! computes the receipt's bloom and hashes both into ordered tries as they arrive, so sealing does
//! not wait for this work after the last transaction.
//!
//! The thread has as much hashing to do as execution has work: a token transfer's receipt takes
//! about ten keccak permutations, four of them for its bloom. The bloom's inputs are mostly
//! repeats (the token's address, the event's signature, its sender), so their hashes are
//! remembered for the block.

use alloy::{
    consensus::{
        Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope, TxType,
        transaction::Recovered,
    },
    eips::eip2718::Encodable2718,
    primitives::{
        B256, Bloom, BloomInput, Log, keccak256,
        map::{AddressMap, B256Map},
    },
};
use alloy_evm::{
    Evm,
    eth::receipt_builder::{ReceiptBuilder, ReceiptBuilderCtx},
};
use alloy_trie::{HashBuilder, Nibbles};
use std::sync::{Arc, mpsc::Receiver};

/// Builds receipts without their logs bloom: the roots thread computes it (see [`compute`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct BloomlessReceiptBuilder;

impl ReceiptBuilder for BloomlessReceiptBuilder {
    type Transaction = TxEnvelope;
    type Receipt = ReceiptEnvelope;

    fn build_receipt<E: Evm>(&self, ctx: ReceiptBuilderCtx<'_, TxType, E>) -> ReceiptEnvelope {
        let receipt = ReceiptWithBloom {
            receipt: Receipt {
                status: Eip658Value::Eip658(ctx.result.is_success()),
                cumulative_gas_used: ctx.cumulative_gas_used,
                logs: ctx.result.into_logs(),
            },
            logs_bloom: Bloom::ZERO,
        };
        ReceiptEnvelope::from_typed(ctx.tx_type, receipt)
    }
}

/// Root of the trie keyed by `rlp(index)` (the transactions and receipts tries), built from
/// values pushed in index order. The trie's key order is 1..=127, 0, 128, 129, …: item 0 is
/// held back until item 128 arrives or the trie is finished.
#[derive(Debug, Default)]
pub struct OrderedTrieBuilder {
    hash_builder: HashBuilder,
    first: Option<Vec<u8>>,
    count: usize,
}

impl OrderedTrieBuilder {
    /// Adds the value of the next index.
    pub fn push(&mut self, value: &[u8]) {
        let index = self.count;
        self.count += 1;
        match index {
            0 => self.first = Some(value.to_vec()),
            1..=127 => self.add(index, value),
            _ => {
                if let Some(first) = self.first.take() {
                    self.add(0, &first);
                }
                self.add(index, value);
            }
        }
    }

    fn add(&mut self, index: usize, value: &[u8]) {
        let key = alloy::rlp::encode_fixed_size(&index);
        self.hash_builder.add_leaf(Nibbles::unpack(&key), value);
    }

    /// The root of everything pushed.
    pub fn root(mut self) -> B256 {
        if let Some(first) = self.first.take() {
            self.add(0, &first);
        }
        self.hash_builder.root()
    }
}

/// Logs blooms that hash each address and topic once per block (see the module docs).
#[derive(Debug, Default)]
struct LogBloomer {
    addresses: AddressMap<B256>,
    topics: B256Map<B256>,
}

/// Addresses, and topics, whose hashes a [`LogBloomer`] keeps at most (a few MB for each, for the
/// block's duration), however many its gas limit lets its logs name.
const MAX_REMEMBERED: usize = 1 << 16;

impl LogBloomer {
    /// The bloom of `logs`, as [`alloy::primitives::logs_bloom`] computes it.
    fn bloom<'a>(&mut self, logs: impl IntoIterator<Item = &'a Log>) -> Bloom {
        let mut bloom = Bloom::ZERO;
        for log in logs {
            bloom.accrue(BloomInput::Hash(remembered(
                &mut self.addresses,
                log.address,
            )));
            for topic in log.topics() {
                bloom.accrue(BloomInput::Hash(remembered(&mut self.topics, *topic)));
            }
        }
        bloom
    }
}

/// The keccak hash of `input`, from `hashes` if it is there (and put there if there is room).
fn remembered<K, S>(hashes: &mut std::collections::HashMap<K, B256, S>, input: K) -> B256
where
    K: AsRef<[u8]> + Eq + std::hash::Hash,
    S: std::hash::BuildHasher,
{
    if let Some(hash) = hashes.get(&input) {
        return *hash;
    }
    let hash = keccak256(input.as_ref());
    if hashes.len() < MAX_REMEMBERED {
        hashes.insert(input, hash);
    }
    hash
}

/// What the roots thread computed for a block.
#[derive(Debug)]
pub struct BlockRoots {
    /// Root of the transactions trie.
    pub transactions_root: B256,
    /// Root of the receipts trie (with their blooms).
    pub receipts_root: B256,
    /// Each receipt's logs bloom, in order.
    pub blooms: Vec<Bloom>,
    /// The union of the receipts' blooms.
    pub logs_bloom: Bloom,
}

/// A block's included transactions with their receipts (without bloom), in order.
pub type Included = Vec<(Arc<Recovered<TxEnvelope>>, ReceiptEnvelope)>;

/// Consumes batches of included transactions in block order until the sender is dropped;
/// returns the roots and blooms.
pub fn compute(batches: Receiver<Included>) -> BlockRoots {
    let (mut transactions, mut receipts) =
        (OrderedTrieBuilder::default(), OrderedTrieBuilder::default());
    let (mut blooms, mut logs_bloom_union) = (Vec::new(), Bloom::ZERO);
    let mut bloomer = LogBloomer::default();
    let mut buf = Vec::with_capacity(512);
    for (tx, mut receipt) in batches.into_iter().flatten() {
        buf.clear();
        tx.encode_2718(&mut buf);
        transactions.push(&buf);
        let bloom = bloomer.bloom(receipt.logs());
        if let Some(with_bloom) = receipt.as_receipt_with_bloom_mut() {
            with_bloom.logs_bloom = bloom;
        }
        buf.clear();
        receipt.encode_2718(&mut buf);
        receipts.push(&buf);
        logs_bloom_union |= bloom;
        blooms.push(bloom);
    }
    BlockRoots {
        transactions_root: transactions.root(),
        receipts_root: receipts.root(),
        blooms,
        logs_bloom: logs_bloom_union,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, Bytes, logs_bloom};
    use alloy_trie::root::ordered_trie_root_with_encoder;

    #[test]
    fn remembered_hashes_give_the_blooms_of_hashing_every_log() {
        let token = Address::repeat_byte(0x70);
        let transfer = keccak256("Transfer(address,address,uint256)");
        let mut bloomer = LogBloomer::default();
        // More distinct topics than are remembered: the blooms past the limit are right too.
        for i in 0..MAX_REMEMBERED as u64 + 100 {
            let logs: Vec<Log> = (0..(i % 3))
                .map(|j| {
                    Log::new_unchecked(
                        if j == 0 {
                            token
                        } else {
                            Address::from_word(keccak256(i.to_be_bytes()))
                        },
                        vec![
                            transfer,
                            B256::left_padding_from(&(i % 500).to_be_bytes()),
                            keccak256((i + j).to_be_bytes()),
                        ],
                        Bytes::new(),
                    )
                })
                .collect();
            assert_eq!(bloomer.bloom(&logs), logs_bloom(&logs), "receipt {i}");
        }
        assert_eq!(bloomer.topics.len(), MAX_REMEMBERED);
    }

    #[test]
    fn streamed_roots_equal_the_ordered_trie_root_at_every_length() {
        // Lengths around the key-order boundaries (0, 1, 127, 128, 129, 255, 256 and beyond).
        for len in [0usize, 1, 2, 126, 127, 128, 129, 130, 255, 256, 257, 1000] {
            let values: Vec<Vec<u8>> = (0..len)
                .map(|i| format!("value {i} {}", "x".repeat(i % 40)).into_bytes())
                .collect();
            let mut streamed = OrderedTrieBuilder::default();
            for v in &values {
                streamed.push(v);
            }
            let expected =
                ordered_trie_root_with_encoder(&values, |v, buf| buf.extend_from_slice(v));
            assert_eq!(streamed.root(), expected, "length {len}");
        }
    }
}
