//! Conversion of stored blocks, transactions and receipts into the RPC shapes geth returns.

use alloy::{
    consensus::{ReceiptEnvelope, Transaction as _, TxEnvelope, transaction::Recovered},
    eips::Encodable2718,
    primitives::{Address, B256, U256},
    rlp::Encodable,
    rpc::types::{
        Block, BlockTransactions, Header as RpcHeader, Log, Transaction, TransactionReceipt,
    },
};

use crate::storage::SealedHeader;

/// The RPC header (with hash, zero total difficulty as post-merge geth reports, and the block
/// size when known).
pub(crate) fn header(sealed: &SealedHeader, size: Option<u64>) -> RpcHeader {
    RpcHeader {
        hash: sealed.hash(),
        inner: sealed.inner().clone(),
        total_difficulty: Some(U256::ZERO),
        size: size.map(U256::from),
    }
}

/// Where a transaction sits in a block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxPosition {
    /// Block hash.
    pub(crate) block_hash: B256,
    /// Block number.
    pub(crate) block_number: u64,
    /// Block timestamp.
    pub(crate) timestamp: u64,
    /// Block base fee.
    pub(crate) base_fee: Option<u64>,
    /// Index in the block.
    pub(crate) index: u64,
}

/// An RPC transaction; `at` is `None` for a pending one.
pub(crate) fn transaction(tx: TxEnvelope, from: Address, at: Option<TxPosition>) -> Transaction {
    let effective_gas_price = at.map(|p| tx.effective_gas_price(p.base_fee));
    Transaction {
        inner: Recovered::new_unchecked(tx, from),
        block_hash: at.map(|p| p.block_hash),
        block_number: at.map(|p| p.block_number),
        transaction_index: at.map(|p| p.index),
        effective_gas_price,
        block_timestamp: at.map(|p| p.timestamp),
    }
}

/// A full block, with transactions as objects or hashes.
pub(crate) fn block(
    sealed: &SealedHeader,
    txs: Vec<TxEnvelope>,
    senders: Vec<Address>,
    full: bool,
) -> Block {
    let size = block_size(sealed, &txs);
    let hdr = header(sealed, Some(size));
    let transactions = if full {
        BlockTransactions::Full(
            txs.into_iter()
                .zip(senders)
                .enumerate()
                .map(|(i, (tx, from))| {
                    transaction(
                        tx,
                        from,
                        Some(TxPosition {
                            block_hash: sealed.hash(),
                            block_number: sealed.number,
                            timestamp: sealed.timestamp,
                            base_fee: sealed.base_fee_per_gas,
                            index: i as u64,
                        }),
                    )
                })
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(txs.iter().map(|t| *t.tx_hash()).collect())
    };
    Block {
        header: hdr,
        uncles: vec![],
        transactions,
        withdrawals: Some(Default::default()),
    }
}

/// RLP length of the whole block (header, transactions, empty ommers, empty withdrawals).
fn block_size(sealed: &SealedHeader, txs: &[TxEnvelope]) -> u64 {
    let header_len = sealed.inner().length();
    let txs_payload: usize = txs.iter().map(|t| t.network_len()).sum();
    let txs_len = txs_payload + alloy::rlp::length_of_length(txs_payload);
    let payload = header_len + txs_len + 1 + 1;
    (payload + alloy::rlp::length_of_length(payload)) as u64
}

/// RPC logs of one receipt; `first_log_index` is the block-wide index of its first log.
pub(crate) fn logs(
    receipt: &ReceiptEnvelope,
    tx_hash: B256,
    pos: TxPosition,
    first_log_index: u64,
) -> Vec<Log> {
    receipt
        .logs()
        .iter()
        .enumerate()
        .map(|(i, log)| Log {
            inner: log.clone(),
            block_hash: Some(pos.block_hash),
            block_number: Some(pos.block_number),
            block_timestamp: Some(pos.timestamp),
            transaction_hash: Some(tx_hash),
            transaction_index: Some(pos.index),
            log_index: Some(first_log_index + i as u64),
            removed: false,
        })
        .collect()
}

/// Every receipt of a block in RPC form.
pub(crate) fn block_receipts(
    sealed: &SealedHeader,
    txs: &[TxEnvelope],
    senders: &[Address],
    receipts: &[ReceiptEnvelope],
) -> Vec<TransactionReceipt> {
    let mut out = Vec::with_capacity(receipts.len());
    let (mut log_index, mut prev_cumulative) = (0u64, 0u64);
    for (i, ((tx, from), receipt)) in txs.iter().zip(senders).zip(receipts).enumerate() {
        out.push(rpc_receipt(
            sealed,
            tx,
            *from,
            receipt,
            i,
            log_index,
            prev_cumulative,
        ));
        log_index += receipt.logs().len() as u64;
        prev_cumulative = receipt.cumulative_gas_used();
    }
    out
}

/// The receipt of a block's transaction `index` in RPC form, built alone: what it needs of the
/// transactions before it is their log count and the cumulative gas.
pub(crate) fn receipt_at(
    sealed: &SealedHeader,
    txs: &[TxEnvelope],
    senders: &[Address],
    receipts: &[ReceiptEnvelope],
    index: usize,
) -> Option<TransactionReceipt> {
    let (tx, from, receipt) = (txs.get(index)?, senders.get(index)?, receipts.get(index)?);
    let log_index = receipts[..index]
        .iter()
        .map(|r| r.logs().len() as u64)
        .sum();
    let prev_cumulative = index
        .checked_sub(1)
        .map_or(0, |prev| receipts[prev].cumulative_gas_used());
    Some(rpc_receipt(
        sealed,
        tx,
        *from,
        receipt,
        index,
        log_index,
        prev_cumulative,
    ))
}

fn rpc_receipt(
    sealed: &SealedHeader,
    tx: &TxEnvelope,
    from: Address,
    receipt: &ReceiptEnvelope,
    index: usize,
    first_log_index: u64,
    prev_cumulative: u64,
) -> TransactionReceipt {
    let pos = TxPosition {
        block_hash: sealed.hash(),
        block_number: sealed.number,
        timestamp: sealed.timestamp,
        base_fee: sealed.base_fee_per_gas,
        index: index as u64,
    };
    let mut rpc_logs = logs(receipt, *tx.tx_hash(), pos, first_log_index).into_iter();
    let inner = receipt
        .clone()
        .map_logs(|_| rpc_logs.next().expect("one RPC log per log"));
    TransactionReceipt {
        inner,
        transaction_hash: *tx.tx_hash(),
        transaction_index: Some(index as u64),
        block_hash: Some(sealed.hash()),
        block_number: Some(sealed.number),
        gas_used: receipt.cumulative_gas_used() - prev_cumulative,
        effective_gas_price: tx.effective_gas_price(sealed.base_fee_per_gas),
        blob_gas_used: None,
        blob_gas_price: None,
        from,
        to: tx.to(),
        contract_address: tx.kind().is_create().then(|| from.create(tx.nonce())),
    }
}
