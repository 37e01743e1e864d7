//! The staking and delegation precompiles driven through a real EVM (alloy-evm + revm, in-memory
//! state): every selector, success and revert paths, static and delegate calls, and exact F1
//! rewards with supply conservation over random operation sequences.

use alloy::{
    primitives::{Address, B256, Bytes, Log, TxKind, U256, keccak256},
    sol_types::{SolCall, SolError, SolEvent},
};
use alloy_evm::{Evm, EvmEnv, eth::EthEvmBuilder, precompiles::PrecompilesMap};
use computechain_precompiles::{
    DELEGATION_ADDRESS, STAKING_ADDRESS, SYSTEM_ADDRESS,
    genesis::{GenesisValidator, StakingGenesis, genesis_accounts},
    interfaces::{IDelegation, IStaking},
    staking::evidence::{pop_message, vote_message},
};
use ed25519_dalek::{Signer, SigningKey};
use revm::{
    DatabaseCommit, DatabaseRef,
    bytecode::Bytecode,
    context::{BlockEnv, CfgEnv, TxEnv, result::ExecutionResult},
    database::{CacheDB, EmptyDB},
    precompile::{PrecompileSpecId, Precompiles},
    primitives::hardfork::SpecId,
    state::AccountInfo,
};

const CHAIN_ID: u64 = 7357;

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

fn addr(i: u8) -> Address {
    Address::repeat_byte(i)
}

/// The signing key of test validator `i`.
fn signing_key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i; 32])
}

/// Test validator `i`'s ed25519 consensus key (0: the zero key, which is invalid).
fn consensus_key(i: u8) -> B256 {
    if i == 0 {
        return B256::ZERO;
    }
    signing_key(i).verifying_key().to_bytes().into()
}

/// The proof of possession of `signer`'s consensus key for `operator`.
fn pop_by(signer: &SigningKey, operator: Address) -> Bytes {
    signer
        .sign(&pop_message(CHAIN_ID, operator))
        .to_bytes()
        .to_vec()
        .into()
}

/// The proof of possession of test validator `i`'s key for `operator` (none for key 0).
fn pop(i: u8, operator: Address) -> Bytes {
    if i == 0 {
        return Bytes::new();
    }
    pop_by(&signing_key(i), operator)
}

struct Chain {
    db: CacheDB<EmptyDB>,
    timestamp: u64,
    number: u64,
    minted: U256,
}

/// Outcome of a call: success with output and logs, or revert with data.
#[derive(Debug)]
enum Outcome {
    Ok(Bytes, Vec<Log>),
    Revert(Bytes),
    Halt,
}

impl Outcome {
    fn ok(self) -> (Bytes, Vec<Log>) {
        match self {
            Outcome::Ok(out, logs) => (out, logs),
            other => panic!("expected success, got {other:?}"),
        }
    }

    fn revert<E: SolError + PartialEq + std::fmt::Debug>(self, expected: E) {
        match self {
            Outcome::Revert(data) => assert_eq!(
                E::abi_decode(&data)
                    .unwrap_or_else(|_| panic!("revert {data} is not {}", E::SIGNATURE)),
                expected
            ),
            other => panic!("expected revert {}, got {other:?}", E::SIGNATURE),
        }
    }
}

impl Chain {
    fn new(validators: &[GenesisValidator]) -> Self {
        let params = StakingGenesis {
            min_self_stake: ether(100),
            min_delegation: ether(1),
            max_validators: 2,
            unbonding_period: 1000,
            block_reward: ether(2),
            epoch_length: 10,
            uptime_window: 10,
            min_uptime_bps: 7_500,
            jail_time: 100,
            unjail_fee: ether(10),
            jailed_unstake_penalty_bps: 1_000,
            downtime_slash_bps: [500, 1_000, 10_000],
            double_sign_slash_bps: 500,
            reporter_reward_bps: 1_000,
            max_evidence_age: 100,
            base_fee_burn_bps: 10_000,
            validators: validators.to_vec(),
        };
        let mut db = CacheDB::new(EmptyDB::default());
        let mut minted = U256::ZERO;
        for (address, acc) in genesis_accounts(&params, CHAIN_ID, 1_000_000).unwrap() {
            let code = Bytecode::new_raw(acc.code.clone().unwrap_or_default());
            db.insert_account_info(
                address,
                AccountInfo::new(
                    acc.balance,
                    acc.nonce.unwrap_or_default(),
                    code.hash_slow(),
                    code,
                ),
            );
            for (k, v) in acc.storage.iter().flatten() {
                db.insert_account_storage(
                    address,
                    U256::from_be_bytes(k.0),
                    U256::from_be_bytes(v.0),
                )
                .unwrap();
            }
            minted += acc.balance;
        }
        for i in 1..=20u8 {
            db.insert_account_info(
                addr(i),
                AccountInfo {
                    balance: ether(100_000),
                    ..Default::default()
                },
            );
        }
        Self {
            db,
            timestamp: 1_000_000,
            number: 1,
            minted,
        }
    }

    fn call(&mut self, from: Address, to: Address, value: U256, data: Vec<u8>) -> Outcome {
        let mut cfg = CfgEnv::new_with_spec(SpecId::PRAGUE);
        cfg.chain_id = CHAIN_ID;
        cfg.disable_nonce_check = true;
        let block = BlockEnv {
            number: U256::from(self.number),
            timestamp: U256::from(self.timestamp),
            gas_limit: 30_000_000,
            basefee: 0,
            ..Default::default()
        };
        let mut map = PrecompilesMap::from_static(Precompiles::new(
            PrecompileSpecId::from_spec_id(SpecId::PRAGUE),
        ));
        computechain_precompiles::register(
            &mut map,
            computechain_precompiles::SystemCalls::Honoured,
        );
        let db = std::mem::replace(&mut self.db, CacheDB::new(EmptyDB::default()));
        let mut evm = EthEvmBuilder::new(db, EvmEnv::new(cfg, block))
            .precompiles(map)
            .build();
        let tx = TxEnv::builder()
            .caller(from)
            .kind(TxKind::Call(to))
            .value(value)
            .data(data.into())
            .gas_limit(5_000_000)
            .gas_price(0)
            .chain_id(Some(CHAIN_ID))
            .build_fill();
        let result = if from == SYSTEM_ADDRESS {
            evm.transact_system_call(SYSTEM_ADDRESS, to, tx.data.clone())
                .unwrap()
        } else {
            evm.transact(tx).unwrap()
        };
        evm.db_mut().commit(result.state);
        self.db = evm.finish().0;
        match result.result {
            ExecutionResult::Success { output, logs, .. } => Outcome::Ok(output.into_data(), logs),
            ExecutionResult::Revert { output, .. } => Outcome::Revert(output),
            ExecutionResult::Halt { .. } => Outcome::Halt,
        }
    }

    fn balance(&self, a: Address) -> U256 {
        self.db
            .basic_ref(a)
            .unwrap()
            .map(|i| i.balance)
            .unwrap_or_default()
    }

    fn view<C: SolCall>(&mut self, to: Address, call: C) -> C::Return {
        let (out, _) = self.call(addr(99), to, U256::ZERO, call.abi_encode()).ok();
        C::abi_decode_returns(&out).unwrap()
    }

    fn create(&mut self, operator: Address, key: u8, stake: U256, commission: u16) -> Outcome {
        self.call(
            operator,
            STAKING_ADDRESS,
            stake,
            IStaking::createValidatorCall {
                consensusKey: consensus_key(key),
                commissionBps: commission,
                maxCommissionBps: 5000,
                maxChangeBps: 500,
                description: IStaking::Description {
                    moniker: format!("v{key}"),
                    website: "https://example.org".into(),
                    details: "x".repeat(40),
                },
                proofOfPossession: pop(key, operator),
            }
            .abi_encode(),
        )
    }

    fn delegate(&mut self, delegator: Address, validator: Address, amount: U256) -> Outcome {
        self.call(
            delegator,
            DELEGATION_ADDRESS,
            amount,
            IDelegation::delegateCall { validator }.abi_encode(),
        )
    }

    fn undelegate(&mut self, delegator: Address, validator: Address, amount: U256) -> Outcome {
        self.call(
            delegator,
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::undelegateCall { validator, amount }.abi_encode(),
        )
    }

    /// Starts the next epoch (as the block producer does at a boundary); returns its active set.
    fn next_epoch(&mut self) -> Vec<Address> {
        let (_, logs) = self
            .call(
                SYSTEM_ADDRESS,
                STAKING_ADDRESS,
                U256::ZERO,
                IStaking::advanceEpochCall {}.abi_encode(),
            )
            .ok();
        assert_eq!(logs.len(), 1, "EpochAdvanced is logged");
        self.view(STAKING_ADDRESS, IStaking::activeSetCall {})
    }

    fn distribute(&mut self, proposer: Address, amount: U256) {
        // The block producer mints the reward into the pool, then credits it.
        let info = self.db.basic_ref(STAKING_ADDRESS).unwrap().unwrap();
        self.db.insert_account_info(
            STAKING_ADDRESS,
            AccountInfo {
                balance: info.balance + amount,
                ..info
            },
        );
        self.minted += amount;
        self.call(
            SYSTEM_ADDRESS,
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::distributeRewardsCall { proposer, amount }.abi_encode(),
        )
        .ok();
    }
}

/// Calls `call` and records its selector as exercised.
fn exercise<C: SolCall>(
    chain: &mut Chain,
    exercised: &mut std::collections::HashSet<[u8; 4]>,
    from: Address,
    to: Address,
    value: U256,
    call: C,
) -> Outcome {
    exercised.insert(C::SELECTOR);
    chain.call(from, to, value, call.abi_encode())
}

/// Decodes a successful call's return value.
fn returns<C: SolCall>(outcome: Outcome) -> C::Return {
    C::abi_decode_returns(&outcome.ok().0).unwrap()
}

#[test]
fn every_selector_does_what_its_abi_says_and_unknown_ones_are_refused() {
    use IDelegation as D;
    use IStaking as S;
    let mut chain = Chain::new(&[]);
    let mut seen = std::collections::HashSet::new();
    let (st, de, sys) = (STAKING_ADDRESS, DELEGATION_ADDRESS, SYSTEM_ADDRESS);
    let create = |operator: Address, key: u8| S::createValidatorCall {
        consensusKey: consensus_key(key),
        commissionBps: 0,
        maxCommissionBps: 1000,
        maxChangeBps: 100,
        description: S::Description {
            moniker: format!("v{key}"),
            website: String::new(),
            details: String::new(),
        },
        proofOfPossession: pop(key, operator),
    };
    let c = &mut chain;
    let seen_ = &mut seen;
    exercise(c, seen_, addr(1), st, ether(100), create(addr(1), 1)).ok();
    exercise(c, seen_, addr(2), st, ether(100), create(addr(2), 2)).ok();
    let info = |c: &mut Chain, seen: &mut _, operator| {
        returns::<S::validatorCall>(exercise(
            c,
            seen,
            addr(9),
            st,
            U256::ZERO,
            S::validatorCall { operator },
        ))
    };
    assert_eq!(info(c, seen_, addr(1)).selfStake, ether(100));
    exercise(
        c,
        seen_,
        addr(1),
        st,
        U256::ZERO,
        S::editValidatorCall {
            description: S::Description {
                moniker: "edited".into(),
                website: String::new(),
                details: String::new(),
            },
            commissionBps: 0,
        },
    )
    .ok();
    assert_eq!(info(c, seen_, addr(1)).description.moniker, "edited");
    exercise(c, seen_, addr(1), st, ether(50), S::addStakeCall {}).ok();
    exercise(
        c,
        seen_,
        addr(1),
        st,
        U256::ZERO,
        S::unstakeCall { amount: ether(10) },
    )
    .ok();
    assert_eq!(info(c, seen_, addr(1)).selfStake, ether(140));
    exercise(c, seen_, addr(1), st, U256::ZERO, S::unjailCall {})
        .revert(S::NotJailed { operator: addr(1) });

    exercise(
        c,
        seen_,
        addr(5),
        de,
        ether(20),
        D::delegateCall { validator: addr(1) },
    )
    .ok();
    let delegation = |c: &mut Chain, seen: &mut _, validator| {
        returns::<D::delegationCall>(exercise(
            c,
            seen,
            addr(9),
            de,
            U256::ZERO,
            D::delegationCall {
                delegator: addr(5),
                validator,
            },
        ))
    };
    assert_eq!(delegation(c, seen_, addr(1)), ether(20));
    assert_eq!(
        returns::<D::delegationSharesCall>(exercise(
            c,
            seen_,
            addr(9),
            de,
            U256::ZERO,
            D::delegationSharesCall {
                delegator: addr(5),
                validator: addr(1),
            }
        )),
        ether(20),
        "one share per wei before any slash"
    );
    exercise(
        c,
        seen_,
        addr(5),
        de,
        U256::ZERO,
        D::undelegateCall {
            validator: addr(1),
            amount: ether(5),
        },
    )
    .ok();
    let unbonding = |c: &mut Chain, seen: &mut _, delegator| {
        returns::<D::unbondingOfCall>(exercise(
            c,
            seen,
            addr(9),
            de,
            U256::ZERO,
            D::unbondingOfCall { delegator },
        ))
    };
    let entry = unbonding(c, seen_, addr(5))[0].clone();
    assert_eq!((entry.validator, entry.amount), (addr(1), ether(5)));
    exercise(
        c,
        seen_,
        addr(5),
        de,
        U256::ZERO,
        D::cancelUnbondingCall {
            validator: addr(1),
            amount: ether(5),
            creationHeight: entry.creationHeight,
        },
    )
    .ok();
    assert!(unbonding(c, seen_, addr(5)).is_empty());
    assert_eq!(delegation(c, seen_, addr(1)), ether(20));
    exercise(
        c,
        seen_,
        addr(5),
        de,
        U256::ZERO,
        D::redelegateCall {
            srcValidator: addr(1),
            dstValidator: addr(2),
            amount: ether(4),
        },
    )
    .ok();
    let moved = returns::<D::redelegationsOfCall>(exercise(
        c,
        seen_,
        addr(9),
        de,
        U256::ZERO,
        D::redelegationsOfCall { delegator: addr(5) },
    ));
    assert_eq!((moved.len(), moved[0].initialAmount), (1, ether(4)));
    assert_eq!(delegation(c, seen_, addr(2)), ether(4));

    exercise(c, seen_, sys, st, U256::ZERO, S::advanceEpochCall {}).ok();
    assert_eq!(
        returns::<S::currentEpochCall>(exercise(
            c,
            seen_,
            addr(9),
            st,
            U256::ZERO,
            S::currentEpochCall {}
        )),
        U256::from(2)
    );
    assert_eq!(
        returns::<S::activeSetCall>(exercise(
            c,
            seen_,
            addr(9),
            st,
            U256::ZERO,
            S::activeSetCall {}
        )),
        vec![addr(1), addr(2)],
        "156 before 104"
    );
    // Only the protocol distributes; what it credits is recorded and claimable.
    exercise(
        c,
        seen_,
        addr(1),
        st,
        U256::ZERO,
        S::distributeRewardsCall {
            proposer: addr(1),
            amount: ether(1),
        },
    )
    .revert(S::Unauthorized { caller: addr(1) });
    c.distribute(addr(1), ether(1));
    assert_eq!(
        returns::<S::rewardHistoryCall>(exercise(
            c,
            seen_,
            addr(9),
            st,
            U256::ZERO,
            S::rewardHistoryCall {
                operator: addr(1),
                epoch: U256::from(2),
            }
        )),
        ether(1)
    );
    let pending = returns::<D::pendingRewardsCall>(exercise(
        c,
        seen_,
        addr(9),
        de,
        U256::ZERO,
        D::pendingRewardsCall {
            delegator: addr(5),
            validator: addr(1),
        },
    ));
    // 16 of the 156 staked, no commission: within a wei of 1e18 * 16 / 156.
    let exact = ether(1) * U256::from(16) / U256::from(156);
    assert!(
        pending <= exact && exact - pending <= U256::from(1),
        "{pending}"
    );
    let balance = c.balance(addr(5));
    let claimed = returns::<D::claimRewardsCall>(exercise(
        c,
        seen_,
        addr(5),
        de,
        U256::ZERO,
        D::claimRewardsCall { validator: addr(1) },
    ));
    assert_eq!((claimed, c.balance(addr(5))), (pending, balance + pending));
    let all = returns::<D::claimAllRewardsCall>(exercise(
        c,
        seen_,
        addr(1),
        de,
        U256::ZERO,
        D::claimAllRewardsCall {
            maxValidators: U256::from(10),
        },
    ));
    let exact = ether(1) * U256::from(140) / U256::from(156);
    assert!(all <= exact && exact - all <= U256::from(1), "{all}");
    let (validators, amounts) = {
        let r = returns::<D::delegationsOfCall>(exercise(
            c,
            seen_,
            addr(9),
            de,
            U256::ZERO,
            D::delegationsOfCall { delegator: addr(5) },
        ));
        (r.validators, r.amounts)
    };
    assert_eq!(
        (validators, amounts),
        (vec![addr(1), addr(2)], vec![ether(16), ether(4)])
    );

    // Uptime: a member missing from the signers counts a missed block.
    exercise(
        c,
        seen_,
        sys,
        st,
        U256::ZERO,
        S::recordSignersCall {
            signers: vec![addr(1)],
        },
    )
    .ok();
    assert_eq!(
        (
            info(c, seen_, addr(1)).missedBlocks,
            info(c, seen_, addr(2)).missedBlocks
        ),
        (U256::ZERO, U256::from(1))
    );
    c.number += 1;
    // Evidence for a height of epoch 2, which addr(2) held a seat in.
    let height = c.number;
    let message = returns::<S::voteMessageCall>(exercise(
        c,
        seen_,
        addr(9),
        st,
        U256::ZERO,
        S::voteMessageCall {
            height,
            round: 0,
            blockHash: B256::repeat_byte(0xa1),
        },
    ));
    assert_eq!(
        message.to_vec(),
        vote_message(CHAIN_ID, height, 0, B256::repeat_byte(0xa1))
    );
    assert_eq!(
        returns::<S::popMessageCall>(exercise(
            c,
            seen_,
            addr(9),
            st,
            U256::ZERO,
            S::popMessageCall { operator: addr(2) }
        ))
        .to_vec(),
        pop_message(CHAIN_ID, addr(2))
    );
    let (a, b) = (B256::repeat_byte(0xa1), B256::repeat_byte(0xb2));
    let (_, logs) = exercise(
        c,
        seen_,
        addr(7),
        st,
        U256::ZERO,
        S::submitDoubleSignEvidenceCall {
            consensusKey: consensus_key(2),
            first: vote(2, height, 0, a),
            second: vote(2, height, 0, b),
        },
    )
    .ok();
    let slash = S::ValidatorSlashed::decode_log_data(&logs[0].data)
        .unwrap()
        .amount;
    let reward = S::DoubleSignReported::decode_log_data(&logs[1].data)
        .unwrap()
        .reward;
    assert_eq!(slash, ether(104) / U256::from(20), "5% of the seat's 104");
    assert!(info(c, seen_, addr(2)).tombstoned);
    let listed = |c: &mut Chain, seen: &mut _, status| {
        returns::<S::validatorsCall>(exercise(
            c,
            seen,
            addr(9),
            st,
            U256::ZERO,
            S::validatorsCall {
                status,
                offset: U256::ZERO,
                limit: U256::from(10),
            },
        ))
    };
    assert_eq!(listed(c, seen_, 0), vec![addr(1), addr(2)]);
    assert_eq!(listed(c, seen_, 3), vec![addr(2)], "jailed");

    c.timestamp += 1_000;
    let withdrawn = returns::<D::withdrawUnbondedCall>(exercise(
        c,
        seen_,
        addr(1),
        de,
        U256::ZERO,
        D::withdrawUnbondedCall {},
    ));
    assert_eq!(withdrawn, ether(10), "the unstaked self-stake");
    let total_stake = info(c, seen_, addr(1)).totalStake + info(c, seen_, addr(2)).totalStake;
    assert_eq!(
        returns::<S::totalStakeCall>(exercise(
            c,
            seen_,
            addr(9),
            st,
            U256::ZERO,
            S::totalStakeCall {}
        )),
        total_stake
    );
    assert_eq!(
        returns::<S::totalUnbondingCall>(exercise(
            c,
            seen_,
            addr(9),
            st,
            U256::ZERO,
            S::totalUnbondingCall {}
        )),
        U256::ZERO
    );
    assert_eq!(
        returns::<S::totalBurnedCall>(exercise(
            c,
            seen_,
            addr(9),
            st,
            U256::ZERO,
            S::totalBurnedCall {}
        )),
        slash - reward
    );
    let params = returns::<S::paramsCall>(exercise(
        c,
        seen_,
        addr(9),
        st,
        U256::ZERO,
        S::paramsCall {},
    ));
    assert_eq!(
        (params.maxValidators, params.unbondingPeriod, params.chainId),
        (U256::from(2), U256::from(1000), U256::from(CHAIN_ID))
    );

    // Every selector of both ABIs was exercised above.
    let all: std::collections::HashSet<[u8; 4]> = S::IStakingCalls::SELECTORS
        .iter()
        .chain(D::IDelegationCalls::SELECTORS)
        .copied()
        .collect();
    let missing: Vec<_> = all.difference(&seen).map(alloy::hex::encode).collect();
    assert!(missing.is_empty(), "selectors not exercised: {missing:?}");
    for (target, unknown) in [
        (st, S::UnknownSelector::SELECTOR),
        (de, D::UnknownSelector::SELECTOR),
    ] {
        let Outcome::Revert(data) =
            c.call(addr(1), target, U256::ZERO, vec![0xde, 0xad, 0xbe, 0xef])
        else {
            panic!("unknown selector accepted")
        };
        assert_eq!(&data[..4], unknown);
    }
}

#[test]
fn create_validator_validates_and_records() {
    let mut chain = Chain::new(&[]);
    chain
        .create(addr(1), 1, ether(99), 100)
        .revert(IStaking::SelfStakeTooLow {
            amount: ether(99),
            minimum: ether(100),
        });
    chain
        .create(addr(1), 0, ether(100), 100)
        .revert(IStaking::InvalidConsensusKey { key: B256::ZERO });
    chain
        .create(addr(1), 1, ether(100), 6000)
        .revert(IStaking::InvalidCommission {
            rate: 6000,
            maxRate: 5000,
            maxChange: 500,
        });
    let before = chain.balance(addr(1));
    let (_, logs) = chain.create(addr(1), 1, ether(150), 1000).ok();
    assert_eq!(chain.balance(addr(1)), before - ether(150));
    // Stake is escrowed in the delegation precompile; the staking account keeps only rewards.
    assert_eq!(chain.balance(DELEGATION_ADDRESS), ether(150));
    assert_eq!(chain.balance(STAKING_ADDRESS), U256::ZERO);
    let event = IStaking::ValidatorCreated::decode_log_data(&logs[0].data).unwrap();
    assert_eq!(
        (logs[0].address, event.operator, event.selfStake),
        (STAKING_ADDRESS, addr(1), ether(150))
    );
    chain
        .create(addr(1), 2, ether(100), 100)
        .revert(IStaking::ValidatorExists { operator: addr(1) });
    chain
        .create(addr(2), 1, ether(100), 100)
        .revert(IStaking::InvalidConsensusKey {
            key: consensus_key(1),
        });
    let long = "x".repeat(281);
    let Outcome::Revert(data) = chain.call(
        addr(2),
        STAKING_ADDRESS,
        ether(100),
        IStaking::createValidatorCall {
            consensusKey: consensus_key(2),
            commissionBps: 0,
            maxCommissionBps: 0,
            maxChangeBps: 0,
            description: IStaking::Description {
                moniker: long,
                website: String::new(),
                details: String::new(),
            },
            proofOfPossession: pop(2, addr(2)),
        }
        .abi_encode(),
    ) else {
        panic!()
    };
    assert_eq!(
        IStaking::DescriptionTooLong::abi_decode(&data)
            .unwrap()
            .length,
        U256::from(281)
    );

    let info = chain.view(
        STAKING_ADDRESS,
        IStaking::validatorCall { operator: addr(1) },
    );
    assert_eq!(
        (
            info.selfStake,
            info.totalStake,
            info.commissionBps,
            info.status
        ),
        (ether(150), ether(150), 1000, 1)
    );
    assert_eq!(info.description.moniker, "v1");
    assert_eq!(info.description.details, "x".repeat(40));
    assert_eq!(
        chain.view(STAKING_ADDRESS, IStaking::totalStakeCall {}),
        ether(150)
    );
    assert_eq!(
        chain
            .view(STAKING_ADDRESS, IStaking::paramsCall {})
            .minSelfStake,
        ether(100)
    );
    let Outcome::Revert(data) = chain.call(
        addr(9),
        STAKING_ADDRESS,
        U256::ZERO,
        IStaking::validatorCall { operator: addr(9) }.abi_encode(),
    ) else {
        panic!()
    };
    assert_eq!(
        IStaking::NotValidator::abi_decode(&data).unwrap().operator,
        addr(9)
    );
}

#[test]
fn stake_changes_commission_rules_and_active_set() {
    let mut chain = Chain::new(&[]);
    chain.create(addr(1), 1, ether(100), 1000).ok();
    chain.create(addr(2), 2, ether(300), 1000).ok();
    chain.create(addr(3), 3, ether(200), 1000).ok();
    // The set is fixed per epoch: two seats, top two by total stake.
    assert!(
        chain
            .view(STAKING_ADDRESS, IStaking::activeSetCall {})
            .is_empty()
    );
    assert_eq!(chain.next_epoch(), vec![addr(2), addr(3)]);
    assert_eq!(
        chain.view(STAKING_ADDRESS, IStaking::currentEpochCall {}),
        U256::from(2)
    );
    chain.delegate(addr(4), addr(1), ether(250)).ok();
    assert_eq!(
        chain.view(STAKING_ADDRESS, IStaking::activeSetCall {}),
        vec![addr(2), addr(3)],
        "unchanged until the boundary"
    );
    assert_eq!(chain.next_epoch(), vec![addr(1), addr(2)]);
    // Unstaking below the minimum leaves the set.
    chain
        .call(
            addr(1),
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::unstakeCall { amount: ether(1) }.abi_encode(),
        )
        .ok();
    assert_eq!(chain.next_epoch(), vec![addr(2), addr(3)]);
    assert_eq!(
        chain.view(
            STAKING_ADDRESS,
            IStaking::validatorsCall {
                status: 2,
                offset: U256::ZERO,
                limit: U256::from(10)
            }
        ),
        vec![addr(1)]
    );
    assert_eq!(
        chain.view(
            STAKING_ADDRESS,
            IStaking::validatorsCall {
                status: 0,
                offset: U256::from(1),
                limit: U256::from(1)
            }
        ),
        vec![addr(2)]
    );
    chain
        .call(
            addr(1),
            STAKING_ADDRESS,
            ether(1),
            IStaking::addStakeCall {}.abi_encode(),
        )
        .ok();
    assert_eq!(chain.next_epoch(), vec![addr(1), addr(2)]);
    chain
        .call(
            addr(1),
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::advanceEpochCall {}.abi_encode(),
        )
        .revert(IStaking::Unauthorized { caller: addr(1) });
    chain
        .call(
            addr(1),
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::unstakeCall {
                amount: ether(1000),
            }
            .abi_encode(),
        )
        .revert(IStaking::InsufficientStake {
            requested: ether(1000),
            available: ether(100),
        });
    chain
        .call(
            addr(1),
            STAKING_ADDRESS,
            ether(1),
            IStaking::unstakeCall { amount: ether(1) }.abi_encode(),
        )
        .revert(IStaking::NonPayable {});
    chain
        .call(
            addr(9),
            STAKING_ADDRESS,
            ether(1),
            IStaking::addStakeCall {}.abi_encode(),
        )
        .revert(IStaking::NotValidator { operator: addr(9) });
    // Commission: within max, by at most maxChange, at most once a day.
    let edit = |rate| {
        IStaking::editValidatorCall {
            description: IStaking::Description {
                moniker: "renamed".into(),
                website: String::new(),
                details: String::new(),
            },
            commissionBps: rate,
        }
        .abi_encode()
    };
    chain
        .call(addr(1), STAKING_ADDRESS, U256::ZERO, edit(1600))
        .revert(IStaking::CommissionChangeNotAllowed {
            current: 1000,
            requested: 1600,
        });
    chain
        .call(addr(1), STAKING_ADDRESS, U256::ZERO, edit(1000))
        .ok();
    chain
        .call(addr(1), STAKING_ADDRESS, U256::ZERO, edit(1400))
        .revert(IStaking::CommissionChangeNotAllowed {
            current: 1000,
            requested: 1400,
        });
    chain.timestamp += 86_400;
    chain
        .call(addr(1), STAKING_ADDRESS, U256::ZERO, edit(1400))
        .ok();
    let info = chain.view(
        STAKING_ADDRESS,
        IStaking::validatorCall { operator: addr(1) },
    );
    assert_eq!(
        (
            info.commissionBps,
            info.description.moniker.as_str(),
            info.description.details.as_str()
        ),
        (1400, "renamed", "")
    );
}

#[test]
fn delegation_unbonding_and_withdrawal() {
    let mut chain = Chain::new(&[]);
    chain.create(addr(1), 1, ether(100), 0).ok();
    chain
        .delegate(addr(5), addr(1), ether(1) - U256::from(1))
        .revert(IDelegation::DelegationTooLow {
            amount: ether(1) - U256::from(1),
            minimum: ether(1),
        });
    chain
        .delegate(addr(5), addr(9), ether(5))
        .revert(IDelegation::NotValidator { validator: addr(9) });
    let start = chain.balance(addr(5));
    let (_, logs) = chain.delegate(addr(5), addr(1), ether(40)).ok();
    assert_eq!(
        IDelegation::Delegated::decode_log_data(&logs[0].data)
            .unwrap()
            .amount,
        ether(40)
    );
    // The escrow holds the 100 self-stake and the 40 delegated.
    assert_eq!(chain.balance(DELEGATION_ADDRESS), ether(140));
    assert_eq!(
        chain.view(
            DELEGATION_ADDRESS,
            IDelegation::delegationCall {
                delegator: addr(5),
                validator: addr(1)
            }
        ),
        ether(40)
    );
    let of = chain.view(
        DELEGATION_ADDRESS,
        IDelegation::delegationsOfCall { delegator: addr(5) },
    );
    assert_eq!(
        (of.validators, of.amounts),
        (vec![addr(1)], vec![ether(40)])
    );
    let undelegate = |amount| {
        IDelegation::undelegateCall {
            validator: addr(1),
            amount,
        }
        .abi_encode()
    };
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            undelegate(ether(41)),
        )
        .revert(IDelegation::InsufficientDelegation {
            requested: ether(41),
            available: ether(40),
        });
    chain
        .call(
            addr(6),
            DELEGATION_ADDRESS,
            U256::ZERO,
            undelegate(ether(1)),
        )
        .revert(IDelegation::InsufficientDelegation {
            requested: ether(1),
            available: U256::ZERO,
        });
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            undelegate(ether(15)),
        )
        .ok();
    chain.timestamp += 10;
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            undelegate(ether(5)),
        )
        .ok();
    let entries = chain.view(
        DELEGATION_ADDRESS,
        IDelegation::unbondingOfCall { delegator: addr(5) },
    );
    assert_eq!(
        entries.iter().map(|e| e.amount).collect::<Vec<_>>(),
        vec![ether(15), ether(5)]
    );
    assert_eq!(entries[0].completionTime, chain.timestamp - 10 + 1000);
    let withdraw = IDelegation::withdrawUnbondedCall {}.abi_encode();
    chain
        .call(addr(5), DELEGATION_ADDRESS, U256::ZERO, withdraw.clone())
        .revert(IDelegation::NothingToWithdraw {});
    // Unbonding stake no longer counts.
    assert_eq!(
        chain.view(STAKING_ADDRESS, IStaking::totalStakeCall {}),
        ether(120)
    );
    chain.timestamp += 995;
    let (out, _) = chain
        .call(addr(5), DELEGATION_ADDRESS, U256::ZERO, withdraw.clone())
        .ok();
    assert_eq!(
        IDelegation::withdrawUnbondedCall::abi_decode_returns(&out).unwrap(),
        ether(15)
    );
    chain.timestamp += 10;
    chain
        .call(addr(5), DELEGATION_ADDRESS, U256::ZERO, withdraw)
        .ok();
    assert_eq!(chain.balance(addr(5)), start - ether(20));
    assert_eq!(chain.balance(DELEGATION_ADDRESS), ether(120));
    assert!(
        chain
            .view(
                DELEGATION_ADDRESS,
                IDelegation::unbondingOfCall { delegator: addr(5) }
            )
            .is_empty()
    );
    // Operator self-stake unbonds through IStaking.unstake and is paid from the same escrow.
    chain
        .call(
            addr(1),
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::unstakeCall { amount: ether(30) }.abi_encode(),
        )
        .ok();
    chain.timestamp += 1000;
    let before = chain.balance(addr(1));
    chain
        .call(
            addr(1),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::withdrawUnbondedCall {}.abi_encode(),
        )
        .ok();
    assert_eq!(chain.balance(addr(1)), before + ether(30));
    assert_eq!(chain.balance(DELEGATION_ADDRESS), ether(90));
    assert_eq!(chain.balance(STAKING_ADDRESS), U256::ZERO);
}

#[test]
fn rewards_follow_f1_exactly_and_only_the_protocol_distributes() {
    let mut chain = Chain::new(&[GenesisValidator {
        operator: addr(1),
        consensus_key: consensus_key(1),
        self_stake: ether(100),
        commission_bps: 1000,
        max_commission_bps: 2000,
        max_change_bps: 100,
        moniker: "genesis".into(),
        proof_of_possession: pop(1, addr(1)),
    }]);
    chain
        .call(
            addr(7),
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::distributeRewardsCall {
                proposer: addr(1),
                amount: ether(1),
            }
            .abi_encode(),
        )
        .revert(IStaking::Unauthorized { caller: addr(7) });
    chain.delegate(addr(5), addr(1), ether(300)).ok();
    // 10 wei + 1 CPC: commission 10%, the rest pro rata to 100 (self) : 300.
    let amount = ether(1) + U256::from(10);
    chain.distribute(addr(1), amount);
    let commission = amount / U256::from(10);
    let rest = amount - commission;
    let epoch = chain.view(STAKING_ADDRESS, IStaking::currentEpochCall {});
    assert_eq!(epoch, U256::from(1), "genesis starts epoch 1");
    assert_eq!(
        chain.view(STAKING_ADDRESS, IStaking::activeSetCall {}),
        vec![addr(1)],
        "genesis validators form epoch 1"
    );
    assert_eq!(
        chain.view(
            STAKING_ADDRESS,
            IStaking::rewardHistoryCall {
                operator: addr(1),
                epoch
            }
        ),
        amount
    );
    let scale = U256::from(10u64).pow(U256::from(36));
    let index = rest * scale / ether(400);
    let expected_delegator = ether(300) * index / scale;
    let expected_self = ether(100) * index / scale;
    assert_eq!(
        chain.view(
            DELEGATION_ADDRESS,
            IDelegation::pendingRewardsCall {
                delegator: addr(5),
                validator: addr(1)
            }
        ),
        expected_delegator
    );
    assert_eq!(
        chain.view(
            DELEGATION_ADDRESS,
            IDelegation::pendingRewardsCall {
                delegator: addr(1),
                validator: addr(1)
            }
        ),
        expected_self + commission
    );
    assert!(expected_delegator + expected_self + commission <= amount);
    // Claiming pays exactly that; a second claim has nothing.
    let before = chain.balance(addr(5));
    let (_, logs) = chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::claimRewardsCall { validator: addr(1) }.abi_encode(),
        )
        .ok();
    assert_eq!(chain.balance(addr(5)), before + expected_delegator);
    assert_eq!(
        IDelegation::RewardsClaimed::decode_log_data(&logs[0].data)
            .unwrap()
            .amount,
        expected_delegator
    );
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::claimRewardsCall { validator: addr(1) }.abi_encode(),
        )
        .revert(IDelegation::NothingToWithdraw {});
    // A delegation change settles first: rewards earned at the old stake are kept.
    chain.distribute(addr(1), ether(4));
    chain.delegate(addr(5), addr(1), ether(100)).ok();
    let pending = chain.view(
        DELEGATION_ADDRESS,
        IDelegation::pendingRewardsCall {
            delegator: addr(5),
            validator: addr(1),
        },
    );
    let index2 = (ether(4) - ether(4) / U256::from(10)) * scale + (rest * scale % ether(400));
    assert_eq!(pending, ether(300) * (index2 / ether(400)) / scale);
}

#[test]
fn static_and_delegate_calls_cannot_change_state() {
    let mut chain = Chain::new(&[]);
    // Proxies forwarding calldata to 0x1000 with STATICCALL (0xfa) and DELEGATECALL (0xf4).
    for (proxy, opcode) in [(addr(0x51), 0xfa), (addr(0x52), 0xf4)] {
        let code = Bytecode::new_raw(Bytes::from(vec![
            0x36, 0x5f, 0x5f, 0x37, 0x5f, 0x5f, 0x36, 0x5f, 0x61, 0x10, 0x00, 0x5a, opcode, 0x3d,
            0x5f, 0x5f, 0x3e, 0x60, 0x17, 0x57, 0x3d, 0x5f, 0xfd, 0x5b, 0x3d, 0x5f, 0xf3,
        ]));
        chain.db.insert_account_info(
            proxy,
            AccountInfo::new(U256::ZERO, 1, code.hash_slow(), code),
        );
    }
    let create = IStaking::createValidatorCall {
        consensusKey: consensus_key(1),
        commissionBps: 0,
        maxCommissionBps: 0,
        maxChangeBps: 0,
        description: Default::default(),
        proofOfPossession: pop(1, addr(1)),
    }
    .abi_encode();
    chain
        .call(addr(1), addr(0x51), U256::ZERO, create.clone())
        .revert(IStaking::StaticCallNotAllowed {});
    chain
        .call(addr(1), addr(0x52), U256::ZERO, create)
        .revert(IStaking::DelegateCallNotAllowed {});
    // Views work through STATICCALL.
    let (out, _) = chain
        .call(
            addr(1),
            addr(0x51),
            U256::ZERO,
            IStaking::totalStakeCall {}.abi_encode(),
        )
        .ok();
    assert_eq!(
        IStaking::totalStakeCall::abi_decode_returns(&out).unwrap(),
        U256::ZERO
    );
}

#[test]
fn redelegation_cancelled_unbonding_and_claiming_everything() {
    let mut chain = Chain::new(&[]);
    chain.create(addr(1), 1, ether(100), 0).ok();
    chain.create(addr(2), 2, ether(100), 0).ok();
    chain.delegate(addr(5), addr(1), ether(40)).ok();
    let redelegate = |src, dst, amount| {
        IDelegation::redelegateCall {
            srcValidator: src,
            dstValidator: dst,
            amount,
        }
        .abi_encode()
    };
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            redelegate(addr(1), addr(1), ether(1)),
        )
        .revert(IDelegation::InvalidRedelegation {
            srcValidator: addr(1),
            dstValidator: addr(1),
        });
    chain
        .call(
            addr(1),
            DELEGATION_ADDRESS,
            U256::ZERO,
            redelegate(addr(1), addr(2), ether(1)),
        )
        .revert(IDelegation::InvalidRedelegation {
            srcValidator: addr(1),
            dstValidator: addr(2),
        });
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            redelegate(addr(1), addr(9), ether(1)),
        )
        .revert(IDelegation::NotValidator { validator: addr(9) });
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            redelegate(addr(1), addr(2), ether(41)),
        )
        .revert(IDelegation::InsufficientDelegation {
            requested: ether(41),
            available: ether(40),
        });
    let (_, logs) = chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            redelegate(addr(1), addr(2), ether(15)),
        )
        .ok();
    assert_eq!(
        IDelegation::Redelegated::decode_log_data(&logs[0].data)
            .unwrap()
            .amount,
        ether(15)
    );
    assert_eq!(
        chain
            .view(
                STAKING_ADDRESS,
                IStaking::validatorCall { operator: addr(1) }
            )
            .totalStake,
        ether(125)
    );
    assert_eq!(
        chain
            .view(
                STAKING_ADDRESS,
                IStaking::validatorCall { operator: addr(2) }
            )
            .totalStake,
        ether(115)
    );
    assert_eq!(
        chain.view(STAKING_ADDRESS, IStaking::totalStakeCall {}),
        ether(240)
    );

    // Cancel part, then the rest, of an unbonding entry.
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::undelegateCall {
                validator: addr(1),
                amount: ether(10),
            }
            .abi_encode(),
        )
        .ok();
    let height = chain.number;
    let cancel = |amount, height| {
        IDelegation::cancelUnbondingCall {
            validator: addr(1),
            amount,
            creationHeight: height,
        }
        .abi_encode()
    };
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            cancel(ether(11), height),
        )
        .revert(IDelegation::UnbondingNotFound {
            validator: addr(1),
            amount: ether(11),
            creationHeight: height,
        });
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            cancel(ether(1), height + 1),
        )
        .revert(IDelegation::UnbondingNotFound {
            validator: addr(1),
            amount: ether(1),
            creationHeight: height + 1,
        });
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            cancel(ether(4), height),
        )
        .ok();
    assert_eq!(
        chain.view(
            DELEGATION_ADDRESS,
            IDelegation::unbondingOfCall { delegator: addr(5) }
        )[0]
        .amount,
        ether(6)
    );
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            cancel(ether(6), height),
        )
        .ok();
    assert!(
        chain
            .view(
                DELEGATION_ADDRESS,
                IDelegation::unbondingOfCall { delegator: addr(5) }
            )
            .is_empty()
    );
    assert_eq!(
        chain.view(
            DELEGATION_ADDRESS,
            IDelegation::delegationCall {
                delegator: addr(5),
                validator: addr(1)
            }
        ),
        ether(25)
    );
    // A matured entry can no longer be cancelled.
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::undelegateCall {
                validator: addr(1),
                amount: ether(1),
            }
            .abi_encode(),
        )
        .ok();
    chain.timestamp += 1000;
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            cancel(ether(1), height),
        )
        .revert(IDelegation::UnbondingNotFound {
            validator: addr(1),
            amount: ether(1),
            creationHeight: height,
        });
    // Cancelled self-stake unbonding restores self-stake.
    chain
        .call(
            addr(2),
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::unstakeCall { amount: ether(50) }.abi_encode(),
        )
        .ok();
    assert_eq!(
        chain
            .view(
                STAKING_ADDRESS,
                IStaking::validatorCall { operator: addr(2) }
            )
            .status,
        2
    );
    chain
        .call(
            addr(2),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::cancelUnbondingCall {
                validator: addr(2),
                amount: ether(50),
                creationHeight: height,
            }
            .abi_encode(),
        )
        .ok();
    let v2 = chain.view(
        STAKING_ADDRESS,
        IStaking::validatorCall { operator: addr(2) },
    );
    assert_eq!((v2.selfStake, v2.status), (ether(100), 1));

    // claimAllRewards pays every validator's share in one transfer.
    chain.next_epoch();
    chain.distribute(addr(1), ether(3));
    chain.distribute(addr(2), ether(5));
    let expected = chain.view(
        DELEGATION_ADDRESS,
        IDelegation::pendingRewardsCall {
            delegator: addr(5),
            validator: addr(1),
        },
    ) + chain.view(
        DELEGATION_ADDRESS,
        IDelegation::pendingRewardsCall {
            delegator: addr(5),
            validator: addr(2),
        },
    );
    let before = chain.balance(addr(5));
    let (out, logs) = chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::claimAllRewardsCall {
                maxValidators: U256::from(10),
            }
            .abi_encode(),
        )
        .ok();
    assert_eq!(
        IDelegation::claimAllRewardsCall::abi_decode_returns(&out).unwrap(),
        expected
    );
    assert_eq!(chain.balance(addr(5)), before + expected);
    assert_eq!(logs.len(), 2);
    chain
        .call(
            addr(5),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::claimAllRewardsCall {
                maxValidators: U256::from(10),
            }
            .abi_encode(),
        )
        .revert(IDelegation::NothingToWithdraw {});
}

#[test]
fn downtime_jails_slashes_with_escalation_and_unjail_follows_the_rules() {
    let mut chain = Chain::new(&[]);
    chain.create(addr(1), 1, ether(100), 0).ok();
    chain.create(addr(2), 2, ether(100), 0).ok();
    chain.delegate(addr(5), addr(2), ether(100)).ok();
    chain.delegate(addr(6), addr(2), ether(50)).ok();
    // At block 1, before the epoch's boundary: out of its seat's stake and the slash's reach.
    chain.undelegate(addr(6), addr(2), ether(10)).ok();
    assert_eq!(chain.next_epoch(), vec![addr(2), addr(1)]);
    chain.number += 1;
    let record = |chain: &mut Chain, signers: Vec<Address>| -> Vec<Log> {
        let (_, logs) = chain
            .call(
                SYSTEM_ADDRESS,
                STAKING_ADDRESS,
                U256::ZERO,
                IStaking::recordSignersCall { signers }.abi_encode(),
            )
            .ok();
        chain.number += 1;
        logs
    };
    chain
        .call(
            addr(1),
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::recordSignersCall { signers: vec![] }.abi_encode(),
        )
        .revert(IStaking::Unauthorized { caller: addr(1) });
    let info =
        |chain: &mut Chain, v| chain.view(STAKING_ADDRESS, IStaking::validatorCall { operator: v });
    let delegation = |chain: &mut Chain, delegator| {
        chain.view(
            DELEGATION_ADDRESS,
            IDelegation::delegationCall {
                delegator,
                validator: addr(2),
            },
        )
    };
    let burned = |chain: &mut Chain| chain.view(STAKING_ADDRESS, IStaking::totalBurnedCall {});
    // Every wei is in an account or counted as burned.
    let supply = |chain: &mut Chain| {
        let burned = burned(chain);
        (1..=6u8)
            .map(addr)
            .chain([STAKING_ADDRESS, DELEGATION_ADDRESS])
            .map(|a| chain.balance(a))
            .fold(burned, |x, y| x + y)
    };
    let initial_supply = supply(&mut chain);
    // Window of 10 blocks, 75% uptime: at most 2 misses. Blocks 1-2 missed, 3-10 signed.
    for n in 1..=10u64 {
        let signers = if n <= 2 {
            vec![addr(1)]
        } else {
            vec![addr(1), addr(2)]
        };
        assert!(record(&mut chain, signers).is_empty());
    }
    // Blocks 11 and 12 replace the misses of 1 and 2 in the window: still 2 misses.
    record(&mut chain, vec![addr(1)]);
    record(&mut chain, vec![addr(1)]);
    assert_eq!(info(&mut chain, addr(2)).status, 1);
    assert_eq!(info(&mut chain, addr(2)).missedBlocks, U256::from(2));
    // Fleeing within the window does not escape the slash.
    chain.undelegate(addr(6), addr(2), ether(20)).ok();
    // Block 13 is a third miss within the window: jailed and slashed 5%: of the bonded 220
    // (100 self + 100 + 20) and of the unbonding entry created in the window (20), not of the
    // older one.
    let logs = record(&mut chain, vec![addr(1)]);
    let jailed = IStaking::ValidatorJailed::decode_log_data(&logs[0].data).unwrap();
    assert_eq!(
        (jailed.operator, jailed.missedBlocks, jailed.jailedUntil),
        (addr(2), U256::from(3), chain.timestamp + 100)
    );
    let slashed = IStaking::ValidatorSlashed::decode_log_data(&logs[1].data).unwrap();
    assert_eq!(
        (
            slashed.operator,
            slashed.reason,
            slashed.fractionBps,
            slashed.amount
        ),
        (addr(2), 1, 500, ether(11) + ether(1))
    );
    let v = info(&mut chain, addr(2));
    assert_eq!(
        (v.status, v.totalStake, v.selfStake),
        (3, ether(209), ether(95))
    );
    assert_eq!(v.downtimeOffences, U256::from(1));
    assert_eq!(delegation(&mut chain, addr(5)), ether(95));
    assert_eq!(delegation(&mut chain, addr(6)), ether(19));
    let entries = chain.view(
        DELEGATION_ADDRESS,
        IDelegation::unbondingOfCall { delegator: addr(6) },
    );
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.amount, e.initialAmount))
            .collect::<Vec<_>>(),
        vec![(ether(10), ether(10)), (ether(19), ether(20))]
    );
    assert_eq!(burned(&mut chain), ether(12));
    assert_eq!(supply(&mut chain), initial_supply);
    assert_eq!(info(&mut chain, addr(1)).missedBlocks, U256::ZERO);
    assert_eq!(
        chain.next_epoch(),
        vec![addr(1)],
        "jailed validators leave the next set"
    );
    chain
        .delegate(addr(5), addr(2), ether(5))
        .revert(IDelegation::NotValidator { validator: addr(2) });
    // Adding stake does not free it; only unjail does, early for exactly the fee (burned).
    let add_stake = |chain: &mut Chain, amount: U256| {
        chain.call(
            addr(2),
            STAKING_ADDRESS,
            amount,
            IStaking::addStakeCall {}.abi_encode(),
        )
    };
    add_stake(&mut chain, ether(1)).ok();
    assert_eq!(info(&mut chain, addr(2)).status, 3);
    // Unstaking while jailed burns 10%: 20 CPC leave the stake, 18 enter unbonding.
    let self_before = info(&mut chain, addr(2)).selfStake;
    let (_, logs) = chain
        .call(
            addr(2),
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::unstakeCall { amount: ether(20) }.abi_encode(),
        )
        .ok();
    assert_eq!(
        IStaking::StakeRemoved::decode_log_data(&logs[0].data)
            .unwrap()
            .penalty,
        ether(2)
    );
    assert_eq!(burned(&mut chain), ether(14));
    assert_eq!(
        chain.view(
            DELEGATION_ADDRESS,
            IDelegation::unbondingOfCall { delegator: addr(2) }
        )[0]
        .amount,
        ether(18)
    );
    // Shares are burned rounding up: what stays is at most 1 wei short of the difference.
    let self_after = info(&mut chain, addr(2)).selfStake;
    assert!(
        self_after <= self_before - ether(20)
            && self_after + U256::from(1) >= self_before - ether(20)
    );
    add_stake(&mut chain, ether(30)).ok();
    let unjail = IStaking::unjailCall {}.abi_encode();
    chain
        .call(addr(2), STAKING_ADDRESS, U256::ZERO, unjail.clone())
        .revert(IStaking::UnjailFeeRequired {
            jailedUntil: chain.timestamp + 100,
            fee: ether(10),
        });
    chain
        .call(addr(1), STAKING_ADDRESS, U256::ZERO, unjail.clone())
        .revert(IStaking::NotJailed { operator: addr(1) });
    let (pool, operator) = (chain.balance(STAKING_ADDRESS), chain.balance(addr(2)));
    let (_, logs) = chain
        .call(addr(2), STAKING_ADDRESS, ether(10), unjail.clone())
        .ok();
    assert_eq!(
        IStaking::ValidatorUnjailed::decode_log_data(&logs[0].data)
            .unwrap()
            .fee,
        ether(10)
    );
    assert_eq!(
        (chain.balance(STAKING_ADDRESS), chain.balance(addr(2))),
        (pool, operator - ether(10)),
        "the fee is burned"
    );
    assert_eq!(burned(&mut chain), ether(24));
    assert_eq!(info(&mut chain, addr(2)).status, 1);
    assert_eq!(
        chain.next_epoch(),
        vec![addr(2), addr(1)],
        "back, and first by stake"
    );
    // Second offence, a full window of misses: 10% of the seat's stake fixed at the boundary,
    // taken first from the operator's own entry (18, unstaked within the window: 1.8), the rest
    // from the bonded stake; the delegator's entries are older.
    let miss_window = |chain: &mut Chain| -> IStaking::ValidatorSlashed {
        let logs: Vec<Log> = (0..11).flat_map(|_| record(chain, vec![addr(1)])).collect();
        let log = logs
            .iter()
            .find(|l| l.topics()[0] == IStaking::ValidatorSlashed::SIGNATURE_HASH)
            .expect("slashed");
        IStaking::ValidatorSlashed::decode_log_data(&log.data).unwrap()
    };
    let before = info(&mut chain, addr(2)).totalStake;
    let slashed = miss_window(&mut chain);
    assert_eq!(
        (slashed.fractionBps, slashed.amount),
        (1000, before / U256::from(10))
    );
    assert_eq!(
        info(&mut chain, addr(2)).totalStake,
        before - (before / U256::from(10) - ether(18) / U256::from(10))
    );
    assert_eq!(info(&mut chain, addr(2)).status, 3);
    // After the jail time unjail is free.
    chain.timestamp += 100;
    chain
        .call(addr(2), STAKING_ADDRESS, ether(10), unjail.clone())
        .revert(IStaking::UnjailFeeRequired {
            jailedUntil: chain.timestamp,
            fee: U256::ZERO,
        });
    add_stake(&mut chain, ether(50)).ok();
    chain
        .call(addr(2), STAKING_ADDRESS, U256::ZERO, unjail.clone())
        .ok();
    assert_eq!(info(&mut chain, addr(2)).status, 1);
    assert_eq!(chain.next_epoch(), vec![addr(2), addr(1)]);
    // Third offence: 100%, and a validator slashed to nothing is jailed for good.
    let before = info(&mut chain, addr(2)).totalStake;
    let slashed = miss_window(&mut chain);
    assert_eq!((slashed.fractionBps, slashed.amount), (10_000, before));
    let v = info(&mut chain, addr(2));
    assert_eq!(
        (v.status, v.totalStake, v.selfStake, v.tombstoned),
        (3, U256::ZERO, U256::ZERO, true)
    );
    assert_eq!(delegation(&mut chain, addr(5)), U256::ZERO);
    chain.timestamp += 1_000;
    chain
        .call(addr(2), STAKING_ADDRESS, U256::ZERO, unjail)
        .revert(IStaking::Tombstoned { operator: addr(2) });
    add_stake(&mut chain, ether(100)).revert(IStaking::Tombstoned { operator: addr(2) });
    chain
        .delegate(addr(5), addr(2), ether(5))
        .revert(IDelegation::NotValidator { validator: addr(2) });
    assert_eq!(supply(&mut chain), initial_supply);
    // Unbonding entries created before the offences' windows pay out what the first slash left.
    let (out, _) = chain
        .call(
            addr(6),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::withdrawUnbondedCall {}.abi_encode(),
        )
        .ok();
    assert_eq!(
        IDelegation::withdrawUnbondedCall::abi_decode_returns(&out).unwrap(),
        ether(29)
    );
    assert_eq!(supply(&mut chain), initial_supply);
}

#[test]
fn epoch_change_succeeds_with_thousands_of_validators() {
    let mut chain = Chain::new(&[]);
    let count = 5_000u32;
    for i in 0..count {
        let operator = Address::from_word(keccak256(i.to_be_bytes()));
        chain.db.insert_account_info(
            operator,
            AccountInfo {
                balance: ether(200),
                ..Default::default()
            },
        );
        let stake = ether(100) + U256::from(i);
        let signer = SigningKey::from_bytes(&keccak256((i + 1).to_be_bytes()).0);
        chain
            .call(
                operator,
                STAKING_ADDRESS,
                stake,
                IStaking::createValidatorCall {
                    consensusKey: signer.verifying_key().to_bytes().into(),
                    commissionBps: 0,
                    maxCommissionBps: 0,
                    maxChangeBps: 0,
                    description: Default::default(),
                    proofOfPossession: pop_by(&signer, operator),
                }
                .abi_encode(),
            )
            .ok();
    }
    // Reading every candidate costs far more than a system call's 30M gas at EVM rates; the
    // protocol's own calls are not metered, so the epoch still changes.
    let set = chain.next_epoch();
    assert_eq!(set.len(), 2);
    assert_eq!(
        set[0],
        Address::from_word(keccak256((count - 1).to_be_bytes())),
        "highest stake first"
    );
    chain
        .call(
            SYSTEM_ADDRESS,
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::recordSignersCall { signers: vec![] }.abi_encode(),
        )
        .ok();
}

/// An independent model of the rules stated in IStaking and IDelegation: shares (bond mints
/// floor(amount * shares / stake), unbond burns ceil(amount * shares / stake) or all), slashes
/// (a fraction of the bonded stake and of each unmatured entry's initial amount created at or
/// after the infraction), and F1 rewards (commission first, the rest raises the per-share index
/// by floor((rest * 1e36 + remainder) / shares); a delegation settles
/// floor(shares * (index - snapshot) / 1e36) whenever it changes or claims).
#[derive(Default)]
struct Model {
    validators: std::collections::HashMap<Address, ModelValidator>,
    /// Creation order (ties in the active set).
    order: Vec<Address>,
    /// (delegator, validator) -> (shares, snapshot, unclaimed)
    pairs: std::collections::BTreeMap<(Address, Address), (U256, U256, U256)>,
    /// Each delegator's unbonding entries, in the precompile's order.
    entries: std::collections::HashMap<Address, Vec<ModelEntry>>,
    /// Each delegator's redelegations, in the precompile's order.
    redelegations: std::collections::HashMap<Address, Vec<ModelRedelegation>>,
    /// Per validator, the delegators with entries from it, in the precompile's order.
    listed: std::collections::HashMap<Address, Vec<Address>>,
    /// Slashes that reached redelegated stake.
    redelegation_cuts: usize,
    /// The current epoch's set; a member jailed during the epoch leaves it at once.
    epoch_set: Vec<Address>,
    /// Every epoch so far: first block, start time, and each seat's stake fixed at its boundary.
    epochs: Vec<(u64, u64, std::collections::HashMap<Address, U256>)>,
}

#[derive(Default)]
struct ModelValidator {
    rate: u64,
    shares: U256,
    stake: U256,
    index: U256,
    remainder: U256,
    commission: U256,
    bonded: bool,
    jailed: bool,
    tombstoned: bool,
    offences: usize,
    /// Uptime window: missed flag per `block % 10`, blocks observed (up to 10).
    missed: [bool; 10],
    filled: u64,
    /// Jailed for downtime, no full window served since: unstaking pays the penalty.
    penalty_due: bool,
}

#[derive(Clone, Copy, Debug)]
struct ModelRedelegation {
    src: Address,
    dst: Address,
    shares: U256,
    height: u64,
    completion: u64,
}

#[derive(Clone, Copy, Debug)]
struct ModelEntry {
    validator: Address,
    amount: U256,
    initial: U256,
    height: u64,
    completion: u64,
}

impl Model {
    fn scale() -> U256 {
        U256::from(10u64).pow(U256::from(36))
    }

    fn tokens(&self, d: Address, v: Address) -> U256 {
        let shares = self.pairs.get(&(d, v)).map(|p| p.0).unwrap_or_default();
        let val = &self.validators[&v];
        if val.shares.is_zero() {
            U256::ZERO
        } else {
            shares * val.stake / val.shares
        }
    }

    fn settle(&mut self, d: Address, v: Address) -> U256 {
        let index = self.validators[&v].index;
        let pair = self.pairs.entry((d, v)).or_default();
        pair.2 += pair.0 * (index - pair.1) / Self::scale();
        pair.1 = index;
        self.tokens(d, v)
    }

    fn create(&mut self, v: Address, rate: u64, stake: U256) {
        self.validators.insert(
            v,
            ModelValidator {
                rate,
                ..Default::default()
            },
        );
        self.order.push(v);
        self.bond(v, v, stake);
        self.update_status(v);
    }

    fn update_status(&mut self, v: Address) {
        let own = self.tokens(v, v);
        let val = self.validators.get_mut(&v).unwrap();
        if !val.jailed {
            val.bonded = own >= ether(100);
        }
    }

    fn bond(&mut self, d: Address, v: Address, amount: U256) -> U256 {
        self.settle(d, v);
        let val = self.validators.get_mut(&v).unwrap();
        let shares = if val.shares.is_zero() {
            amount
        } else {
            amount * val.shares / val.stake
        };
        val.shares += shares;
        val.stake += amount;
        self.pairs.get_mut(&(d, v)).unwrap().0 += shares;
        shares
    }

    fn list(&mut self, d: Address, v: Address) {
        let list = self.listed.entry(v).or_default();
        if !list.contains(&d) {
            list.push(d);
        }
    }

    /// Redelegates as the precompile does: completed entries pruned, no hop on before completion.
    fn redelegate(&mut self, d: Address, src: Address, dst: Address, amount: U256, chain: &Chain) {
        let list = self.redelegations.entry(d).or_default();
        let mut i = 0;
        while i < list.len() {
            if list[i].completion > chain.timestamp {
                i += 1;
            } else {
                list.swap_remove(i);
            }
        }
        self.settle(d, src);
        self.take(d, src, amount);
        let shares = self.bond(d, dst, amount);
        self.redelegations
            .get_mut(&d)
            .unwrap()
            .push(ModelRedelegation {
                src,
                dst,
                shares,
                height: chain.number,
                completion: chain.timestamp + 1000,
            });
        self.list(d, src);
    }

    fn transitive(&self, d: Address, src: Address, now: u64) -> bool {
        self.redelegations
            .get(&d)
            .is_some_and(|l| l.iter().any(|r| r.dst == src && r.completion > now))
    }

    /// Takes `amount` out of a settled delegation.
    fn take(&mut self, d: Address, v: Address, amount: U256) {
        let worth = self.tokens(d, v);
        let val = self.validators.get_mut(&v).unwrap();
        let pair = self.pairs.get_mut(&(d, v)).unwrap();
        let burned = if amount == worth {
            pair.0
        } else {
            (amount * val.shares).div_ceil(val.stake)
        };
        pair.0 -= burned;
        val.shares -= burned;
        val.stake -= amount;
    }

    /// The revert a new entry of `d` at `v` meets: 7 open per pair, 64 in `d`'s list.
    fn entries_full(list: &[Address], v: Address) -> Option<IStaking::TooManyEntries> {
        let max = if list.iter().filter(|x| **x == v).count() >= 7 {
            7
        } else if list.len() >= 64 {
            64
        } else {
            return None;
        };
        Some(IStaking::TooManyEntries {
            validator: v,
            max: U256::from(max),
        })
    }

    fn unbonding_full(&self, d: Address, v: Address) -> Option<IStaking::TooManyEntries> {
        let list: Vec<Address> = self
            .entries
            .get(&d)
            .map(|l| l.iter().map(|e| e.validator).collect())
            .unwrap_or_default();
        Self::entries_full(&list, v)
    }

    fn redelegations_full(
        &self,
        d: Address,
        src: Address,
        now: u64,
    ) -> Option<IStaking::TooManyEntries> {
        let list: Vec<Address> = self
            .redelegations
            .get(&d)
            .map(|l| {
                l.iter()
                    .filter(|r| r.completion > now)
                    .map(|r| r.src)
                    .collect()
            })
            .unwrap_or_default();
        Self::entries_full(&list, src)
    }

    fn unbond(&mut self, d: Address, v: Address, amount: U256, penalty: U256, chain: &Chain) {
        self.settle(d, v);
        self.take(d, v, amount);
        self.entries.entry(d).or_default().push(ModelEntry {
            validator: v,
            amount: amount - penalty,
            initial: amount - penalty,
            height: chain.number,
            completion: chain.timestamp + 1000,
        });
        self.list(d, v);
    }

    /// Credits a block's reward to a seat holder; for anyone else it is burned.
    fn distribute(&mut self, v: Address, amount: U256) {
        if !self.epoch_set.contains(&v) {
            return;
        }
        let val = self.validators.get_mut(&v).unwrap();
        if val.shares.is_zero() {
            val.commission += amount;
            return;
        }
        let c = amount * U256::from(val.rate) / U256::from(10_000);
        val.commission += c;
        let numerator = (amount - c) * Self::scale() + val.remainder;
        val.index += numerator / val.shares;
        val.remainder = numerator % val.shares;
    }

    fn pending(&self, d: Address, v: Address) -> U256 {
        let (shares, snapshot, unclaimed) = self.pairs.get(&(d, v)).copied().unwrap_or_default();
        let val = &self.validators[&v];
        let commission = if d == v { val.commission } else { U256::ZERO };
        unclaimed + shares * (val.index - snapshot) / Self::scale() + commission
    }

    fn claim(&mut self, d: Address, v: Address) -> U256 {
        let pending = self.pending(d, v);
        self.settle(d, v);
        self.pairs.get_mut(&(d, v)).unwrap().2 = U256::ZERO;
        if d == v {
            self.validators.get_mut(&v).unwrap().commission = U256::ZERO;
        }
        pending
    }

    /// Slashes `bps` of `basis`: first from the entries created at or after `since`, the rest
    /// from the bonded stake; returns the total and the operator's own loss.
    fn slash(&mut self, v: Address, bps: u64, basis: U256, since: u64, now: u64) -> (U256, U256) {
        let target = basis * U256::from(bps) / U256::from(10_000);
        let (mut total, mut own) = (U256::ZERO, U256::ZERO);
        let bps = U256::from(bps);
        let mut i = 0;
        while i < self.listed.get(&v).map_or(0, Vec::len) {
            let d = self.listed[&v][i];
            let mut live = false;
            for entry in self.entries.entry(d).or_default() {
                if entry.validator != v || entry.completion <= now {
                    continue;
                }
                live = true;
                if entry.height >= since {
                    let cut = (entry.initial * bps / U256::from(10_000)).min(entry.amount);
                    entry.amount -= cut;
                    total += cut;
                    if d == v {
                        own += cut;
                    }
                }
            }
            let count = self.redelegations.get(&d).map_or(0, Vec::len);
            for j in 0..count {
                let r = self.redelegations[&d][j];
                if r.src != v || r.completion <= now {
                    continue;
                }
                live = true;
                if r.height < since {
                    continue;
                }
                let held = self.pairs.get(&(d, r.dst)).map(|p| p.0).unwrap_or_default();
                let shares = (r.shares * bps / U256::from(10_000)).min(held);
                if shares.is_zero() {
                    continue;
                }
                self.settle(d, r.dst);
                let dst = self.validators.get_mut(&r.dst).unwrap();
                let tokens = shares * dst.stake / dst.shares;
                dst.shares -= shares;
                dst.stake -= tokens;
                self.pairs.get_mut(&(d, r.dst)).unwrap().0 -= shares;
                self.redelegations.get_mut(&d).unwrap()[j].shares -= shares;
                total += tokens;
                self.redelegation_cuts += 1;
                if d == r.dst {
                    self.update_status(d);
                }
            }
            if live {
                i += 1;
            } else {
                self.listed.get_mut(&v).unwrap().swap_remove(i);
            }
        }
        let self_before = self.tokens(v, v);
        let val = self.validators.get_mut(&v).unwrap();
        let bonded_cut = target.saturating_sub(total).min(val.stake);
        val.stake -= bonded_cut;
        own += self_before - self.tokens(v, v);
        (total + bonded_cut, own)
    }

    /// Records the uptime of every member of the epoch set at block `number`; returns the
    /// member jailed for downtime, if any, with its missed count.
    fn record_signers(&mut self, signers: &[Address], number: u64) -> Option<(Address, usize)> {
        let mut jailed = None;
        for m in self.epoch_set.clone() {
            let val = self.validators.get_mut(&m).unwrap();
            val.missed[(number % 10) as usize] = !signers.contains(&m);
            let count = val.missed.iter().filter(|x| **x).count();
            if val.filled < 10 {
                val.filled += 1;
            } else if count <= 2 {
                val.penalty_due = false;
            } else {
                (val.missed, val.filled) = ([false; 10], 0);
                (val.jailed, val.bonded, val.penalty_due) = (true, false, true);
                self.epoch_set.retain(|a| *a != m);
                jailed = Some((m, count));
            }
        }
        jailed
    }

    /// Starts an epoch at block `number`: the top two bonded validators, each seat's stake fixed.
    fn next_epoch(&mut self, number: u64, time: u64) {
        self.epoch_set = self.top(2);
        let seats = self
            .epoch_set
            .iter()
            .map(|v| (*v, self.validators[v].stake))
            .collect();
        self.epochs.push((number + 1, time, seats));
    }

    /// Pays out matured entries the way the precompile walks them (swap-remove).
    fn withdraw(&mut self, d: Address, now: u64) -> Option<U256> {
        let list = self.entries.entry(d).or_default();
        let (mut i, mut total, mut matured) = (0, U256::ZERO, false);
        while i < list.len() {
            if list[i].completion > now {
                i += 1;
                continue;
            }
            total += list.swap_remove(i).amount;
            matured = true;
        }
        matured.then_some(total)
    }

    fn top(&self, seats: usize) -> Vec<Address> {
        let mut set: Vec<Address> = self
            .order
            .iter()
            .copied()
            .filter(|v| self.validators[v].bonded)
            .collect();
        set.sort_by(|a, b| self.validators[b].stake.cmp(&self.validators[a].stake));
        set.truncate(seats);
        set
    }
}

#[test]
fn random_operations_conserve_supply_and_pay_exact_rewards() {
    let (mut slashes, mut double_signs, mut redelegation_cuts) = (0, 0, 0);
    for seed in [11, 12, 13] {
        let (s, d, r) = random_run(seed);
        (slashes, double_signs, redelegation_cuts) =
            (slashes + s, double_signs + d, redelegation_cuts + r);
    }
    assert!(
        slashes > 0 && double_signs > 0 && redelegation_cuts > 0,
        "{slashes} slashes, {double_signs} double signs, {redelegation_cuts} redelegation cuts"
    );
}

/// 400 random operations from `seed`, checked against the model after each; returns how many
/// downtime slashes, double signs and slashes of redelegated stake happened.
fn random_run(seed: u64) -> (usize, usize, usize) {
    let mut chain = Chain::new(&[]);
    let mut seed = seed;
    let mut rand = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let users: Vec<Address> = (1..=8u8).map(addr).collect();
    let validators = &users[..3];
    let burned = |chain: &mut Chain| chain.view(STAKING_ADDRESS, IStaking::totalBurnedCall {});
    let supply = |chain: &mut Chain| -> U256 {
        let burned = burned(chain);
        users
            .iter()
            .chain([&STAKING_ADDRESS, &DELEGATION_ADDRESS, &addr(99)])
            .map(|a| chain.balance(*a))
            .fold(burned, |x, y| x + y)
    };
    let genesis_supply = supply(&mut chain) - chain.minted;
    let mut model = Model::default();
    // Genesis started epoch 1, with no validators yet.
    model
        .epochs
        .push((1, chain.timestamp, std::collections::HashMap::new()));
    for (i, v) in validators.iter().enumerate() {
        let (rate, stake) = (500 * (i as u64 + 1), ether(100 * (i as u64 + 1)));
        chain.create(*v, i as u8 + 1, stake, rate as u16).ok();
        model.create(*v, rate, stake);
    }
    model.next_epoch(chain.number, chain.timestamp);
    assert_eq!(chain.next_epoch(), model.epoch_set);
    let (mut claimed, mut slashes, mut double_signs) = (U256::ZERO, 0, 0);
    for step in 0..400 {
        chain.number += 1;
        let user = users[rand(8) as usize];
        let vi = rand(3) as usize;
        let validator = validators[vi];
        let other = validators[(vi + 1 + rand(2) as usize) % 3];
        let call = |chain: &mut Chain, from: Address, to: Address, value: U256, data: Vec<u8>| {
            chain.call(from, to, value, data)
        };
        match rand(16) {
            0 | 1 => {
                let amount = ether(1 + rand(50));
                let outcome = chain.delegate(user, validator, amount);
                if model.validators[&validator].bonded {
                    outcome.ok();
                    model.bond(user, validator, amount);
                } else {
                    outcome.revert(IDelegation::NotValidator { validator });
                }
            }
            2 => {
                let have = model.tokens(user, validator);
                if user != validator && !have.is_zero() {
                    let amount = (have / U256::from(2) + U256::from(rand(1000))).min(have);
                    let outcome = call(
                        &mut chain,
                        user,
                        DELEGATION_ADDRESS,
                        U256::ZERO,
                        IDelegation::undelegateCall { validator, amount }.abi_encode(),
                    );
                    match model.unbonding_full(user, validator) {
                        Some(full) => outcome.revert(full),
                        None => {
                            outcome.ok();
                            model.unbond(user, validator, amount, U256::ZERO, &chain);
                        }
                    }
                }
            }
            3 => {
                let expected = model.pending(user, validator);
                let outcome = call(
                    &mut chain,
                    user,
                    DELEGATION_ADDRESS,
                    U256::ZERO,
                    IDelegation::claimRewardsCall { validator }.abi_encode(),
                );
                if expected.is_zero() {
                    outcome.revert(IDelegation::NothingToWithdraw {});
                } else {
                    let (out, _) = outcome.ok();
                    assert_eq!(
                        IDelegation::claimRewardsCall::abi_decode_returns(&out).unwrap(),
                        expected,
                        "seed {seed} step {step}"
                    );
                    assert_eq!(model.claim(user, validator), expected);
                    claimed += expected;
                }
            }
            4 | 12 | 13 => {
                // The model settles only when the precompile does: settling twice floors twice.
                let have = model.tokens(user, validator);
                if user != validator && !have.is_zero() {
                    let amount = have / U256::from(3) + U256::from(1);
                    let outcome = call(
                        &mut chain,
                        user,
                        DELEGATION_ADDRESS,
                        U256::ZERO,
                        IDelegation::redelegateCall {
                            srcValidator: validator,
                            dstValidator: other,
                            amount,
                        }
                        .abi_encode(),
                    );
                    if !model.validators[&other].bonded {
                        outcome.revert(IDelegation::NotValidator { validator: other });
                    } else if model.transitive(user, validator, chain.timestamp) {
                        outcome.revert(IDelegation::TransitiveRedelegation { validator });
                    } else if let Some(full) =
                        model.redelegations_full(user, validator, chain.timestamp)
                    {
                        outcome.revert(full);
                    } else {
                        outcome.ok();
                        model.redelegate(user, validator, other, amount, &chain);
                    }
                }
            }
            5 => {
                chain.timestamp += rand(700);
                let outcome = call(
                    &mut chain,
                    user,
                    DELEGATION_ADDRESS,
                    U256::ZERO,
                    IDelegation::withdrawUnbondedCall {}.abi_encode(),
                );
                match model.withdraw(user, chain.timestamp) {
                    Some(total) => assert_eq!(
                        IDelegation::withdrawUnbondedCall::abi_decode_returns(&outcome.ok().0)
                            .unwrap(),
                        total
                    ),
                    None => outcome.revert(IDelegation::NothingToWithdraw {}),
                }
            }
            6 => {
                // Cancel part or all of an unmatured entry, found as the precompile finds it.
                let now = chain.timestamp;
                let Some(pick) = model
                    .entries
                    .get(&user)
                    .and_then(|l| l.iter().find(|e| e.completion > now && !e.amount.is_zero()))
                    .copied()
                else {
                    continue;
                };
                let amount = if rand(2) == 0 {
                    pick.amount
                } else {
                    pick.amount / U256::from(2) + U256::from(1)
                };
                let outcome = call(
                    &mut chain,
                    user,
                    DELEGATION_ADDRESS,
                    U256::ZERO,
                    IDelegation::cancelUnbondingCall {
                        validator: pick.validator,
                        amount,
                        creationHeight: pick.height,
                    }
                    .abi_encode(),
                );
                let v = &model.validators[&pick.validator];
                if user == pick.validator && v.tombstoned {
                    outcome.revert(IStaking::Tombstoned { operator: user });
                } else if user != pick.validator && !v.bonded {
                    outcome.revert(IDelegation::NotValidator {
                        validator: pick.validator,
                    });
                } else {
                    outcome.ok();
                    let list = model.entries.get_mut(&user).unwrap();
                    let i = list
                        .iter()
                        .position(|e| {
                            e.validator == pick.validator
                                && e.height == pick.height
                                && e.completion > now
                                && e.amount >= amount
                        })
                        .unwrap();
                    if list[i].amount == amount {
                        list.swap_remove(i);
                    } else {
                        list[i].amount -= amount;
                        list[i].initial = list[i].initial.saturating_sub(amount);
                    }
                    model.bond(user, pick.validator, amount);
                    if user == pick.validator {
                        model.update_status(user);
                    }
                }
            }
            7 if validators.contains(&user) => {
                // An operator adds or removes self-stake (10% burned while jailed).
                let v = &model.validators[&user];
                if rand(2) == 0 {
                    let amount = ether(1 + rand(60));
                    let outcome = call(
                        &mut chain,
                        user,
                        STAKING_ADDRESS,
                        amount,
                        IStaking::addStakeCall {}.abi_encode(),
                    );
                    if v.tombstoned {
                        outcome.revert(IStaking::Tombstoned { operator: user });
                    } else {
                        outcome.ok();
                        model.bond(user, user, amount);
                        model.update_status(user);
                    }
                } else {
                    let own = model.tokens(user, user);
                    if own.is_zero() {
                        continue;
                    }
                    let amount = own / U256::from(3) + U256::from(1);
                    // Due while jailed, and until a full window is served after unjailing.
                    let penalty = if v.jailed || v.penalty_due {
                        amount / U256::from(10)
                    } else {
                        U256::ZERO
                    };
                    let outcome = call(
                        &mut chain,
                        user,
                        STAKING_ADDRESS,
                        U256::ZERO,
                        IStaking::unstakeCall { amount }.abi_encode(),
                    );
                    if let Some(full) = model.unbonding_full(user, user) {
                        outcome.revert(full);
                        continue;
                    }
                    outcome.ok();
                    model.unbond(user, user, amount, penalty, &chain);
                    model.update_status(user);
                }
            }
            8 => {
                // `validator` goes offline until the uptime window jails and slashes it (a seat
                // whose self-stake fell below the minimum keeps its duty).
                if !model.epoch_set.contains(&validator) {
                    continue;
                }
                let signers: Vec<Address> = model
                    .epoch_set
                    .iter()
                    .copied()
                    .filter(|a| *a != validator)
                    .collect();
                let mut slashed = None;
                for _ in 0..12 {
                    let (_, logs) = call(
                        &mut chain,
                        SYSTEM_ADDRESS,
                        STAKING_ADDRESS,
                        U256::ZERO,
                        IStaking::recordSignersCall {
                            signers: signers.clone(),
                        }
                        .abi_encode(),
                    )
                    .ok();
                    let event = logs
                        .iter()
                        .find_map(|l| IStaking::ValidatorSlashed::decode_log_data(&l.data).ok());
                    let jailed = model.record_signers(&signers, chain.number);
                    assert_eq!(
                        event.as_ref().map(|e| e.operator),
                        jailed.map(|j| j.0),
                        "seed {seed} step {step}: who is jailed"
                    );
                    let at = chain.number;
                    chain.number += 1;
                    if let Some(event) = event {
                        slashed = Some((event, at));
                        break;
                    }
                }
                let (event, at) = slashed.expect("jailed within a window");
                let v = model.validators.get_mut(&validator).unwrap();
                let bps = [500, 1_000, 10_000][v.offences.min(2)];
                v.offences += 1;
                let (start, _, seats) = model.epochs.last().unwrap();
                let (since, basis) = ((at - 10).min(*start), seats[&validator]);
                let (amount, _) = model.slash(validator, bps, basis, since, chain.timestamp);
                assert_eq!(
                    (event.operator, event.fractionBps, event.amount),
                    (validator, bps as u16, amount),
                    "seed {seed} step {step}"
                );
                let v = model.validators.get_mut(&validator).unwrap();
                v.tombstoned |= v.stake.is_zero();
                slashes += 1;
            }
            9 => {
                let v = &model.validators[&validator];
                if !v.jailed {
                    continue;
                }
                chain.timestamp += 100;
                let outcome = call(
                    &mut chain,
                    validator,
                    STAKING_ADDRESS,
                    U256::ZERO,
                    IStaking::unjailCall {}.abi_encode(),
                );
                if v.tombstoned {
                    outcome.revert(IStaking::Tombstoned {
                        operator: validator,
                    });
                } else {
                    outcome.ok();
                    model.validators.get_mut(&validator).unwrap().jailed = false;
                    model.update_status(validator);
                }
            }
            10 => {
                model.next_epoch(chain.number, chain.timestamp);
                assert_eq!(
                    chain.next_epoch(),
                    model.epoch_set,
                    "seed {seed} step {step}: active set"
                );
            }
            // Late in the run: a tombstoned validator takes no further part.
            // Late in the run: a tombstoned validator takes no further part. The reporter may
            // be the offender itself.
            11 if step > 250 && rand(2) == 0 && !model.validators[&validator].tombstoned => {
                // Evidence from a fresh epoch is young enough; older is often too old.
                let fresh = rand(2) == 0;
                if fresh {
                    model.next_epoch(chain.number, chain.timestamp);
                    assert_eq!(chain.next_epoch(), model.epoch_set);
                    chain.number += 1;
                }
                let height = if fresh {
                    chain.number
                } else {
                    chain.number - rand(30)
                };
                let reporter = if rand(2) == 0 { validator } else { user };
                let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
                let outcome = call(
                    &mut chain,
                    reporter,
                    STAKING_ADDRESS,
                    U256::ZERO,
                    IStaking::submitDoubleSignEvidenceCall {
                        consensusKey: consensus_key(vi as u8 + 1),
                        first: vote(vi as u8 + 1, height, 0, a),
                        second: vote(vi as u8 + 1, height, 0, b),
                    }
                    .abi_encode(),
                );
                // The epoch holding the height: the latest starting at or before it.
                let (start, time, seats) = model
                    .epochs
                    .iter()
                    .rev()
                    .find(|e| e.0 <= height)
                    .cloned()
                    .unwrap();
                let seat = seats.get(&validator).copied().unwrap_or_default();
                if chain.timestamp - time >= 100 {
                    outcome.revert(IStaking::EvidenceOutOfRange {
                        height,
                        currentHeight: chain.number,
                    });
                    continue;
                }
                if seat.is_zero() {
                    outcome.revert(IStaking::NotInActiveSet {
                        operator: validator,
                        height,
                    });
                    continue;
                }
                let (_, logs) = outcome.ok();
                let (amount, own_loss) = model.slash(validator, 500, seat, start, chain.timestamp);
                let reported =
                    IStaking::DoubleSignReported::decode_log_data(&logs[1].data).unwrap();
                assert_eq!(
                    reported.reward,
                    (amount / U256::from(10)).min(own_loss),
                    "seed {seed} step {step}"
                );
                let v = model.validators.get_mut(&validator).unwrap();
                (v.jailed, v.bonded, v.tombstoned) = (true, false, true);
                model.epoch_set.retain(|a| *a != validator);
                double_signs += 1;
            }
            _ => {
                let amount = U256::from(rand(1 << 40) + 1);
                chain.distribute(validator, amount);
                model.distribute(validator, amount);
            }
        }
        // Every delegation's worth and rewards equal the model's, to the wei.
        for (d, v) in model.pairs.keys().copied().collect::<Vec<_>>() {
            let on_chain = chain.view(
                DELEGATION_ADDRESS,
                IDelegation::pendingRewardsCall {
                    delegator: d,
                    validator: v,
                },
            );
            assert_eq!(
                on_chain,
                model.pending(d, v),
                "seed {seed} step {step}: rewards of {d} at {v}"
            );
            let worth = chain.view(
                DELEGATION_ADDRESS,
                IDelegation::delegationCall {
                    delegator: d,
                    validator: v,
                },
            );
            assert_eq!(
                worth,
                model.tokens(d, v),
                "seed {seed} step {step}: delegation of {d} at {v}"
            );
        }
        for (d, entries) in &model.entries {
            let on_chain: Vec<(Address, U256)> = chain
                .view(
                    DELEGATION_ADDRESS,
                    IDelegation::unbondingOfCall { delegator: *d },
                )
                .iter()
                .map(|e| (e.validator, e.amount))
                .collect();
            let expected: Vec<(Address, U256)> =
                entries.iter().map(|e| (e.validator, e.amount)).collect();
            assert_eq!(
                on_chain, expected,
                "seed {seed} step {step}: unbonding of {d}"
            );
        }
        for (d, list) in &model.redelegations {
            let on_chain: Vec<(Address, Address, U256)> = chain
                .view(
                    DELEGATION_ADDRESS,
                    IDelegation::redelegationsOfCall { delegator: *d },
                )
                .iter()
                .map(|r| (r.srcValidator, r.dstValidator, r.dstShares))
                .collect();
            let expected: Vec<(Address, Address, U256)> = list
                .iter()
                .filter(|r| r.completion > chain.timestamp)
                .map(|r| (r.src, r.dst, r.shares))
                .collect();
            assert_eq!(
                on_chain, expected,
                "seed {seed} step {step}: redelegations of {d}"
            );
        }
        // Supply: only distributions minted; every wei is in some account or burned.
        assert_eq!(
            supply(&mut chain),
            genesis_supply + chain.minted,
            "seed {seed} step {step}"
        );
        // The escrow holds exactly the bonded and unbonding principal; the pool covers rewards.
        let bonded = chain.view(STAKING_ADDRESS, IStaking::totalStakeCall {});
        let unbonding = chain.view(STAKING_ADDRESS, IStaking::totalUnbondingCall {});
        let model_bonded = model
            .validators
            .values()
            .fold(U256::ZERO, |a, v| a + v.stake);
        let model_unbonding = model
            .entries
            .values()
            .flatten()
            .fold(U256::ZERO, |a, e| a + e.amount);
        assert_eq!(
            (bonded, unbonding),
            (model_bonded, model_unbonding),
            "seed {seed} step {step}"
        );
        assert_eq!(
            chain.balance(DELEGATION_ADDRESS),
            bonded + unbonding,
            "seed {seed} step {step}"
        );
        let owed = model
            .pairs
            .keys()
            .map(|(d, v)| model.pending(*d, *v))
            .fold(U256::ZERO, |a, b| a + b);
        assert!(
            chain.balance(STAKING_ADDRESS) >= owed,
            "seed {seed} step {step}"
        );
        // No one can move another's stake.
        let other_stake = model.tokens(addr(8), validators[0]);
        call(
            &mut chain,
            addr(8),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::undelegateCall {
                validator: validators[0],
                amount: other_stake + U256::from(1),
            }
            .abi_encode(),
        )
        .revert(IDelegation::InsufficientDelegation {
            requested: other_stake + U256::from(1),
            available: other_stake,
        });
    }
    assert!(!claimed.is_zero());
    (slashes, double_signs, model.redelegation_cuts)
}

/// Validator `key`'s signed vote for `hash` at `height`/`round`.
fn vote(key: u8, height: u64, round: u32, hash: B256) -> IStaking::SignedVote {
    let message = vote_message(CHAIN_ID, height, round, hash);
    IStaking::SignedVote {
        height,
        round,
        blockHash: hash,
        signature: signing_key(key).sign(&message).to_bytes().to_vec().into(),
    }
}

#[test]
fn double_sign_evidence_slashes_tombstones_and_pays_the_reporter() {
    let mut chain = Chain::new(&[]);
    chain.create(addr(1), 1, ether(100), 0).ok();
    chain.create(addr(2), 2, ether(200), 0).ok();
    chain.delegate(addr(5), addr(2), ether(100)).ok();
    chain.delegate(addr(6), addr(2), ether(50)).ok();
    chain.delegate(addr(8), addr(2), ether(40)).ok();
    let redelegate = |chain: &mut Chain, src: Address, dst: Address, amount: U256| {
        chain.call(
            addr(8),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::redelegateCall {
                srcValidator: src,
                dstValidator: dst,
                amount,
            }
            .abi_encode(),
        )
    };
    // Unbonding and redelegating before the boundary of the infraction's epoch are out of the
    // seat's stake and of reach; after it (before or after the infraction at 40), they are
    // slashed.
    chain.number = 15;
    chain.undelegate(addr(6), addr(2), ether(30)).ok();
    redelegate(&mut chain, addr(2), addr(1), ether(10)).ok();
    chain.number = 20;
    assert_eq!(chain.next_epoch(), vec![addr(2), addr(1)]);
    let epoch_started = chain.timestamp;
    // Stake fixed at the boundary: 200 self + 100 + 50 + 40 - 30 - 10.
    assert_eq!(
        chain.view(STAKING_ADDRESS, IStaking::activeSetCall {}),
        vec![addr(2), addr(1)]
    );
    chain.create(addr(3), 3, ether(100), 0).ok();
    chain.number = 45;
    redelegate(&mut chain, addr(2), addr(1), ether(20)).ok();
    // Redelegated stake cannot hop on before its redelegation completes.
    redelegate(&mut chain, addr(1), addr(2), ether(5))
        .revert(IDelegation::TransitiveRedelegation { validator: addr(1) });
    assert_eq!(
        chain
            .view(
                DELEGATION_ADDRESS,
                IDelegation::redelegationsOfCall { delegator: addr(8) }
            )
            .iter()
            .map(|r| (r.srcValidator, r.dstShares, r.creationHeight))
            .collect::<Vec<_>>(),
        vec![(addr(2), ether(10), 15), (addr(2), ether(20), 45)]
    );
    chain.number = 50;
    chain.undelegate(addr(5), addr(2), ether(40)).ok();
    assert_eq!(
        chain
            .view(
                STAKING_ADDRESS,
                IStaking::voteMessageCall {
                    height: 40,
                    round: 3,
                    blockHash: B256::repeat_byte(0xaa)
                }
            )
            .to_vec(),
        vote_message(CHAIN_ID, 40, 3, B256::repeat_byte(0xaa)),
        "the view and the Rust API agree on what a vote signs"
    );
    let (a, b) = (B256::repeat_byte(0xaa), B256::repeat_byte(0xbb));
    let submit = |chain: &mut Chain, key: B256, first, second| {
        chain.call(
            addr(7),
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::submitDoubleSignEvidenceCall {
                consensusKey: key,
                first,
                second,
            }
            .abi_encode(),
        )
    };
    let key = consensus_key(2);
    submit(
        &mut chain,
        consensus_key(9),
        vote(9, 40, 3, a),
        vote(9, 40, 3, b),
    )
    .revert(IStaking::UnknownConsensusKey {
        key: consensus_key(9),
    });
    for (first, second) in [
        (vote(2, 40, 3, a), vote(2, 40, 3, a)),
        (vote(2, 40, 3, a), vote(2, 41, 3, b)),
        (vote(2, 40, 3, a), vote(2, 40, 4, b)),
    ] {
        submit(&mut chain, key, first, second).revert(IStaking::VotesNotConflicting {});
    }
    // Signed by another key, signed over another message, or malformed.
    let mut wrong_key = vote(1, 40, 3, b);
    wrong_key.blockHash = b;
    let mut other_message = vote(2, 40, 3, b);
    other_message.round = 3;
    other_message.signature = vote(2, 40, 2, b).signature;
    let mut short = vote(2, 40, 3, b);
    short.signature = short.signature[..63].to_vec().into();
    for bad in [wrong_key, other_message, short] {
        submit(&mut chain, key, vote(2, 40, 3, a), bad).revert(IStaking::InvalidVoteSignature {
            height: 40,
            round: 3,
            blockHash: b,
        });
    }
    submit(&mut chain, key, vote(2, 51, 0, a), vote(2, 51, 0, b)).revert(
        IStaking::EvidenceOutOfRange {
            height: 51,
            currentHeight: 50,
        },
    );
    // Evidence counts only where the key held a seat: not in epoch 1 (its set was empty), not
    // for a validator created after the boundary.
    submit(&mut chain, key, vote(2, 10, 0, a), vote(2, 10, 0, b)).revert(
        IStaking::NotInActiveSet {
            operator: addr(2),
            height: 10,
        },
    );
    submit(
        &mut chain,
        consensus_key(3),
        vote(3, 40, 0, a),
        vote(3, 40, 0, b),
    )
    .revert(IStaking::NotInActiveSet {
        operator: addr(3),
        height: 40,
    });
    // Evidence ages in seconds from its epoch's start, like unbonding.
    chain.timestamp = epoch_started + 100;
    submit(&mut chain, key, vote(2, 40, 3, a), vote(2, 40, 3, b)).revert(
        IStaking::EvidenceOutOfRange {
            height: 40,
            currentHeight: 50,
        },
    );
    chain.timestamp = epoch_started + 99;
    chain.number = 140;

    let reporter = chain.balance(addr(7));
    let escrow = chain.balance(DELEGATION_ADDRESS);
    let (_, logs) = submit(&mut chain, key, vote(2, 40, 3, a), vote(2, 40, 3, b)).ok();
    // 5% of the seat's 350: first 5% of the 40 unbonded and of the 20 redelegated after the
    // boundary, the rest (14.5) from the 290 bonded now.
    let total = ether(35) / U256::from(2);
    let slashed = IStaking::ValidatorSlashed::decode_log_data(&logs[0].data).unwrap();
    assert_eq!(
        (
            slashed.operator,
            slashed.reason,
            slashed.fractionBps,
            slashed.amount
        ),
        (addr(2), 2, 500, total)
    );
    let reported = IStaking::DoubleSignReported::decode_log_data(&logs[1].data).unwrap();
    // 10% of the slash; below the operator's own loss (10 of its 200).
    let reward = total / U256::from(10);
    assert_eq!(
        (
            reported.operator,
            reported.reporter,
            reported.height,
            reported.round,
            reported.reward
        ),
        (addr(2), addr(7), 40, 3, reward)
    );
    assert_eq!(chain.balance(addr(7)), reporter + reward);
    assert_eq!(chain.balance(DELEGATION_ADDRESS), escrow - total);
    assert_eq!(
        chain.view(STAKING_ADDRESS, IStaking::totalBurnedCall {}),
        total - reward
    );
    // The redelegation after the infraction lost 5% at its destination; the earlier one none.
    assert_eq!(
        chain.view(
            DELEGATION_ADDRESS,
            IDelegation::delegationCall {
                delegator: addr(8),
                validator: addr(1)
            }
        ),
        ether(29)
    );
    assert_eq!(
        chain
            .view(
                STAKING_ADDRESS,
                IStaking::validatorCall { operator: addr(1) }
            )
            .totalStake,
        ether(129)
    );
    let v = chain.view(
        STAKING_ADDRESS,
        IStaking::validatorCall { operator: addr(2) },
    );
    assert_eq!(
        (
            v.status,
            v.tombstoned,
            v.jailedUntil,
            v.totalStake,
            v.selfStake
        ),
        (
            3,
            true,
            u64::MAX,
            ether(290) - ether(29) / U256::from(2),
            ether(190)
        )
    );
    let entries = |chain: &mut Chain, d| {
        chain
            .view(
                DELEGATION_ADDRESS,
                IDelegation::unbondingOfCall { delegator: d },
            )
            .iter()
            .map(|e| e.amount)
            .collect::<Vec<_>>()
    };
    assert_eq!(entries(&mut chain, addr(5)), vec![ether(38)]);
    assert_eq!(entries(&mut chain, addr(6)), vec![ether(30)]);
    // Punished once; never back.
    submit(&mut chain, key, vote(2, 40, 3, a), vote(2, 40, 3, b))
        .revert(IStaking::Tombstoned { operator: addr(2) });
    chain.timestamp += 10_000;
    chain
        .call(
            addr(2),
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::unjailCall {}.abi_encode(),
        )
        .revert(IStaking::Tombstoned { operator: addr(2) });
    // Delegators leave with what the slash left: 60 * 0.95.
    chain.undelegate(addr(5), addr(2), ether(57)).ok();
    assert_eq!(
        chain.view(
            DELEGATION_ADDRESS,
            IDelegation::delegationCall {
                delegator: addr(5),
                validator: addr(2)
            }
        ),
        U256::ZERO
    );
}

#[test]
fn consensus_keys_must_be_ed25519_points() {
    let mut chain = Chain::new(&[]);
    let not_a_point = (0u8..=255)
        .map(B256::repeat_byte)
        .find(|k| ed25519_dalek::VerifyingKey::from_bytes(&k.0).is_err())
        .unwrap();
    chain
        .call(
            addr(1),
            STAKING_ADDRESS,
            ether(100),
            IStaking::createValidatorCall {
                consensusKey: not_a_point,
                commissionBps: 0,
                maxCommissionBps: 0,
                maxChangeBps: 0,
                description: Default::default(),
                proofOfPossession: Bytes::new(),
            }
            .abi_encode(),
        )
        .revert(IStaking::InvalidConsensusKey { key: not_a_point });
}

#[test]
fn zero_amounts_are_refused() {
    let mut chain = Chain::new(&[]);
    chain.create(addr(1), 1, ether(100), 0).ok();
    chain.delegate(addr(5), addr(1), ether(5)).ok();
    for (from, to, data) in [
        (
            addr(1),
            STAKING_ADDRESS,
            IStaking::addStakeCall {}.abi_encode(),
        ),
        (
            addr(1),
            STAKING_ADDRESS,
            IStaking::unstakeCall { amount: U256::ZERO }.abi_encode(),
        ),
    ] {
        chain
            .call(from, to, U256::ZERO, data)
            .revert(IStaking::ZeroAmount {});
    }
    for data in [
        IDelegation::undelegateCall {
            validator: addr(1),
            amount: U256::ZERO,
        }
        .abi_encode(),
        IDelegation::cancelUnbondingCall {
            validator: addr(1),
            amount: U256::ZERO,
            creationHeight: 1,
        }
        .abi_encode(),
    ] {
        chain
            .call(addr(5), DELEGATION_ADDRESS, U256::ZERO, data)
            .revert(IDelegation::ZeroAmount {});
    }
}

#[test]
fn evidence_fits_however_many_entries_the_offender_has() {
    // 300 delegators with an unbonding entry each after the infraction: walking them at EVM rates
    // would cost more than the 5M gas the test's calls carry. The walk is protocol work, so the
    // reporter pays only for the evidence.
    let mut chain = Chain::new(&[]);
    chain.create(addr(2), 2, ether(100), 0).ok();
    let delegators: Vec<_> = (0..300u32)
        .map(|i| Address::from_word(keccak256(i.to_be_bytes())))
        .collect();
    for &delegator in &delegators {
        chain.db.insert_account_info(
            delegator,
            AccountInfo {
                balance: ether(10),
                ..Default::default()
            },
        );
        chain.delegate(delegator, addr(2), ether(2)).ok();
    }
    chain.next_epoch();
    chain.number = 10;
    for &delegator in &delegators {
        chain.undelegate(delegator, addr(2), ether(1)).ok();
    }
    let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
    let (_, logs) = chain
        .call(
            addr(7),
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::submitDoubleSignEvidenceCall {
                consensusKey: consensus_key(2),
                first: vote(2, 10, 0, a),
                second: vote(2, 10, 0, b),
            }
            .abi_encode(),
        )
        .ok();
    let slashed = IStaking::ValidatorSlashed::decode_log_data(&logs[0].data).unwrap();
    // 5% of the seat's 700: 15 from the 300 unbonding, the other 20 from the 400 bonded.
    assert_eq!(slashed.amount, ether(35));
}

impl Chain {
    /// Records this block's signers (as the block producer does) and moves to the next block.
    fn record(&mut self, signers: Vec<Address>) -> Vec<Log> {
        let (_, logs) = self
            .call(
                SYSTEM_ADDRESS,
                STAKING_ADDRESS,
                U256::ZERO,
                IStaking::recordSignersCall { signers }.abi_encode(),
            )
            .ok();
        self.number += 1;
        logs
    }

    fn unstake(&mut self, operator: Address, amount: U256) -> Outcome {
        self.call(
            operator,
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::unstakeCall { amount }.abi_encode(),
        )
    }

    fn evidence(&mut self, reporter: Address, key: u8, height: u64) -> Outcome {
        let (a, b) = (B256::repeat_byte(0xa1), B256::repeat_byte(0xb2));
        self.call(
            reporter,
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::submitDoubleSignEvidenceCall {
                consensusKey: consensus_key(key),
                first: vote(key, height, 0, a),
                second: vote(key, height, 0, b),
            }
            .abi_encode(),
        )
    }

    fn unbonding(&mut self, delegator: Address) -> U256 {
        self.view(
            DELEGATION_ADDRESS,
            IDelegation::unbondingOfCall { delegator },
        )
        .iter()
        .fold(U256::ZERO, |a, e| a + e.amount)
    }

    fn info(&mut self, operator: Address) -> IStaking::ValidatorInfo {
        self.view(STAKING_ADDRESS, IStaking::validatorCall { operator })
    }
}

#[test]
fn a_self_reported_double_sign_never_pays_the_offender() {
    // The review's sequence: 100 self-stake and 9,900 delegated; the operator unstakes at N,
    // double-signs at N+1 and reports itself from a second address.
    let mut chain = Chain::new(&[]);
    chain.create(addr(2), 2, ether(100), 0).ok();
    for d in 5..=15u8 {
        chain.delegate(addr(d), addr(2), ether(900)).ok();
    }
    assert_eq!(chain.next_epoch(), vec![addr(2)]);
    chain.number += 1;
    let wealth = |chain: &mut Chain| {
        chain.balance(addr(2))
            + chain.info(addr(2)).selfStake
            + chain.unbonding(addr(2))
            + chain.balance(addr(7))
    };
    let before = wealth(&mut chain);
    chain.unstake(addr(2), ether(100)).ok();
    chain.number += 1;
    let (_, logs) = chain.evidence(addr(7), 2, chain.number).ok();
    let slashed = IStaking::ValidatorSlashed::decode_log_data(&logs[0].data).unwrap();
    let reported = IStaking::DoubleSignReported::decode_log_data(&logs[1].data).unwrap();
    // 5% of the seat's 10,000: 5 from the operator's own entry, 495 from the delegators.
    assert_eq!(slashed.amount, ether(500));
    assert_eq!(chain.info(addr(2)).totalStake, ether(9_900) - ether(495));
    // The reporter gets at most what the offender lost (5), not 10% of the slash (50).
    assert_eq!(reported.reward, ether(5));
    assert!(wealth(&mut chain) <= before, "self-reporting paid");
    // Unstaking in the epoch before, out of the seat's stake, leaves nothing to pay out.
    let mut chain = Chain::new(&[]);
    chain.create(addr(2), 2, ether(200), 0).ok();
    chain.delegate(addr(5), addr(2), ether(9_900)).ok();
    chain.unstake(addr(2), ether(100)).ok();
    chain.next_epoch();
    chain.number += 1;
    let before = wealth(&mut chain);
    let (_, logs) = chain.evidence(addr(7), 2, chain.number).ok();
    let reported = IStaking::DoubleSignReported::decode_log_data(&logs[1].data).unwrap();
    assert_eq!(
        reported.reward,
        ether(5),
        "5% of its remaining 100 self-stake"
    );
    assert!(wealth(&mut chain) <= before);
}

#[test]
fn the_slash_is_of_the_stake_bonded_at_the_infraction() {
    let mut chain = Chain::new(&[]);
    chain.create(addr(2), 2, ether(1_000), 0).ok();
    assert_eq!(chain.next_epoch(), vec![addr(2)]);
    chain.number += 1;
    let infraction = chain.number;
    // Stake delegated after the infraction neither raises the slash nor the seat's power.
    chain.number += 1;
    chain.delegate(addr(5), addr(2), ether(1_000)).ok();
    assert_eq!(chain.info(addr(2)).totalStake, ether(2_000));
    let (_, logs) = chain.evidence(addr(7), 2, infraction).ok();
    let slashed = IStaking::ValidatorSlashed::decode_log_data(&logs[0].data).unwrap();
    assert_eq!(
        slashed.amount,
        ether(50),
        "5% of the 1,000 bonded at the infraction"
    );
    assert_eq!(
        chain.view(
            DELEGATION_ADDRESS,
            IDelegation::delegationCall {
                delegator: addr(5),
                validator: addr(2)
            }
        ),
        ether(975)
    );
}

#[test]
fn jailed_validators_leave_the_set_at_once_and_earn_nothing() {
    let mut chain = Chain::new(&[]);
    chain.create(addr(1), 1, ether(100), 0).ok();
    chain.create(addr(2), 2, ether(300), 0).ok();
    assert_eq!(chain.next_epoch(), vec![addr(2), addr(1)]);
    // addr(2) goes offline, and unstakes below the minimum self-stake (INACTIVE) mid-window: the
    // seat's duty stays, so it is jailed all the same.
    let mut jailed_at = None;
    for n in 0..12 {
        if n == 3 {
            chain.unstake(addr(2), ether(250)).ok();
            assert_eq!(chain.info(addr(2)).status, 2, "inactive");
        }
        let logs = chain.record(vec![addr(1)]);
        if logs
            .iter()
            .any(|l| l.topics()[0] == IStaking::ValidatorJailed::SIGNATURE_HASH)
        {
            jailed_at = Some(n);
            break;
        }
    }
    assert!(jailed_at.is_some(), "downtime escaped by going inactive");
    assert_eq!(
        chain.view(STAKING_ADDRESS, IStaking::activeSetCall {}),
        vec![addr(1)],
        "jailed: out of the set before the epoch ends"
    );
    // A block proposed by a validator without a seat pays no one: its reward is burned.
    let (pool, burned) = (
        chain.balance(STAKING_ADDRESS),
        chain.view(STAKING_ADDRESS, IStaking::totalBurnedCall {}),
    );
    chain.distribute(addr(2), ether(2));
    chain.distribute(addr(9), ether(3));
    assert_eq!(chain.balance(STAKING_ADDRESS), pool);
    assert_eq!(
        chain.view(STAKING_ADDRESS, IStaking::totalBurnedCall {}),
        burned + ether(5)
    );
    assert_eq!(chain.info(addr(2)).commissionUnclaimed, U256::ZERO);
    // Waiting out the jail time and unjailing for free leaves the jailed-unstake penalty due
    // until a full uptime window is served.
    chain.timestamp += 100;
    chain.add_stake(addr(2), ether(100));
    chain
        .call(
            addr(2),
            STAKING_ADDRESS,
            U256::ZERO,
            IStaking::unjailCall {}.abi_encode(),
        )
        .ok();
    let penalty = |logs: &[Log]| {
        IStaking::StakeRemoved::decode_log_data(&logs[0].data)
            .unwrap()
            .penalty
    };
    let (_, logs) = chain.unstake(addr(2), ether(10)).ok();
    assert_eq!(
        penalty(&logs),
        ether(1),
        "10% still due after a free unjail"
    );
    chain.next_epoch();
    for _ in 0..11 {
        chain.record(vec![addr(1), addr(2)]);
    }
    let (_, logs) = chain.unstake(addr(2), ether(10)).ok();
    assert_eq!(penalty(&logs), U256::ZERO, "served a full window");
}

impl Chain {
    fn add_stake(&mut self, operator: Address, amount: U256) {
        self.call(
            operator,
            STAKING_ADDRESS,
            amount,
            IStaking::addStakeCall {}.abi_encode(),
        )
        .ok();
    }
}

#[test]
fn a_consensus_key_cannot_be_registered_without_its_secret() {
    let mut chain = Chain::new(&[]);
    // A front-runner copies addr(1)'s pending createValidator: the proof binds the operator.
    let squat = IStaking::createValidatorCall {
        consensusKey: consensus_key(1),
        commissionBps: 0,
        maxCommissionBps: 0,
        maxChangeBps: 0,
        description: Default::default(),
        proofOfPossession: pop(1, addr(1)),
    };
    chain
        .call(addr(3), STAKING_ADDRESS, ether(100), squat.abi_encode())
        .revert(IStaking::InvalidProofOfPossession {
            key: consensus_key(1),
        });
    // Nor a proof for another chain, nor none.
    let other_chain = signing_key(1)
        .sign(&pop_message(CHAIN_ID + 1, addr(1)))
        .to_bytes()
        .to_vec();
    for proof in [other_chain, vec![]] {
        let call = IStaking::createValidatorCall {
            proofOfPossession: proof.into(),
            ..squat.clone()
        };
        chain
            .call(addr(1), STAKING_ADDRESS, ether(100), call.abi_encode())
            .revert(IStaking::InvalidProofOfPossession {
                key: consensus_key(1),
            });
    }
    chain
        .call(addr(1), STAKING_ADDRESS, ether(100), squat.abi_encode())
        .ok();
    assert_eq!(
        chain
            .view(
                STAKING_ADDRESS,
                IStaking::popMessageCall { operator: addr(1) }
            )
            .to_vec(),
        pop_message(CHAIN_ID, addr(1))
    );
}

#[test]
fn entries_are_capped_per_validator_and_per_delegator() {
    let mut chain = Chain::new(&[]);
    let validators: Vec<Address> = (1..=10u8).map(addr).collect();
    for (i, v) in validators.iter().enumerate() {
        chain.create(*v, i as u8 + 1, ether(100), 0).ok();
        chain.delegate(addr(20), *v, ether(20)).ok();
    }
    // Seven open entries per (delegator, validator), as Cosmos's MaxEntries.
    for _ in 0..7 {
        chain.undelegate(addr(20), addr(1), ether(1)).ok();
    }
    chain
        .undelegate(addr(20), addr(1), ether(1))
        .revert(IStaking::TooManyEntries {
            validator: addr(1),
            max: U256::from(7),
        });
    // 64 in a delegator's list, across validators.
    for v in &validators[1..] {
        for _ in 0..7 {
            if chain
                .view(
                    DELEGATION_ADDRESS,
                    IDelegation::unbondingOfCall {
                        delegator: addr(20),
                    },
                )
                .len()
                < 64
            {
                chain.undelegate(addr(20), *v, ether(1)).ok();
            }
        }
    }
    chain
        .undelegate(addr(20), addr(10), ether(1))
        .revert(IStaking::TooManyEntries {
            validator: addr(10),
            max: U256::from(64),
        });
    // Withdrawing all 64 at the limit (within the call's 5M gas); it frees the counts.
    chain.timestamp += 1_000;
    let (out, _) = chain
        .call(
            addr(20),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::withdrawUnbondedCall {}.abi_encode(),
        )
        .ok();
    assert_eq!(
        IDelegation::withdrawUnbondedCall::abi_decode_returns(&out).unwrap(),
        ether(64)
    );
    chain.undelegate(addr(20), addr(1), ether(1)).ok();
}

#[test]
fn a_short_escrow_or_corrupt_totals_revert_instead_of_wrapping() {
    let mut chain = Chain::new(&[]);
    chain.create(addr(1), 1, ether(100), 0).ok();
    chain.delegate(addr(5), addr(1), ether(10)).ok();
    chain.undelegate(addr(5), addr(1), ether(10)).ok();
    chain.timestamp += 1_000;
    // The escrow lost its funds (corrupt state): the payout reverts, nothing changes.
    let info = chain.db.basic_ref(DELEGATION_ADDRESS).unwrap().unwrap();
    chain.db.insert_account_info(
        DELEGATION_ADDRESS,
        AccountInfo {
            balance: ether(1),
            ..info.clone()
        },
    );
    let withdraw = IDelegation::withdrawUnbondedCall {}.abi_encode();
    chain
        .call(addr(5), DELEGATION_ADDRESS, U256::ZERO, withdraw.clone())
        .revert(IStaking::EscrowShortfall {
            escrow: DELEGATION_ADDRESS,
            amount: ether(10),
        });
    assert_eq!(chain.unbonding(addr(5)), ether(10));
    chain.db.insert_account_info(DELEGATION_ADDRESS, info);
    // A total below what it must cover underflows: Panic(0x11), not a wrapped 2^256 - x.
    chain
        .db
        .insert_account_storage(STAKING_ADDRESS, U256::from(6), U256::ZERO)
        .unwrap();
    chain
        .call(addr(5), DELEGATION_ADDRESS, U256::ZERO, withdraw)
        .revert(alloy::sol_types::Panic {
            code: U256::from(0x11),
        });
    assert_eq!(chain.unbonding(addr(5)), ether(10));
}
