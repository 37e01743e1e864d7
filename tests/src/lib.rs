//! End-to-end test harness: starts the real `computechain` binary on a free loopback port with a
//! temporary data directory, and offers raw JSON-RPC, alloy providers and the Foundry tools.

use alloy::{
    network::EthereumWallet,
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use serde_json::{Value, json};
use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Private keys of the first dev accounts (the standard test mnemonic).
pub const DEV_KEYS: [&str; 4] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];

/// The dev chain id.
pub const DEV_CHAIN_ID: u64 = 7357;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The node binary built by cargo next to this test executable.
pub fn node_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("computechain");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build -p computechain-node` first",
        bin.display()
    );
    bin
}

/// A Foundry tool installed by `scripts/setup.sh`.
pub fn foundry_tool(name: &str) -> PathBuf {
    let bin = workspace_root().join(".tools/bin").join(name);
    assert!(
        bin.exists(),
        "{} missing: run scripts/setup.sh",
        bin.display()
    );
    bin
}

/// A running node; killed on drop.
#[derive(Debug)]
pub struct TestNode {
    child: Option<Child>,
    /// Data directory (kept across restarts).
    pub datadir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// RPC port.
    pub port: u16,
    block_time: u64,
    genesis: Option<PathBuf>,
    /// Further `computechain node` flags.
    flags: Vec<String>,
}

impl TestNode {
    /// Starts a dev node sealing every `block_time` seconds (0: on demand).
    pub fn start(block_time: u64) -> Self {
        Self::start_with_genesis(block_time, None)
    }

    /// Starts a node on the dev genesis modified by `edit` (e.g. a short unbonding period).
    pub fn start_with_genesis(block_time: u64, edit: Option<&dyn Fn(&mut Value)>) -> Self {
        Self::start_with(block_time, edit, &[])
    }

    /// Starts a node on the dev genesis modified by `edit`, with further `flags`.
    pub fn start_with(block_time: u64, edit: Option<&dyn Fn(&mut Value)>, flags: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let genesis = edit.map(|edit| {
            let dev = std::fs::read_to_string(workspace_root().join("genesis/dev.json")).unwrap();
            let mut g: Value = serde_json::from_str(&dev).unwrap();
            edit(&mut g);
            let path = tmp.path().join("genesis.json");
            std::fs::write(&path, g.to_string()).unwrap();
            path
        });
        let mut node = Self {
            child: None,
            datadir: tmp.path().join("data"),
            _tmp: Some(tmp),
            port: 0,
            block_time,
            genesis,
            flags: flags.iter().map(|f| f.to_string()).collect(),
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log =
            std::fs::File::create(self.datadir.with_extension(format!("{port}.log"))).unwrap();
        let mut command = Command::new(node_binary());
        command.args([
            "node",
            "--dev",
            "--http.port",
            &port.to_string(),
            "--block-time",
            &self.block_time.to_string(),
        ]);
        if let Some(genesis) = &self.genesis {
            command.arg("--genesis").arg(genesis);
        }
        command.args(&self.flags);
        let child = command
            .arg("--datadir")
            .arg(&self.datadir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn node");
        self.child = Some(child);
        self.port = port;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.try_rpc("eth_chainId", json!([])).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node did not start; log: {}", self.log());
    }

    /// The node's stderr log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.datadir.with_extension(format!("{}.log", self.port)))
            .unwrap_or_default()
    }

    /// Kills the process with SIGKILL (no shutdown path runs).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the node again on the same data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// HTTP URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// POSTs a raw body; returns the HTTP status and body.
    pub fn post_raw(&self, body: &[u8]) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        // A server refusing an oversized body answers and closes before reading it all: the
        // write then fails, but the answer is there to read.
        let _ = stream.write_all(body);
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        // Chunked bodies: keep the JSON part.
        let body = match (body.find(['{', '[']), body.rfind(['}', ']'])) {
            (Some(a), Some(b)) if b >= a => body[a..=b].to_string(),
            _ => body,
        };
        Ok((status, body))
    }

    fn try_rpc(&self, method: &str, params: Value) -> std::io::Result<Value> {
        let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (_, body) = self.post_raw(req.to_string().as_bytes())?;
        serde_json::from_str(&body).map_err(std::io::Error::other)
    }

    /// A JSON-RPC call; returns the whole response object (`result` or `error`).
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// A JSON-RPC call that must succeed; returns `result`.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let r = self.rpc(method, params.clone());
        assert!(r.get("error").is_none(), "{method}({params}) failed: {r}");
        r["result"].clone()
    }

    /// An alloy provider signing with dev account `index`.
    pub fn provider(&self, index: usize) -> DynProvider {
        let signer: PrivateKeySigner = DEV_KEYS[index].parse().unwrap();
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(self.url().parse().unwrap())
            .erased()
    }

    /// Waits until the chain reaches `number`.
    pub fn wait_for_block(&self, number: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while hex_u64(&self.call("eth_blockNumber", json!([]))) < number {
            assert!(Instant::now() < deadline, "block {number} not reached");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Parses a hex quantity.
pub fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().expect("hex string").trim_start_matches("0x"), 16)
        .expect("hex quantity")
}

/// Parses a hex quantity as u128.
pub fn hex_u128(v: &Value) -> u128 {
    u128::from_str_radix(v.as_str().expect("hex string").trim_start_matches("0x"), 16)
        .expect("hex quantity")
}

/// Creation bytecode of the example Counter contract, from `forge build`'s output.
pub fn counter_bytecode() -> alloy::primitives::Bytes {
    let path = workspace_root().join("contracts/out/Counter.sol/Counter.json");
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} missing: run forge build", path.display())),
    )
    .unwrap();
    json["bytecode"]["object"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs a Foundry tool against the node; returns stdout, panicking with stderr on failure.
pub fn run_tool(tool: &str, args: &[&str]) -> String {
    let out = Command::new(foundry_tool(tool))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("run foundry tool");
    assert!(
        out.status.success(),
        "{tool} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Signs an EIP-1559 transfer with `key`; returns its hash and raw hex.
pub fn sign_transfer(
    key: &str,
    chain_id: u64,
    nonce: u64,
    to: alloy::primitives::Address,
    value: u128,
) -> (alloy::primitives::B256, String) {
    use alloy::{
        consensus::{SignableTransaction, TxEip1559, TxEnvelope},
        eips::Encodable2718,
        signers::SignerSync,
    };
    let signer: PrivateKeySigner = key.parse().unwrap();
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 10_000_000_000,
        max_priority_fee_per_gas: 1_000,
        to: alloy::primitives::TxKind::Call(to),
        value: alloy::primitives::U256::from(value),
        ..Default::default()
    };
    let sig = signer.sign_hash_sync(&tx.signature_hash()).unwrap();
    let env = TxEnvelope::from(tx.into_signed(sig));
    (
        *env.tx_hash(),
        alloy::hex::encode_prefixed(env.encoded_2718()),
    )
}

alloy::sol! {
    /// Binding of `contracts/src/examples/Counter.sol`.
    #[sol(rpc)]
    contract Counter {
        function setNumber(uint256 value) public;
        function number() public view returns (uint256);
        function fail() public pure;
        function deposit() public payable;
        event NumberChanged(address indexed caller, uint256 oldValue, uint256 newValue);
        error TooLarge(uint256 value, uint256 max);
    }
}

/// Sends `tx` from `provider`'s account and waits for its receipt, which must show success.
pub async fn send_ok(
    provider: &DynProvider,
    tx: alloy::rpc::types::TransactionRequest,
) -> alloy::rpc::types::TransactionReceipt {
    let receipt = provider
        .send_transaction(tx)
        .await
        .expect("transaction sent")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(receipt.status(), "transaction failed: {receipt:?}");
    receipt
}

/// The revert data of a failed `eth_call`/`eth_estimateGas`.
pub fn revert_data(error: &alloy::transports::TransportError) -> alloy::primitives::Bytes {
    error
        .as_error_resp()
        .and_then(|e| e.as_revert_data())
        .unwrap_or_else(|| panic!("not a revert: {error}"))
}

/// Deploys the example Counter from dev account 1; returns its address.
pub async fn deploy_counter(node: &TestNode) -> alloy::primitives::Address {
    use alloy::network::TransactionBuilder;
    send_ok(
        &node.provider(1),
        alloy::rpc::types::TransactionRequest::default().with_deploy_code(counter_bytecode()),
    )
    .await
    .contract_address
    .expect("contract address")
}

impl TestNode {
    /// Polls for a transaction's receipt (up to 10 s); `Value::Null` if none came.
    pub fn wait_receipt(&self, hash: &str) -> Value {
        for _ in 0..400 {
            let receipt = self.call("eth_getTransactionReceipt", json!([hash]));
            if !receipt.is_null() {
                return receipt;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Value::Null
    }
}
