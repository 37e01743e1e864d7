//! Bad configuration gets a clear error and a non-zero exit, never a panic.

use computechain_e2e::{TestNode, node_binary};
use std::process::Command;

fn fails_with(args: &[&str], expected: &str) {
    let out = Command::new(node_binary()).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected {expected:?} in {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
}

#[test]
fn bad_configuration_is_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    fails_with(&["node"], "no chain selected: pass --dev");
    fails_with(
        &["node", "--genesis", "/nonexistent/genesis.json"],
        "cannot read genesis file /nonexistent/genesis.json",
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"config\":{\"chainId\":0}}").unwrap();
    fails_with(
        &["node", "--genesis", bad.to_str().unwrap()],
        "invalid genesis",
    );
    fails_with(
        &["node", "--dev", "--http.addr", "not-an-ip"],
        "invalid value 'not-an-ip' for '--http.addr",
    );
    fails_with(
        &["node", "--dev", "--block-time", "soon"],
        "invalid value 'soon' for '--block-time",
    );

    // A second node on a running node's data directory or port is refused.
    let running = TestNode::start(1);
    let port = running.port.to_string();
    let other_dir = dir.path().join("other");
    fails_with(
        &[
            "node",
            "--dev",
            "--datadir",
            running.datadir.to_str().unwrap(),
            "--http.port",
            "0",
        ],
        "cannot open data directory",
    );
    fails_with(
        &[
            "node",
            "--dev",
            "--datadir",
            other_dir.to_str().unwrap(),
            "--http.port",
            &port,
        ],
        "cannot serve RPC",
    );
}

#[test]
fn the_pool_holds_as_many_transactions_as_the_txpool_flag_allows() {
    use alloy::primitives::Address;
    use computechain_e2e::{DEV_CHAIN_ID, DEV_KEYS, sign_transfer};
    use serde_json::json;
    // No block within the test: the transactions stay in the pool.
    let node = TestNode::start_with(3600, None, &["--txpool.globalslots", "2"]);
    for nonce in 0..2 {
        let (_, raw) = sign_transfer(DEV_KEYS[0], DEV_CHAIN_ID, nonce, Address::repeat_byte(1), 1);
        node.call("eth_sendRawTransaction", json!([raw]));
    }
    let (_, third) = sign_transfer(DEV_KEYS[1], DEV_CHAIN_ID, 0, Address::repeat_byte(1), 1);
    let refused = node.rpc("eth_sendRawTransaction", json!([third]));
    assert_eq!(refused["error"]["message"], "txpool is full", "{refused}");
    let pending_nonce = |key: &str| {
        let address = key
            .parse::<alloy::signers::local::PrivateKeySigner>()
            .unwrap()
            .address();
        node.call("eth_getTransactionCount", json!([address, "pending"]))
    };
    assert_eq!(pending_nonce(DEV_KEYS[0]), json!("0x2"));
    assert_eq!(pending_nonce(DEV_KEYS[1]), json!("0x0"));
}
