//! A block's body, transactions root, receipts root and logs blooms, assembled on a second thread
//! while the block executes. Each included transaction and its receipt are streamed to the thread,
//! which computes the receipt's bloom, hashes both into ordered tries and keeps them for the
//! block as they arrive, so sealing does not wait for this work after the last transaction.
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
        Address, B256, Bloom, BloomInput, Log, keccak256,
        map::{AddressMap, B256Map},
    },
};
use alloy_evm::{
    Evm,
    block::BlockValidationError,
    eth::{
        eip6110::accumulate_deposits_from_logs,
        receipt_builder::{ReceiptBuilder, ReceiptBuilderCtx},
    },
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

/// A block's body as the roots thread assembled it, with the roots and blooms it computed.
#[derive(Debug)]
pub struct BlockBody {
    /// The included transactions, in order.
    pub transactions: Vec<TxEnvelope>,
    /// Their senders.
    pub senders: Vec<Address>,
    /// Their receipts, each with its logs bloom.
    pub receipts: Vec<ReceiptEnvelope>,
    /// Root of the transactions trie.
    pub transactions_root: B256,
    /// Root of the receipts trie (with their blooms).
    pub receipts_root: B256,
    /// The union of the receipts' blooms.
    pub logs_bloom: Bloom,
    /// EIP-6110 deposit requests (without their type byte): the logs of the deposit contract,
    /// as alloy-evm's executor parses them from its receipts.
    pub deposits: Vec<u8>,
}

/// A block's included transactions with their receipts (without bloom), in order.
pub type Included = Vec<(Arc<Recovered<TxEnvelope>>, ReceiptEnvelope)>;

/// Consumes batches of included transactions in block order until the sender is dropped;
/// returns the block's body, its roots and blooms, and the deposit requests that
/// `deposit_contract`'s logs make.
pub fn compute(
    batches: Receiver<Included>,
    deposit_contract: Address,
) -> Result<BlockBody, BlockValidationError> {
    let (mut transactions_trie, mut receipts_trie) =
        (OrderedTrieBuilder::default(), OrderedTrieBuilder::default());
    let mut body = BlockBody {
        transactions: Vec::new(),
        senders: Vec::new(),
        receipts: Vec::new(),
        transactions_root: B256::ZERO,
        receipts_root: B256::ZERO,
        logs_bloom: Bloom::ZERO,
        deposits: Vec::new(),
    };
    let mut bloomer = LogBloomer::default();
    let mut buf = Vec::with_capacity(512);
    for batch in batches {
        body.transactions.reserve(batch.len());
        body.senders.reserve(batch.len());
        body.receipts.reserve(batch.len());
        for (tx, mut receipt) in batch {
            buf.clear();
            tx.encode_2718(&mut buf);
            transactions_trie.push(&buf);
            accumulate_deposits_from_logs(deposit_contract, receipt.logs(), &mut body.deposits)?;
            let bloom = bloomer.bloom(receipt.logs());
            if let Some(with_bloom) = receipt.as_receipt_with_bloom_mut() {
                with_bloom.logs_bloom = bloom;
            }
            buf.clear();
            receipt.encode_2718(&mut buf);
            receipts_trie.push(&buf);
            body.logs_bloom |= bloom;
            body.receipts.push(receipt);
            body.senders.push(tx.signer());
            body.transactions.push(tx.inner().clone());
        }
    }
    body.transactions_root = transactions_trie.root();
    body.receipts_root = receipts_trie.root();
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Bytes, logs_bloom};
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
