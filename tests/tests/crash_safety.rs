//! Crash safety: SIGKILL the node while it seals under load, restart on the same data directory,
//! and check that nothing acknowledged was lost and that the chain continues. Repeated.

use alloy::primitives::Address;
use computechain_e2e::{DEV_CHAIN_ID, DEV_KEYS, TestNode, hex_u64, sign_transfer};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

#[test]
fn sigkill_while_sealing_loses_nothing_acknowledged() {
    let mut node = TestNode::start(0);
    let to = Address::repeat_byte(0x11);
    let mut nonce = 0u64;
    for round in 0..4 {
        // Load: submit transfers continuously; remember those whose receipt the node returned.
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged: HashMap<String, Value>;
        {
            let stop_loader = stop.clone();
            let port = node.port;
            let start_nonce = nonce;
            let loader = std::thread::spawn(move || {
                let rpc = |method: &str, params: Value| -> Option<Value> {
                    let body =
                        json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}).to_string();
                    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
                    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
                    use std::io::{Read, Write};
                    write!(s, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).ok()?;
                    let mut out = String::new();
                    s.read_to_string(&mut out).ok()?;
                    let json = &out[out.find('{')?..=out.rfind('}')?];
                    serde_json::from_str::<Value>(json)
                        .ok()?
                        .get("result")
                        .cloned()
                };
                let mut acked = HashMap::new();
                let mut sent = Vec::new();
                let mut n = start_nonce;
                while !stop_loader.load(Ordering::Relaxed) {
                    let (hash, raw) = sign_transfer(DEV_KEYS[1], DEV_CHAIN_ID, n, to, 1);
                    if rpc("eth_sendRawTransaction", json!([raw])).is_none() {
                        break;
                    }
                    n += 1;
                    sent.push(format!("{hash:#x}"));
                    sent.retain(|h| match rpc("eth_getTransactionReceipt", json!([h])) {
                        Some(r) if !r.is_null() => {
                            acked.insert(h.clone(), r);
                            false
                        }
                        _ => true,
                    });
                }
                acked
            });
            std::thread::sleep(Duration::from_millis(700 + 300 * round));
            node.kill();
            stop.store(true, Ordering::Relaxed);
            acknowledged = loader.join().unwrap();
        }
        assert!(
            !acknowledged.is_empty(),
            "round {round}: no receipts before the kill"
        );
        let highest_acked = acknowledged
            .values()
            .map(|r| hex_u64(&r["blockNumber"]))
            .max()
            .unwrap();

        node.restart();
        // Every acknowledged transaction is still there, in the same block.
        for (hash, before) in &acknowledged {
            let after = node.call("eth_getTransactionReceipt", json!([hash]));
            assert_eq!(
                after["blockHash"], before["blockHash"],
                "round {round}: {hash} moved or vanished"
            );
            assert_eq!(after["status"], "0x1");
        }
        // The head is whole: its header, body and state agree, and it is at least the highest
        // acknowledged block.
        let head = node.call("eth_getBlockByNumber", json!(["latest", false]));
        let head_number = hex_u64(&head["number"]);
        assert!(
            head_number >= highest_acked,
            "round {round}: head {head_number} < acked {highest_acked}"
        );
        let by_hash = node.call("eth_getBlockByHash", json!([head["hash"], false]));
        assert_eq!(by_hash["stateRoot"], head["stateRoot"]);
        let receipts = node.call("eth_getBlockReceipts", json!([head["number"]]));
        assert_eq!(
            receipts.as_array().unwrap().len(),
            head["transactions"].as_array().unwrap().len()
        );
        // Restarting again yields the same head and state root (nothing half-applied).
        node.restart();
        let again = node.call("eth_getBlockByNumber", json!(["latest", false]));
        assert_eq!(
            (again["hash"].clone(), again["stateRoot"].clone()),
            (head["hash"].clone(), head["stateRoot"].clone())
        );

        // The chain keeps producing blocks: the next transaction is mined.
        nonce = hex_u64(&node.call(
            "eth_getTransactionCount",
            json!([
                format!(
                    "{:#x}",
                    alloy::primitives::address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
                ),
                "latest"
            ]),
        ));
        let (hash, raw) = sign_transfer(DEV_KEYS[1], DEV_CHAIN_ID, nonce, to, 1);
        node.call("eth_sendRawTransaction", json!([raw]));
        nonce += 1;
        let receipt = node.wait_receipt(&format!("{hash:#x}"));
        assert_eq!(
            receipt["status"], "0x1",
            "round {round}: chain did not continue"
        );
        // Balance arithmetic across restarts: every mined transfer moved exactly 1 wei.
        let balance = node.call("eth_getBalance", json!([format!("{to:#x}"), "latest"]));
        assert_eq!(
            u64::from_str_radix(balance.as_str().unwrap().trim_start_matches("0x"), 16).unwrap(),
            nonce
        );
    }
}
