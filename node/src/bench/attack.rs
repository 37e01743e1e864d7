//! The attacker of the `attack` section: every attack an unauthenticated client could mount
//! over RPC, each in a loop, from its own source address (`127.0.0.2`, so that the honest load
//! from `127.0.0.1` keeps its own per-IP connection allowance).

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use computechain_precompiles::{STAKING_ADDRESS, SYSTEM_ADDRESS, interfaces::IStaking};
use serde_json::{Value, json};
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    task::JoinHandle,
};

/// The attacker's source address.
const ATTACKER_IP: [u8; 4] = [127, 0, 0, 2];
/// Heavy `eth_call`s in flight at once.
const HEAVY_CALLS: usize = 16;
/// Idle connections held open: with the heavy calls and the request workers, within the
/// node's default per-IP allowance (50), so that every attack request is served.
const IDLE_CONNECTIONS: usize = 26;
/// Workers sending the other attacks round and round.
const WORKERS: usize = 4;

/// A running attacker.
pub(super) struct Attacker {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

async fn connect(node: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind((ATTACKER_IP, 0).into())?;
    socket.connect(node).await
}

/// One HTTP exchange on a fresh connection; whether an answer came (it is dropped).
async fn exchange(node: SocketAddr, head: String, body: &str) -> bool {
    let Ok(mut stream) = connect(node).await else {
        return false;
    };
    let request = format!(
        "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    !answer.is_empty()
}

fn post(body: Value) -> (String, String) {
    (
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".into(),
        body.to_string(),
    )
}

fn request(method: &str, params: Value) -> (String, String) {
    post(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
}

/// The requests of each attack, sent round and round.
fn attacks(chain_id: u64) -> eyre::Result<Vec<(String, String)>> {
    let dev0: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".parse()?;
    let moniker_len = computechain_precompiles::layout::validator_base(dev0)
        + U256::from(computechain_precompiles::layout::validator::MONIKER);
    let validator = Bytes::from(IStaking::validatorCall { operator: dev0 }.abi_encode());
    let rewards = Bytes::from(
        IStaking::distributeRewardsCall {
            proposer: dev0,
            amount: U256::from(1),
        }
        .abi_encode(),
    );
    let percentiles: Vec<f64> = (0..100).map(f64::from).collect();
    let too_many: Vec<f64> = (0..=100).map(f64::from).collect();
    let keys: Vec<B256> = (0..1025u64).map(|i| B256::from(U256::from(i))).collect();
    // Unfunded keys whose transfers' cost wraps to zero in 256 bits.
    let wrap = U256::ZERO - U256::from(21_000u64 * 10_000_000_000);
    let mut out = vec![
        request(
            "eth_call",
            json!([{"to": STAKING_ADDRESS, "data": validator}, "latest", {
                format!("{STAKING_ADDRESS:#x}"): {"stateDiff": {
                    format!("{:#x}", B256::from(moniker_len)): format!("{:#x}", B256::from(U256::from(1u64 << 62)))
                }}
            }]),
        ),
        request(
            "eth_call",
            json!([{"from": SYSTEM_ADDRESS, "to": STAKING_ADDRESS, "data": rewards}, "latest"]),
        ),
        request("eth_feeHistory", json!(["0x400", "latest", percentiles])),
        request("eth_feeHistory", json!(["0x400", "latest", too_many])),
        request("eth_getProof", json!([dev0, keys, "latest"])),
        request("eth_getLogs", json!([{"fromBlock": "0x0", "toBlock": "latest"}])),
        request("eth_newFilter", json!([{"fromBlock": "0x0"}])),
        request("eth_newBlockFilter", json!([])),
        (
            // A page on another site opening a WebSocket to the node.
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n".into(),
            String::new(),
        ),
        (
            // DNS rebinding.
            "POST / HTTP/1.1\r\nHost: evil.example:8545\r\nContent-Type: application/json\r\n".into(),
            json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).to_string(),
        ),
    ];
    for k in 0..64u64 {
        let key = PrivateKeySigner::from_bytes(&alloy::primitives::keccak256(format!(
            "computechain-bench-attacker-{k}"
        )))?;
        for nonce in [0, 1, 63] {
            let tx = super::sign(
                &key,
                chain_id,
                nonce,
                Address::repeat_byte(9),
                wrap,
                Bytes::new(),
                21_000,
            )?;
            out.push(request("eth_sendRawTransaction", json!([super::raw(&tx)])));
        }
    }
    // Funded dev accounts queuing transactions behind a nonce gap.
    for key in crate::dev::dev_accounts(10)?.into_iter().skip(5) {
        for nonce in 1..64 {
            let tx = super::sign(
                &key,
                chain_id,
                nonce,
                Address::repeat_byte(9),
                U256::from(1),
                Bytes::new(),
                21_000,
            )?;
            out.push(request("eth_sendRawTransaction", json!([super::raw(&tx)])));
        }
    }
    Ok(out)
}

impl Attacker {
    /// Starts attacking the node at `node`.
    pub(super) fn start(node: SocketAddr, chain_id: u64) -> eyre::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        let requests = Arc::new(attacks(chain_id)?);
        for worker in 0..WORKERS {
            let (stop, sent, requests) = (stop.clone(), sent.clone(), requests.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = worker;
                while !stop.load(Ordering::Relaxed) {
                    let (head, body) = &requests[i % requests.len()];
                    if exchange(node, head.clone(), body).await {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    i += WORKERS;
                }
            }));
        }
        let looping = Address::repeat_byte(0x42);
        let (head, body) = request(
            "eth_call",
            json!([{"to": looping}, "latest", {format!("{looping:#x}"): {"code": "0x5b600056"}}]),
        );
        for _ in 0..HEAVY_CALLS {
            let (stop, sent, head, body) = (stop.clone(), sent.clone(), head.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if exchange(node, head.clone(), &body).await {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        {
            // Connections opened and left idle, reopened when the node closes them.
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut idle: Vec<TcpStream> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    idle.retain(|s| s.peer_addr().is_ok());
                    while idle.len() < IDLE_CONNECTIONS {
                        match connect(node).await {
                            Ok(s) => idle.push(s),
                            Err(_) => break,
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }));
        }
        Ok(Self { stop, sent, tasks })
    }

    /// Stops; returns the number of attack requests the node answered.
    pub(super) async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        self.sent.load(Ordering::Relaxed)
    }
}
