//! Bad input gets the right error and changes nothing.

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::Encodable2718,
    primitives::{Address, Signature, TxKind, U256},
};
use computechain_e2e::{DEV_CHAIN_ID, DEV_KEYS, TestNode, hex_u64, sign_transfer};
use serde_json::{Value, json};

fn error_of(response: &Value) -> (i64, String) {
    let e = &response["error"];
    assert!(e.is_object(), "expected an error, got {response}");
    (
        e["code"].as_i64().unwrap(),
        e["message"].as_str().unwrap().to_string(),
    )
}

fn snapshot(node: &TestNode) -> Value {
    json!([
        node.call("eth_getBlockByNumber", json!(["latest", false]))["stateRoot"],
        node.call("eth_blockNumber", json!([])),
        node.call(
            "eth_getBalance",
            json!(["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"])
        ),
        node.call(
            "eth_getTransactionCount",
            json!(["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "pending"])
        ),
    ])
}

#[test]
fn malformed_requests_get_standard_errors_and_change_nothing() {
    let node = TestNode::start(0);
    // Mine one transaction so that nonce 0 is used.
    let (hash, raw) = sign_transfer(DEV_KEYS[0], DEV_CHAIN_ID, 0, Address::repeat_byte(1), 1);
    node.call("eth_sendRawTransaction", json!([raw.clone()]));
    node.wait_for_block(1);
    assert!(
        !node
            .call("eth_getTransactionReceipt", json!([format!("{hash:#x}")]))
            .is_null()
    );
    let before = snapshot(&node);

    // Malformed JSON.
    let (_, body) = node
        .post_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":")
        .unwrap();
    assert_eq!(error_of(&serde_json::from_str(&body).unwrap()).0, -32700);
    // Not a request object.
    let (_, body) = node.post_raw(b"{\"id\":1}").unwrap();
    assert_eq!(error_of(&serde_json::from_str(&body).unwrap()).0, -32600);
    // Unknown method.
    assert_eq!(error_of(&node.rpc("eth_doesNotExist", json!([]))).0, -32601);
    // Bad params: not an address; missing argument; wrong type.
    assert_eq!(
        error_of(&node.rpc("eth_getBalance", json!(["0xzz", "latest"]))).0,
        -32602
    );
    assert_eq!(
        error_of(&node.rpc("eth_getBlockByNumber", json!([]))).0,
        -32602
    );
    assert_eq!(
        error_of(&node.rpc("eth_sendRawTransaction", json!([42]))).0,
        -32602
    );
    // A raw transaction that is not a transaction.
    let (code, msg) = error_of(&node.rpc("eth_sendRawTransaction", json!(["0xdeadbeef"])));
    assert_eq!(code, -32000);
    assert!(msg.starts_with("invalid transaction"), "{msg}");

    // Bad signature: r = 0 recovers no sender.
    let tx = TxEip1559 {
        chain_id: DEV_CHAIN_ID,
        nonce: 1,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1,
        to: TxKind::Call(Address::repeat_byte(2)),
        value: U256::from(1),
        ..Default::default()
    };
    let bad = TxEnvelope::from(tx.into_signed(Signature::new(U256::ZERO, U256::from(1), false)));
    let (code, msg) = error_of(&node.rpc(
        "eth_sendRawTransaction",
        json!([alloy::hex::encode_prefixed(bad.encoded_2718())]),
    ));
    assert_eq!(code, -32000);
    assert!(msg.starts_with("invalid sender"), "{msg}");

    // Nonce too low (nonce 0 is mined); resubmitting the mined tx too.
    let (_, low) = sign_transfer(DEV_KEYS[0], DEV_CHAIN_ID, 0, Address::repeat_byte(3), 5);
    let (code, msg) = error_of(&node.rpc("eth_sendRawTransaction", json!([low])));
    assert_eq!(
        (code, msg.starts_with("nonce too low")),
        (-32000, true),
        "{msg}"
    );
    let (_, msg) = error_of(&node.rpc("eth_sendRawTransaction", json!([raw])));
    assert!(msg.starts_with("nonce too low"), "{msg}");

    // Insufficient funds: a key with no balance.
    let empty_key = "0x0000000000000000000000000000000000000000000000000000000000000001";
    let (_, poor) = sign_transfer(empty_key, DEV_CHAIN_ID, 0, Address::repeat_byte(4), 1);
    let (code, msg) = error_of(&node.rpc("eth_sendRawTransaction", json!([poor])));
    assert_eq!(
        (
            code,
            msg.starts_with("insufficient funds for gas * price + value")
        ),
        (-32000, true),
        "{msg}"
    );

    // A call moving more value than the sender has: geth's message, no state change.
    let (code, msg) = error_of(&node.rpc(
        "eth_call",
        json!([{"from": "0x0000000000000000000000000000000000000077", "to": "0x0000000000000000000000000000000000000001", "value": "0x1000"}, "latest"]),
    ));
    assert_eq!(
        (code, msg.as_str()),
        (-32000, "insufficient funds for gas * price + value")
    );

    // Wrong chain id.
    let (_, other_chain) = sign_transfer(DEV_KEYS[0], 1, 1, Address::repeat_byte(5), 1);
    let (code, msg) = error_of(&node.rpc("eth_sendRawTransaction", json!([other_chain])));
    assert_eq!((code, msg.as_str()), (-32000, "invalid chain id"));

    // Oversized request body: refused before parsing.
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_call\",\"params\":[{{\"data\":\"0x{}\"}}]}}",
        "00".repeat(6 * 1024 * 1024)
    );
    let (status, body) = node.post_raw(huge.as_bytes()).unwrap();
    assert!(
        status == 413 || body.contains("-32007") || body.contains("too big"),
        "status {status}: {body}"
    );

    // Replacement underpriced and already known.
    let (_, pending) = sign_transfer(DEV_KEYS[2], DEV_CHAIN_ID, 5, Address::repeat_byte(6), 1);
    node.call("eth_sendRawTransaction", json!([pending.clone()]));
    let (_, msg) = error_of(&node.rpc("eth_sendRawTransaction", json!([pending])));
    assert_eq!(msg, "already known");
    let (_, same_fee) = sign_transfer(DEV_KEYS[2], DEV_CHAIN_ID, 5, Address::repeat_byte(7), 1);
    let (_, msg) = error_of(&node.rpc("eth_sendRawTransaction", json!([same_fee])));
    assert_eq!(msg, "replacement transaction underpriced");

    // Batches: each entry answered on its own.
    let batch = json!([
        {"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]},
        {"jsonrpc":"2.0","id":2,"method":"nope","params":[]}
    ]);
    let (_, body) = node.post_raw(batch.to_string().as_bytes()).unwrap();
    let answers: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(answers.len(), 2);
    assert!(
        answers
            .iter()
            .any(|a| a["result"] == format!("{DEV_CHAIN_ID:#x}"))
    );
    assert!(answers.iter().any(|a| a["error"]["code"] == -32601));

    // Nothing above changed the chain or the funded account.
    assert_eq!(snapshot(&node), before);
    assert_eq!(hex_u64(&node.call("eth_blockNumber", json!([]))), 1);
}
