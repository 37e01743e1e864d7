//! The dev node driven by an unmodified alloy client: transfers with exact balance arithmetic,
//! contract deployment, calls, events, logs, receipts, fee history and WebSocket subscriptions.

use alloy::{
    eips::BlockNumberOrTag,
    network::TransactionBuilder,
    primitives::{Address, U256, address},
    providers::{Provider, ProviderBuilder, WsConnect},
    rpc::types::{Filter, TransactionRequest},
    sol_types::{SolError, SolEvent},
};
use computechain_e2e::{Counter, TestNode, deploy_counter};
use futures::StreamExt;

const ACCOUNT1: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");

#[tokio::test(flavor = "multi_thread")]
async fn transfers_move_exact_amounts_and_burn_exact_fees() {
    let node = TestNode::start(0);
    let p = node.provider(1);
    let to = Address::repeat_byte(0x42);
    // Fees and block rewards go to the staking pool (the fee recipient of every block).
    let pool = address!("0x0000000000000000000000000000000000001000");
    let start_block = p.get_block_number().await.unwrap();
    let start_from = p.get_balance(ACCOUNT1).await.unwrap();
    let start_pool = p.get_balance(pool).await.unwrap();

    // EIP-1559 transfer.
    let r1 = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(to)
                .with_value(U256::from(12_345)),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r1.status());
    assert_eq!(r1.transaction_type(), alloy::consensus::TxType::Eip1559);
    // Legacy transfer.
    let gas_price = p.get_gas_price().await.unwrap();
    let r2 = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(to)
                .with_value(U256::from(1))
                .with_gas_price(gas_price)
                .with_gas_limit(21_000),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r2.status());
    assert_eq!(r2.transaction_type(), alloy::consensus::TxType::Legacy);

    let mut fees = U256::ZERO;
    let mut tips = U256::ZERO;
    for r in [&r1, &r2] {
        assert_eq!(r.gas_used, 21_000);
        let block = p
            .get_block_by_number(r.block_number.unwrap().into())
            .await
            .unwrap()
            .unwrap();
        let base_fee = block.header.base_fee_per_gas.unwrap() as u128;
        fees += U256::from(r.gas_used as u128 * r.effective_gas_price);
        tips += U256::from(r.gas_used as u128 * (r.effective_gas_price - base_fee));
    }
    assert_eq!(
        p.get_balance(ACCOUNT1).await.unwrap(),
        start_from - U256::from(12_346) - fees
    );
    assert_eq!(p.get_balance(to).await.unwrap(), U256::from(12_346));
    // The pool receives exactly the priority fees plus 2 CPC minted per block; the base fee is
    // burned.
    let blocks = p.get_block_number().await.unwrap() - start_block;
    let reward = U256::from(2u64) * U256::from(10u64).pow(U256::from(18));
    assert_eq!(
        p.get_balance(pool).await.unwrap(),
        start_pool + tips + reward * U256::from(blocks)
    );
    // Archive: the balance as of the first transfer's block.
    let at_first = p
        .get_balance(to)
        .block_id(r1.block_number.unwrap().into())
        .await
        .unwrap();
    assert_eq!(at_first, U256::from(12_345));
    assert_eq!(p.get_transaction_count(ACCOUNT1).await.unwrap(), 2);
    let tx = p
        .get_transaction_by_hash(r1.transaction_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tx.block_number, r1.block_number);
}

#[tokio::test(flavor = "multi_thread")]
async fn contracts_deploy_call_emit_and_revert_with_data() {
    let node = TestNode::start(0);
    let p = node.provider(1);
    let address = deploy_counter(&node).await;
    assert!(!p.get_code_at(address).await.unwrap().is_empty());
    let counter = Counter::new(address, &p);

    let receipt = counter
        .setNumber(U256::from(7))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    assert_eq!(counter.number().call().await.unwrap(), U256::from(7));
    let logs = receipt.inner.logs();
    assert_eq!(logs.len(), 1);
    let event = Counter::NumberChanged::decode_log_data(logs[0].data()).unwrap();
    assert_eq!(
        (event.caller, event.oldValue, event.newValue),
        (ACCOUNT1, U256::ZERO, U256::from(7))
    );
    assert_eq!(logs[0].address(), address);

    // eth_getLogs by address + topic, and by block hash.
    let filter = Filter::new()
        .address(address)
        .event_signature(Counter::NumberChanged::SIGNATURE_HASH)
        .from_block(0);
    let found = p.get_logs(&filter).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].transaction_hash, Some(receipt.transaction_hash));
    let by_hash = p
        .get_logs(&Filter::new().at_block_hash(receipt.block_hash.unwrap()))
        .await
        .unwrap();
    // The transaction's log, then the block's reward distribution (a system-call log, in no
    // transaction).
    assert_eq!(by_hash.len(), 2);
    assert_eq!(by_hash[0].transaction_hash, Some(receipt.transaction_hash));
    assert_eq!(
        by_hash[1].address(),
        address!("0x0000000000000000000000000000000000001000")
    );
    assert_eq!(
        (by_hash[1].transaction_hash, by_hash[1].log_index),
        (None, Some(1))
    );
    let none = p
        .get_logs(&Filter::new().address(Address::repeat_byte(9)).from_block(0))
        .await
        .unwrap();
    assert!(none.is_empty());

    // Storage is readable with eth_getStorageAt (slot 0 = number).
    let slot0 = p.get_storage_at(address, U256::ZERO).await.unwrap();
    assert_eq!(slot0, U256::from(7));

    // Revert data comes back with eth_call and eth_estimateGas.
    let Err(err) = counter.fail().call().await else {
        panic!("fail() must revert")
    };
    let revert = err.as_revert_data().expect("revert data");
    assert_eq!(
        alloy::sol_types::Revert::abi_decode(&revert)
            .unwrap()
            .reason,
        "counter: always fails"
    );
    let err = counter
        .setNumber(U256::from(2_000_000))
        .send()
        .await
        .unwrap_err();
    let data = err.as_revert_data().expect("estimate revert data");
    let decoded = Counter::TooLarge::abi_decode(&data).unwrap();
    assert_eq!(decoded.value, U256::from(2_000_000));
    assert_eq!(counter.number().call().await.unwrap(), U256::from(7));

    // Block receipts carry the same receipt.
    let receipts = p
        .get_block_receipts(receipt.block_number.unwrap().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].transaction_hash, receipt.transaction_hash);
    assert_eq!(receipts[0].inner.logs().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn fee_history_reports_base_fees_and_reward_percentiles() {
    let node = TestNode::start(0);
    let p = node.provider(1);
    for i in 0..3u64 {
        let r = p
            .send_transaction(
                TransactionRequest::default()
                    .with_to(Address::repeat_byte(7))
                    .with_value(U256::from(i + 1))
                    .with_max_priority_fee_per_gas(1_000 * (i as u128 + 1))
                    .with_max_fee_per_gas(10_000_000_000),
            )
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status());
    }
    let history = p
        .get_fee_history(3, BlockNumberOrTag::Latest, &[10.0, 90.0])
        .await
        .unwrap();
    assert_eq!(history.base_fee_per_gas.len(), 4);
    assert_eq!(history.gas_used_ratio.len(), 3);
    let rewards = history.reward.unwrap();
    assert_eq!(rewards.len(), 3);
    // Each block holds one transfer whose tip is 1000, 2000, 3000 wei.
    assert_eq!(
        rewards.iter().map(|r| r[1]).collect::<Vec<_>>(),
        vec![1_000, 2_000, 3_000]
    );
    let head = p.get_block_number().await.unwrap();
    assert_eq!(history.oldest_block, head - 2);
    // The next block's base fee follows EIP-1559 from the newest block.
    let newest = p
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    let expected = newest
        .header
        .inner
        .next_block_base_fee(alloy::eips::eip1559::BaseFeeParams::ethereum())
        .unwrap();
    assert_eq!(*history.base_fee_per_gas.last().unwrap(), expected as u128);
    // Bad percentiles are rejected.
    assert!(
        p.get_fee_history(3, BlockNumberOrTag::Latest, &[90.0, 10.0])
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_new_heads_follow_the_chain() {
    let node = TestNode::start(1);
    let ws = ProviderBuilder::new()
        .connect_ws(WsConnect::new(node.ws_url()))
        .await
        .unwrap();
    let mut heads = ws.subscribe_blocks().await.unwrap().into_stream();
    let first = heads.next().await.unwrap();
    let second = heads.next().await.unwrap();
    assert_eq!(second.number, first.number + 1);
    assert_eq!(second.parent_hash, first.hash);
    let block = ws
        .get_block_by_number(second.number.into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(block.header.hash, second.hash);
    assert_eq!(block.header.state_root, second.state_root);
}
