//! A block's transactions root, receipts root and logs blooms, computed on a second thread while
//! the block executes. Each included transaction and its receipt are streamed to the thread, which
//! computes the receipt's bloom and hashes both into ordered tries as they arrive, so sealing does
//! not wait for this work after the last transaction.

use alloy::{
    consensus::{
        Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope, TxType,
        transaction::Recovered,
    },
    eips::eip2718::Encodable2718,
    primitives::{B256, Bloom, logs_bloom},
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
    let mut buf = Vec::with_capacity(512);
    for (tx, mut receipt) in batches.into_iter().flatten() {
        buf.clear();
        tx.encode_2718(&mut buf);
        transactions.push(&buf);
        let bloom = logs_bloom(receipt.logs());
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
    use alloy_trie::root::ordered_trie_root_with_encoder;

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
