//! The rest of the RPC surface: typed transactions (EIP-2930, EIP-7702, blob refusal), state
//! overrides, polling filters, pending transactions and the `logs` subscription.

use alloy::{
    consensus::{SignableTransaction, TxEip4844, TxEnvelope},
    eips::{Encodable2718, eip7702::Authorization},
    network::{TransactionBuilder, TransactionBuilder7702},
    primitives::{Address, B256, U256, address},
    providers::{Provider, ProviderBuilder, WsConnect},
    rpc::types::{AccessList, AccessListItem, Filter, TransactionRequest},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolEvent,
};
use computechain_e2e::{Counter, DEV_CHAIN_ID, DEV_KEYS, TestNode, deploy_counter, sign_transfer};
use futures::StreamExt;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn typed_transactions_and_blob_refusal() {
    let node = TestNode::start(0);
    let p = node.provider(1);
    let counter = deploy_counter(&node).await;

    // EIP-2930 with an access list.
    let call = Counter::setNumberCall {
        value: U256::from(3),
    };
    let r = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(counter)
                .with_input(alloy::sol_types::SolCall::abi_encode(&call))
                .with_gas_price(p.get_gas_price().await.unwrap())
                .with_access_list(AccessList(vec![AccessListItem {
                    address: counter,
                    storage_keys: vec![B256::ZERO],
                }])),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
    assert_eq!(r.transaction_type(), alloy::consensus::TxType::Eip2930);

    // EIP-7702: account 2 delegates its code to the Counter; account 1 pays.
    let authority: PrivateKeySigner = DEV_KEYS[2].parse().unwrap();
    let auth = Authorization {
        chain_id: U256::from(DEV_CHAIN_ID),
        address: counter,
        nonce: 0,
    };
    let auth_sig = authority.sign_hash_sync(&auth.signature_hash()).unwrap();
    let signed_auth = auth.into_signed(auth_sig);
    let r = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(authority.address())
                .with_input(alloy::sol_types::SolCall::abi_encode(
                    &Counter::setNumberCall {
                        value: U256::from(11),
                    },
                ))
                .with_authorization_list(vec![signed_auth]),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
    assert_eq!(r.transaction_type(), alloy::consensus::TxType::Eip7702);
    let code = p.get_code_at(authority.address()).await.unwrap();
    assert_eq!(&code[..3], &[0xef, 0x01, 0x00]);
    assert_eq!(&code[3..], counter.as_slice());
    // The delegated account ran the Counter's code against its own storage.
    let delegated = Counter::new(authority.address(), &p);
    assert_eq!(delegated.number().call().await.unwrap(), U256::from(11));
    assert_eq!(
        Counter::new(counter, &p).number().call().await.unwrap(),
        U256::from(3)
    );

    // Blob transactions are refused with a clear error.
    let signer: PrivateKeySigner = DEV_KEYS[0].parse().unwrap();
    let blob = TxEip4844 {
        chain_id: DEV_CHAIN_ID,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        max_fee_per_blob_gas: 1,
        blob_versioned_hashes: vec![B256::with_last_byte(1)],
        to: Address::repeat_byte(1),
        ..Default::default()
    };
    let sig = signer.sign_hash_sync(&blob.signature_hash()).unwrap();
    let env = TxEnvelope::from(blob.into_signed(sig));
    let resp = node.rpc(
        "eth_sendRawTransaction",
        json!([alloy::hex::encode_prefixed(env.encoded_2718())]),
    );
    assert!(
        resp["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("transaction type not supported"),
        "{resp}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn state_overrides_filters_and_pending_lookups() {
    let node = TestNode::start(0);
    let counter = deploy_counter(&node).await;
    let p = node.provider(1);

    // eth_call with a state override of the Counter's slot 0 (`number`).
    let data = alloy::sol_types::SolCall::abi_encode(&Counter::numberCall {});
    let overridden = node.call(
        "eth_call",
        json!([{"to": counter, "data": alloy::hex::encode_prefixed(&data)}, "latest", {format!("{counter:#x}"): {"stateDiff": {format!("{:#066x}", 0): format!("{:#066x}", 99)}}}]),
    );
    assert_eq!(
        U256::from_str_radix(overridden.as_str().unwrap().trim_start_matches("0x"), 16).unwrap(),
        U256::from(99)
    );
    assert_eq!(
        Counter::new(counter, &p).number().call().await.unwrap(),
        U256::ZERO
    );

    // Polling filters.
    let block_filter = node.call("eth_newBlockFilter", json!([]));
    let log_filter = node.call(
        "eth_newFilter",
        json!([{"address": counter, "topics": [Counter::NumberChanged::SIGNATURE_HASH]}]),
    );
    let r = Counter::new(counter, &p)
        .setNumber(U256::from(5))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let blocks = node.call("eth_getFilterChanges", json!([block_filter]));
    assert!(
        blocks
            .as_array()
            .unwrap()
            .contains(&json!(r.block_hash.unwrap())),
        "{blocks}"
    );
    let logs = node.call("eth_getFilterChanges", json!([log_filter]));
    assert_eq!(logs.as_array().unwrap().len(), 1);
    assert_eq!(logs[0]["transactionHash"], json!(r.transaction_hash));
    assert_eq!(
        node.call("eth_getFilterChanges", json!([log_filter]))
            .as_array()
            .unwrap()
            .len(),
        0,
        "changes are reported once"
    );
    assert_eq!(
        node.call("eth_getFilterLogs", json!([log_filter]))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        node.call("eth_uninstallFilter", json!([log_filter])),
        json!(true)
    );
    assert_eq!(
        node.call("eth_uninstallFilter", json!([log_filter])),
        json!(false)
    );
    assert!(node.rpc("eth_getFilterChanges", json!([log_filter]))["error"].is_object());

    // A transaction with a nonce gap waits in the pool and is visible as pending.
    let account1 = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    let nonce = p.get_transaction_count(account1).await.unwrap();
    let (hash, raw) = sign_transfer(
        DEV_KEYS[1],
        DEV_CHAIN_ID,
        nonce + 1,
        Address::repeat_byte(9),
        1,
    );
    node.call("eth_sendRawTransaction", json!([raw]));
    let pending = node.call("eth_getTransactionByHash", json!([hash]));
    assert_eq!(pending["hash"], json!(hash));
    assert!(pending["blockNumber"].is_null());
    assert!(
        node.call("eth_getTransactionReceipt", json!([hash]))
            .is_null()
    );
    // Filling the gap mines both.
    let (_, fill) = sign_transfer(DEV_KEYS[1], DEV_CHAIN_ID, nonce, Address::repeat_byte(9), 1);
    node.call("eth_sendRawTransaction", json!([fill]));
    let receipt = node.wait_receipt(&format!("{hash:#x}"));
    assert_eq!(receipt["status"], "0x1");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_subscription_delivers_matching_events() {
    let node = TestNode::start(0);
    let counter = deploy_counter(&node).await;
    let ws = ProviderBuilder::new()
        .connect_ws(WsConnect::new(node.ws_url()))
        .await
        .unwrap();
    let mut logs = ws
        .subscribe_logs(&Filter::new().address(counter))
        .await
        .unwrap()
        .into_stream();
    let p = node.provider(1);
    let r = Counter::new(counter, &p)
        .setNumber(U256::from(8))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let log = tokio::time::timeout(std::time::Duration::from_secs(10), logs.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(log.transaction_hash, Some(r.transaction_hash));
    assert_eq!(
        Counter::NumberChanged::decode_log_data(log.data())
            .unwrap()
            .newValue,
        U256::from(8)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proofs_verify_against_the_block_state_root() {
    use alloy::trie::{Nibbles, TrieAccount, proof::verify_proof};
    let node = TestNode::start(0);
    let counter = deploy_counter(&node).await;
    let p = node.provider(1);
    Counter::new(counter, &p)
        .setNumber(U256::from(7))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let block = p
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    let root = block.header.state_root;
    let absent_slot = B256::with_last_byte(5);
    let absent_account = Address::repeat_byte(0xde);

    for address in [
        counter,
        address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        absent_account,
    ] {
        let proof = p
            .get_proof(address, vec![B256::ZERO, absent_slot])
            .await
            .unwrap();
        let key = Nibbles::unpack(alloy::primitives::keccak256(address));
        let exists = address != absent_account;
        let leaf = exists.then(|| {
            alloy::rlp::encode(TrieAccount {
                nonce: proof.nonce,
                balance: proof.balance,
                storage_root: proof.storage_hash,
                code_hash: proof.code_hash,
            })
        });
        verify_proof(root, key, leaf, &proof.account_proof)
            .unwrap_or_else(|e| panic!("{address}: {e}"));
        for sp in &proof.storage_proof {
            let slot_key = Nibbles::unpack(alloy::primitives::keccak256(sp.key.as_b256()));
            let value = (!sp.value.is_zero()).then(|| alloy::rlp::encode(sp.value));
            verify_proof(proof.storage_hash, slot_key, value, &sp.proof).unwrap();
        }
        if address == counter {
            assert_eq!(proof.storage_proof[0].value, U256::from(7));
            assert!(proof.storage_proof[1].value.is_zero());
            // A wrong value does not verify.
            let slot_key = Nibbles::unpack(alloy::primitives::keccak256(B256::ZERO));
            assert!(
                verify_proof(
                    proof.storage_hash,
                    slot_key,
                    Some(alloy::rlp::encode(U256::from(8))),
                    &proof.storage_proof[0].proof
                )
                .is_err()
            );
        }
    }
    // Older blocks: a clear error.
    let old = node.rpc("eth_getProof", json!([counter, [], "0x1"]));
    assert_eq!(
        old["error"]["message"],
        "proofs are available for the latest block only"
    );
}
