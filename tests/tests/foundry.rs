//! The dev node driven by Foundry from npm, unchanged: cast send, forge create, forge script
//! --broadcast, cast call, cast logs.

use computechain_e2e::{DEV_KEYS, TestNode, run_tool};

#[test]
fn cast_and_forge_work_unchanged() {
    let node = TestNode::start(0);
    let rpc = node.url();
    let key = DEV_KEYS[0];

    let sent = run_tool(
        "cast",
        &[
            "send",
            "--rpc-url",
            &rpc,
            "--private-key",
            key,
            "0x000000000000000000000000000000000000bEEF",
            "--value",
            "1ether",
        ],
    );
    assert!(sent.contains("status               1 (success)"), "{sent}");
    let balance = run_tool(
        "cast",
        &[
            "balance",
            "--rpc-url",
            &rpc,
            "0x000000000000000000000000000000000000bEEF",
        ],
    );
    assert_eq!(balance.trim(), "1000000000000000000");

    let created = run_tool(
        "forge",
        &[
            "create",
            "--rpc-url",
            &rpc,
            "--private-key",
            key,
            "--broadcast",
            "contracts/src/examples/Counter.sol:Counter",
        ],
    );
    let address = created
        .lines()
        .find_map(|l| l.strip_prefix("Deployed to: "))
        .unwrap_or_else(|| panic!("no address in: {created}"))
        .trim()
        .to_string();

    let set = run_tool(
        "cast",
        &[
            "send",
            "--rpc-url",
            &rpc,
            "--private-key",
            key,
            &address,
            "setNumber(uint256)",
            "41",
        ],
    );
    assert!(set.contains("1 (success)"), "{set}");
    let number = run_tool(
        "cast",
        &["call", "--rpc-url", &rpc, &address, "number()(uint256)"],
    );
    assert_eq!(number.trim(), "41");

    let logs = run_tool(
        "cast",
        &[
            "logs",
            "--rpc-url",
            &rpc,
            "--from-block",
            "0",
            "--address",
            &address,
            "NumberChanged(address indexed,uint256,uint256)",
        ],
    );
    assert!(
        logs.contains("0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266"),
        "{logs}"
    );
    assert_eq!(logs.matches("transactionHash").count(), 1, "{logs}");

    let script = run_tool(
        "forge",
        &[
            "script",
            "contracts/script/DeployCounter.s.sol",
            "--rpc-url",
            &rpc,
            "--broadcast",
            "--private-key",
            key,
        ],
    );
    assert!(
        script.contains("ONCHAIN EXECUTION COMPLETE & SUCCESSFUL"),
        "{script}"
    );
    // The script deployed a second Counter from the same sender and set it to 7.
    let nonce = run_tool(
        "cast",
        &[
            "nonce",
            "--rpc-url",
            &rpc,
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        ],
    );
    let deployed = run_tool(
        "cast",
        &[
            "compute-address",
            "--nonce",
            &(nonce.trim().parse::<u64>().unwrap() - 2).to_string(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        ],
    );
    let deployed = deployed.trim().rsplit(' ').next().unwrap().to_string();
    let seven = run_tool(
        "cast",
        &["call", "--rpc-url", &rpc, &deployed, "number()(uint256)"],
    );
    assert_eq!(seven.trim(), "7");
}
