//! Staking and delegation on a running dev node, with cast and alloy: a second validator,
//! delegation, rewards, undelegation through a short unbonding period, withdrawal; exact
//! balances, events found with `cast logs`, and unauthorized calls reverting with custom errors.

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, U256, address},
    providers::Provider,
    rpc::types::{TransactionReceipt, TransactionRequest},
    sol_types::{SolCall, SolError, SolEvent},
};
use computechain_e2e::{DEV_KEYS, TestNode, revert_data, run_tool, send_ok};
use computechain_precompiles::{
    DELEGATION_ADDRESS, STAKING_ADDRESS,
    interfaces::{IDelegation, IStaking},
};

const DEV_VALIDATOR: Address = address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
const ACCOUNT1: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
const ACCOUNT2: Address = address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

fn fee(r: &TransactionReceipt) -> U256 {
    U256::from(r.gas_used as u128 * r.effective_gas_price)
}

#[tokio::test(flavor = "multi_thread")]
async fn validators_delegation_rewards_and_unbonding_end_to_end() {
    let node = TestNode::start_with_genesis(
        0,
        Some(&|g| {
            g["computechain"]["staking"]["unbondingPeriod"] = 2.into();
            g["computechain"]["staking"]["maxEvidenceAge"] = 2.into();
            g["computechain"]["staking"]["epochLength"] = 3.into();
        }),
    );
    let rpc = node.url();
    let staking = format!("{STAKING_ADDRESS:#x}");
    let delegation = format!("{DELEGATION_ADDRESS:#x}");

    // The dev validator is registered at genesis.
    let set = run_tool(
        "cast",
        &[
            "call",
            "--rpc-url",
            &rpc,
            &staking,
            "activeSet()(address[])",
        ],
    );
    assert_eq!(set.trim(), format!("[{DEV_VALIDATOR}]"));

    // Account 1 creates a second validator with cast, proving it holds the consensus key.
    let consensus = ed25519_dalek::SigningKey::from_bytes(&[0x11; 32]);
    let pop = {
        use std::io::Write;
        let mut child = std::process::Command::new(computechain_e2e::node_binary())
            .args([
                "consensus-key",
                "pop",
                "--chain-id",
                &computechain_e2e::DEV_CHAIN_ID.to_string(),
                "--operator",
                &format!("{ACCOUNT1:#x}"),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "0x{}", alloy::hex::encode([0x11; 32])).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let (key, pop) = pop.trim().split_once(' ').expect("key and proof");
    assert_eq!(
        key,
        format!(
            "0x{}",
            alloy::hex::encode(consensus.verifying_key().to_bytes())
        )
    );
    let created = run_tool(
        "cast",
        &[
            "send",
            "--rpc-url",
            &rpc,
            "--private-key",
            DEV_KEYS[1],
            &staking,
            "createValidator(bytes32,uint16,uint16,uint16,(string,string,string),bytes)",
            key,
            "500",
            "1000",
            "100",
            "(second,https://second.example,a second validator)",
            pop,
            "--value",
            "200ether",
        ],
    );
    assert!(created.contains("1 (success)"), "{created}");
    // The set changes only at the next epoch boundary (every 3 blocks here).
    let active_set = || {
        run_tool(
            "cast",
            &[
                "call",
                "--rpc-url",
                &rpc,
                &staking,
                "activeSet()(address[])",
            ],
        )
    };
    let epoch = || {
        run_tool(
            "cast",
            &[
                "call",
                "--rpc-url",
                &rpc,
                &staking,
                "currentEpoch()(uint256)",
            ],
        )
        .trim()
        .parse::<u64>()
        .unwrap()
    };
    assert_eq!(active_set().trim(), format!("[{DEV_VALIDATOR}]"));
    let before = epoch();
    for _ in 0..3 {
        run_tool(
            "cast",
            &[
                "send",
                "--rpc-url",
                &rpc,
                "--private-key",
                DEV_KEYS[3],
                "0x000000000000000000000000000000000000dEaD",
                "--value",
                "1",
            ],
        );
    }
    assert_eq!(epoch(), before + 1);
    assert_eq!(
        active_set().trim(),
        format!("[{DEV_VALIDATOR}, {ACCOUNT1}]"),
        "ordered by stake: 1000 > 200"
    );
    let advanced = run_tool(
        "cast",
        &[
            "logs",
            "--rpc-url",
            &rpc,
            "--from-block",
            "0",
            "--address",
            &staking,
            "EpochAdvanced(uint256 indexed,uint256)",
        ],
    );
    assert!(
        advanced.contains("blockNumber"),
        "epoch events are queryable: {advanced}"
    );
    let total = run_tool(
        "cast",
        &["call", "--rpc-url", &rpc, &staking, "totalStake()(uint256)"],
    );
    assert!(total.starts_with("1200000000000000000000"), "{total}");

    // Account 2 delegates 50 CPC to account 1 with cast; the event is found with cast logs.
    let sent = run_tool(
        "cast",
        &[
            "send",
            "--rpc-url",
            &rpc,
            "--private-key",
            DEV_KEYS[2],
            &delegation,
            "delegate(address)",
            &format!("{ACCOUNT1:#x}"),
            "--value",
            "50ether",
        ],
    );
    assert!(sent.contains("1 (success)"), "{sent}");
    let amount = run_tool(
        "cast",
        &[
            "call",
            "--rpc-url",
            &rpc,
            &delegation,
            "delegation(address,address)(uint256)",
            &format!("{ACCOUNT2:#x}"),
            &format!("{ACCOUNT1:#x}"),
        ],
    );
    assert!(amount.starts_with("50000000000000000000"), "{amount}");
    let logs = run_tool(
        "cast",
        &[
            "logs",
            "--rpc-url",
            &rpc,
            "--from-block",
            "0",
            "--address",
            &delegation,
            "Delegated(address indexed,address indexed,uint256)",
        ],
    );
    assert_eq!(logs.matches("transactionHash").count(), 1, "{logs}");
    assert!(
        logs.to_lowercase()
            .contains(&format!("{:x}", ACCOUNT2).to_lowercase()[..]),
        "{logs}"
    );

    // Alloy: delegate to the dev validator (the proposer), earn rewards, claim them exactly.
    let p2 = node.provider(2);
    let send = |to: Address, data: Vec<u8>, value: U256| {
        TransactionRequest::default()
            .with_to(to)
            .with_input(data)
            .with_value(value)
    };
    let r = p2
        .send_transaction(send(
            DELEGATION_ADDRESS,
            IDelegation::delegateCall {
                validator: DEV_VALIDATOR,
            }
            .abi_encode(),
            ether(100),
        ))
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
    // A few more blocks pay rewards to the dev validator's pool.
    for _ in 0..3 {
        let r = node
            .provider(3)
            .send_transaction(send(Address::repeat_byte(1), vec![], U256::from(1)))
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert!(r.status());
    }
    let pending_call = IDelegation::pendingRewardsCall {
        delegator: ACCOUNT2,
        validator: DEV_VALIDATOR,
    };
    let pending = IDelegation::pendingRewardsCall::abi_decode_returns(
        &p2.call(send(
            DELEGATION_ADDRESS,
            pending_call.abi_encode(),
            U256::ZERO,
        ))
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(pending > U256::ZERO, "delegation earned nothing");
    let before = p2.get_balance(ACCOUNT2).await.unwrap();
    let claim = p2
        .send_transaction(send(
            DELEGATION_ADDRESS,
            IDelegation::claimRewardsCall {
                validator: DEV_VALIDATOR,
            }
            .abi_encode(),
            U256::ZERO,
        ))
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(claim.status());
    let claimed = IDelegation::RewardsClaimed::decode_log_data(claim.inner.logs()[0].data())
        .unwrap()
        .amount;
    // Rewards are credited at the end of each block: the claim pays exactly what was pending
    // after the block before it.
    let claim_block = claim.block_number.unwrap();
    let pending_before_claim = IDelegation::pendingRewardsCall::abi_decode_returns(
        &p2.call(send(
            DELEGATION_ADDRESS,
            pending_call.abi_encode(),
            U256::ZERO,
        ))
        .block((claim_block - 1).into())
        .await
        .unwrap(),
    )
    .unwrap();
    assert!(pending_before_claim >= pending);
    assert_eq!(claimed, pending_before_claim);
    assert_eq!(
        p2.get_balance(ACCOUNT2).await.unwrap(),
        before + claimed - fee(&claim)
    );

    // Undelegate 20 CPC from account 1's validator, wait out the 2 s unbonding, withdraw.
    let undelegate = p2
        .send_transaction(send(
            DELEGATION_ADDRESS,
            IDelegation::undelegateCall {
                validator: ACCOUNT1,
                amount: ether(20),
            }
            .abi_encode(),
            U256::ZERO,
        ))
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(undelegate.status());
    let early = p2
        .call(
            send(
                DELEGATION_ADDRESS,
                IDelegation::withdrawUnbondedCall {}.abi_encode(),
                U256::ZERO,
            )
            .with_from(ACCOUNT2),
        )
        .await
        .unwrap_err();
    assert_eq!(
        &early
            .as_error_resp()
            .and_then(|e| e.as_revert_data())
            .unwrap()[..4],
        IDelegation::NothingToWithdraw::SELECTOR
    );
    // Advance the chain until its clock passes the entry's completion time (on-demand blocks
    // are stamped at least one second apart, so the chain may run ahead of the wall clock).
    let entries = IDelegation::unbondingOfCall::abi_decode_returns(
        &p2.call(send(
            DELEGATION_ADDRESS,
            IDelegation::unbondingOfCall {
                delegator: ACCOUNT2,
            }
            .abi_encode(),
            U256::ZERO,
        ))
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (entries.len(), entries[0].amount, entries[0].validator),
        (1, ether(20), ACCOUNT1)
    );
    loop {
        let head = p2
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .unwrap()
            .unwrap();
        if head.header.timestamp >= entries[0].completionTime {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        node.provider(3)
            .send_transaction(send(Address::repeat_byte(1), vec![], U256::from(1)))
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }
    let before = p2.get_balance(ACCOUNT2).await.unwrap();
    let withdraw = p2
        .send_transaction(send(
            DELEGATION_ADDRESS,
            IDelegation::withdrawUnbondedCall {}.abi_encode(),
            U256::ZERO,
        ))
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(withdraw.status());
    assert_eq!(
        p2.get_balance(ACCOUNT2).await.unwrap(),
        before + ether(20) - fee(&withdraw)
    );
    let left = run_tool(
        "cast",
        &[
            "call",
            "--rpc-url",
            &rpc,
            &delegation,
            "delegation(address,address)(uint256)",
            &format!("{ACCOUNT2:#x}"),
            &format!("{ACCOUNT1:#x}"),
        ],
    );
    assert!(left.starts_with("30000000000000000000"), "{left}");

    // Unauthorized: only the protocol distributes rewards; only stake owners unbond.
    let err = p2
        .call(
            send(
                STAKING_ADDRESS,
                IStaking::distributeRewardsCall {
                    proposer: ACCOUNT2,
                    amount: ether(1),
                }
                .abi_encode(),
                U256::ZERO,
            )
            .with_from(ACCOUNT2),
        )
        .await
        .unwrap_err();
    let data = err
        .as_error_resp()
        .and_then(|e| e.as_revert_data())
        .unwrap();
    assert_eq!(
        IStaking::Unauthorized::abi_decode(&data).unwrap().caller,
        ACCOUNT2
    );
    let err = node
        .provider(3)
        .call(
            send(
                DELEGATION_ADDRESS,
                IDelegation::undelegateCall {
                    validator: ACCOUNT1,
                    amount: ether(1),
                }
                .abi_encode(),
                U256::ZERO,
            )
            .with_from(address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906")),
        )
        .await
        .unwrap_err();
    let data = err
        .as_error_resp()
        .and_then(|e| e.as_revert_data())
        .unwrap();
    assert_eq!(
        IDelegation::InsufficientDelegation::abi_decode(&data)
            .unwrap()
            .available,
        U256::ZERO
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn double_sign_evidence_slashes_and_pays_the_reporter_end_to_end() {
    use alloy::primitives::B256;
    use computechain_precompiles::staking::evidence::vote_message;
    use ed25519_dalek::{Signer, SigningKey};

    const ACCOUNT3: Address = address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906");
    use computechain_precompiles::staking::evidence::pop_message;
    // Epochs of 2 blocks, so the new validator holds a seat soon.
    let node = TestNode::start_with_genesis(
        0,
        Some(&|g| g["computechain"]["staking"]["epochLength"] = 2.into()),
    );
    let send = |to: Address, data: Vec<u8>, value: U256| {
        TransactionRequest::default()
            .with_to(to)
            .with_input(data)
            .with_value(value)
    };
    let (p1, p2, p3) = (node.provider(1), node.provider(2), node.provider(3));
    let consensus = SigningKey::from_bytes(&[0x42; 32]);
    let proof = consensus.sign(&pop_message(computechain_e2e::DEV_CHAIN_ID, ACCOUNT1));
    send_ok(
        &p1,
        send(
            STAKING_ADDRESS,
            IStaking::createValidatorCall {
                consensusKey: consensus.verifying_key().to_bytes().into(),
                commissionBps: 500,
                maxCommissionBps: 1000,
                maxChangeBps: 100,
                description: IStaking::Description::default(),
                proofOfPossession: proof.to_bytes().to_vec().into(),
            }
            .abi_encode(),
            ether(200),
        ),
    )
    .await;
    send_ok(
        &p2,
        send(
            DELEGATION_ADDRESS,
            IDelegation::delegateCall {
                validator: ACCOUNT1,
            }
            .abi_encode(),
            ether(100),
        ),
    )
    .await;

    // Blocks until an epoch boundary has passed: from then on the validator holds a seat of 300.
    for _ in 0..2 {
        send_ok(&p3, send(Address::repeat_byte(1), vec![], U256::from(1))).await;
    }
    // Two votes for different blocks at the same height and round, signed with the key.
    let height = p3.get_block_number().await.unwrap();
    let vote = |signer: &SigningKey, hash: B256| IStaking::SignedVote {
        height,
        round: 0,
        blockHash: hash,
        signature: signer
            .sign(&vote_message(
                computechain_e2e::DEV_CHAIN_ID,
                height,
                0,
                hash,
            ))
            .to_bytes()
            .to_vec()
            .into(),
    };
    let (a, b) = (B256::repeat_byte(0xa1), B256::repeat_byte(0xb2));
    let evidence = |first, second| {
        send(
            STAKING_ADDRESS,
            IStaking::submitDoubleSignEvidenceCall {
                consensusKey: consensus.verifying_key().to_bytes().into(),
                first,
                second,
            }
            .abi_encode(),
            U256::ZERO,
        )
    };
    // A forged vote is refused with the custom error.
    let forged = vote(&SigningKey::from_bytes(&[1; 32]), b);
    let err = p3
        .call(evidence(vote(&consensus, a), forged).with_from(ACCOUNT3))
        .await
        .unwrap_err();
    assert_eq!(
        IStaking::InvalidVoteSignature::abi_decode(&revert_data(&err)).unwrap(),
        IStaking::InvalidVoteSignature {
            height,
            round: 0,
            blockHash: b
        }
    );

    let before = p3.get_balance(ACCOUNT3).await.unwrap();
    let r = send_ok(&p3, evidence(vote(&consensus, a), vote(&consensus, b))).await;
    println!("submitDoubleSignEvidence gas_used={}", r.gas_used);
    // 5% of the seat's 300; the reporter receives 10% of the operator's own loss (10 of its
    // 200), the rest is burned.
    let logs = r.inner.logs();
    let slashed = IStaking::ValidatorSlashed::decode_log_data(logs[0].data()).unwrap();
    assert_eq!(
        (slashed.operator, slashed.reason, slashed.amount),
        (ACCOUNT1, 2, ether(15))
    );
    let reward = ether(1);
    let reported = IStaking::DoubleSignReported::decode_log_data(logs[1].data()).unwrap();
    assert_eq!((reported.reporter, reported.reward), (ACCOUNT3, reward));
    assert_eq!(
        p3.get_balance(ACCOUNT3).await.unwrap(),
        before - fee(&r) + reward
    );
    let call = |data: Vec<u8>, to: Address| p3.call(send(to, data, U256::ZERO));
    let info = IStaking::validatorCall::abi_decode_returns(
        &call(
            IStaking::validatorCall { operator: ACCOUNT1 }.abi_encode(),
            STAKING_ADDRESS,
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        (info.tombstoned, info.status, info.totalStake),
        (true, 3, ether(285))
    );
    let delegation = IDelegation::delegationCall::abi_decode_returns(
        &call(
            IDelegation::delegationCall {
                delegator: ACCOUNT2,
                validator: ACCOUNT1,
            }
            .abi_encode(),
            DELEGATION_ADDRESS,
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(delegation, ether(95), "the delegator loses the same 5%");
    let burned = IStaking::totalBurnedCall::abi_decode_returns(
        &call(IStaking::totalBurnedCall {}.abi_encode(), STAKING_ADDRESS)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(burned, ether(15) - reward);
    let found = run_tool(
        "cast",
        &[
            "logs",
            "--rpc-url",
            &node.url(),
            "--from-block",
            "0",
            "--address",
            &format!("{STAKING_ADDRESS:#x}"),
            "ValidatorSlashed(address indexed,uint8,uint16,uint256)",
        ],
    );
    assert_eq!(found.matches("transactionHash").count(), 1, "{found}");
}
