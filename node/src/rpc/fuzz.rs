//! Property tests over hostile input: arbitrary JSON-RPC requests against the real method set,
//! and arbitrary raw transactions against the pool. Each case must get an answer (a result or
//! a JSON-RPC error), never a panic, and leave the node serving.

use super::{CallLimits, EthApi, Filters, module};
use crate::{chainspec::ChainSpec, node::Node};
use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::Encodable2718,
    primitives::{Address, TxKind, U256, address},
    signers::SignerSync,
};
use jsonrpsee::RpcModule;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;

/// Methods the fuzzer names, beside random ones.
const METHODS: &[&str] = &[
    "eth_call",
    "eth_estimateGas",
    "eth_getBalance",
    "eth_getStorageAt",
    "eth_getProof",
    "eth_feeHistory",
    "eth_getLogs",
    "eth_newFilter",
    "eth_getFilterChanges",
    "eth_getBlockByNumber",
    "eth_getTransactionReceipt",
    "eth_sendRawTransaction",
    "eth_subscribe",
    "eth_chainId",
];

struct Fixture {
    _dir: tempfile::TempDir,
    node: Arc<Node>,
    module: RpcModule<EthApi>,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let dev = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    let node = Arc::new(Node::open(ChainSpec::dev(), dir.path(), dev).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let api = EthApi {
        node: node.clone(),
        limits: CallLimits {
            gas_cap: 50_000_000,
            evm_timeout: std::time::Duration::from_secs(1),
        },
        heavy: super::eth::HeavyWork::new(1),
        newest_logs: Default::default(),
        filters: Arc::new(Filters::default()),
        suggested_tip: Default::default(),
    };
    Fixture {
        _dir: dir,
        node,
        module: module(api).unwrap(),
        runtime,
    }
}

impl Fixture {
    /// Sends a raw request; returns the response, which must be a JSON-RPC response object.
    fn request(&self, body: &str) -> Value {
        let (response, _) = self
            .runtime
            .block_on(self.module.raw_json_request(body, 16))
            .expect("the module answers every request");
        let response: Value = serde_json::from_str(response.get()).expect("a JSON response");
        assert!(
            response.get("result").is_some() || response["error"]["code"].is_i64(),
            "{body} -> {response}"
        );
        response
    }

    fn alive(&self) {
        let r = self.request(r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#);
        assert_eq!(r["result"], "0x1cbd");
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(format!("{n:#x}"))),
        "[a-zA-Z0-9]{0,12}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| json!(alloy::hex::encode_prefixed(b))),
        Just(json!("latest")),
        Just(json!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")),
        Just(json!("0x0000000000000000000000000000000000001000")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("to".to_string()),
                    Just("from".to_string()),
                    Just("data".to_string()),
                    Just("gas".to_string()),
                    Just("value".to_string()),
                    Just("code".to_string()),
                    Just("stateDiff".to_string()),
                    Just("fromBlock".to_string()),
                    Just("address".to_string()),
                    Just("topics".to_string()),
                    "[a-z]{1,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn signed_transfer(node: &Node, nonce: u64) -> Vec<u8> {
    let signer = &crate::dev::dev_accounts(1).unwrap()[0];
    let tx = TxEip1559 {
        chain_id: node.spec.chain_id(),
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        to: TxKind::Call(Address::repeat_byte(7)),
        value: U256::from(1),
        ..Default::default()
    };
    let sig = signer.sign_hash_sync(&tx.signature_hash()).unwrap();
    TxEnvelope::from(tx.into_signed(sig)).encoded_2718()
}

#[test]
fn arbitrary_requests_get_an_answer_and_leave_the_node_serving() {
    let f = fixture();
    let config = ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let answered = std::sync::atomic::AtomicUsize::new(0);
    proptest!(config, |(
        method in prop_oneof![proptest::sample::select(METHODS).prop_map(String::from), "[a-zA-Z_]{1,20}"],
        params in json_value(),
        garbage in proptest::collection::vec(any::<u8>(), 0..200),
    )| {
        f.request(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string());
        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Bytes that are not a request at all: answered with a parse or request error, if
        // they make a string.
        if let Ok(text) = std::str::from_utf8(&garbage) {
            let _ = f.runtime.block_on(f.module.raw_json_request(text, 16));
        }
    });
    assert_eq!(answered.into_inner(), 10_000);
    f.alive();
}

#[test]
fn arbitrary_raw_transactions_are_refused_cleanly() {
    let f = fixture();
    let valid = signed_transfer(&f.node, 0);
    let config = ProptestConfig {
        cases: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        random in proptest::collection::vec(any::<u8>(), 0..300),
        // One change per position: two at the same one could cancel out into the valid bytes.
        flips in proptest::collection::btree_map(0..valid.len(), any::<u8>(), 1..4),
        cut in 0..valid.len(),
    )| {
        let _ = f.node.submit_raw(&random);
        // A valid transaction with a few bytes changed, and one cut short.
        let mut mutated = valid.clone();
        for (at, byte) in &flips {
            mutated[*at] ^= byte | 1;
        }
        let _ = f.node.submit_raw(&mutated);
        prop_assert!(f.node.submit_raw(&valid[..cut]).is_err());
    });
    // The pool still takes a valid transaction, and a block still seals.
    f.node.submit_raw(&valid).unwrap();
    let sealed = f.node.seal_next_block(1).unwrap();
    assert!(
        sealed
            .block
            .transactions
            .iter()
            .any(|t| t.encoded_2718() == valid)
    );
    f.alive();
}
