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
    /// Base fee of the blocks (0 unless a test sets it): transactions pay it, and it is burned.
    base_fee: u64,
    /// Base fees burned so far, and what the last call paid.
    fees_burned: U256,
    last_fee: U256,
    /// Gas the last call used.
    last_gas: u64,
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
            base_fee: 0,
            fees_burned: U256::ZERO,
            last_fee: U256::ZERO,
            last_gas: 0,
        }
    }

    fn call(&mut self, from: Address, to: Address, value: U256, data: Vec<u8>) -> Outcome {
        let price = if from == SYSTEM_ADDRESS {
            0
        } else {
            self.base_fee
        };
        self.execute(from, to, value, data, price)
    }

    /// Runs a call paying `gas_price` per gas (0: a free view, as `eth_call` runs it).
    fn execute(
        &mut self,
        from: Address,
        to: Address,
        value: U256,
        data: Vec<u8>,
        gas_price: u64,
    ) -> Outcome {
        let mut cfg = CfgEnv::new_with_spec(SpecId::PRAGUE);
        cfg.chain_id = CHAIN_ID;
        cfg.disable_nonce_check = true;
        cfg.disable_base_fee = gas_price < self.base_fee;
        let block = BlockEnv {
            number: U256::from(self.number),
            timestamp: U256::from(self.timestamp),
            gas_limit: 30_000_000,
            basefee: self.base_fee,
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
            .gas_price(gas_price as u128)
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
        // The whole price is the base fee (no tip), which EIP-1559 burns.
        self.last_gas = result.result.tx_gas_used();
        self.last_fee = U256::from(self.last_gas) * U256::from(gas_price);
        self.fees_burned += self.last_fee;
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
        let (out, _) = self
            .execute(addr(99), to, U256::ZERO, call.abi_encode(), 0)
            .ok();
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
    assert_eq!(chain.withdraw(addr(6)), ether(29));
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

/// An exact rational amount (the reference ledger never rounds).
type Q = num_rational::BigRational;

fn q(amount: U256) -> Q {
    Q::from_integer(num_bigint::BigInt::from_bytes_be(
        num_bigint::Sign::Plus,
        &amount.to_be_bytes::<32>(),
    ))
}

fn q0() -> Q {
    q(U256::ZERO)
}

/// Rounding the precompiles may do against the exact ledger, per amount: far below any design
/// error (those are fractions of an ether), far above the few wei each operation rounds.
fn close(chain: U256, exact: &Q) -> bool {
    let diff = q(chain) - exact;
    let diff = if diff < q0() { -diff } else { diff };
    diff <= q(U256::from(1_000_000_000u64))
}

/// A reference ledger written from the rules in IStaking and IDelegation, not from the
/// precompiles' arithmetic: it holds every amount as an exact rational token amount (no shares,
/// no reward index), so each rule is a line of plain arithmetic:
/// - a delegation is a token amount; a bonded slash of fraction f scales every delegation to
///   the validator (and every redelegation into it) by 1 - f;
/// - a reward credits commission, then the rest pro rata to the delegations' amounts;
/// - a slash takes `bps` of the seat's recorded stake, first from the entries created since the
///   infraction's epoch began (each cut `bps` of its initial amount, at most what is left; a
///   redelegation cut `bps` of what it is worth at its destination), the rest from bonded stake;
/// - a reporter is paid `reporterRewardBps` of what the operator itself lost;
/// - a reward for a proposer without a seat, penalties, fees and slashes are burned.
#[derive(Default)]
struct Ledger {
    wallets: std::collections::BTreeMap<Address, Q>,
    validators: std::collections::BTreeMap<Address, LedgerValidator>,
    /// Creation order (ties in the active set).
    order: Vec<Address>,
    bonded: std::collections::BTreeMap<(Address, Address), Q>,
    owed: std::collections::BTreeMap<(Address, Address), Q>,
    entries: std::collections::BTreeMap<Address, Vec<LedgerEntry>>,
    redelegations: std::collections::BTreeMap<Address, Vec<LedgerRedelegation>>,
    epoch_set: Vec<Address>,
    /// Per epoch: first block, start time, each seat's stake.
    epochs: Vec<(u64, u64, std::collections::BTreeMap<Address, Q>)>,
    /// (epoch index, validator) -> the first height it no longer held its seat (jailed).
    seat_lost: std::collections::BTreeMap<(usize, Address), u64>,
    burned: Q,
}

#[derive(Default, Clone)]
struct LedgerValidator {
    rate: u64,
    commission: Q,
    jailed: bool,
    tombstoned: bool,
    offences: usize,
    jailed_until: u64,
    missed: [bool; 10],
    filled: u64,
    penalty_due: bool,
}

#[derive(Clone)]
struct LedgerEntry {
    validator: Address,
    amount: Q,
    initial: Q,
    height: u64,
    completion: u64,
}

#[derive(Clone)]
struct LedgerRedelegation {
    src: Address,
    dst: Address,
    worth: Q,
    height: u64,
    completion: u64,
}

impl Ledger {
    fn bps(x: &Q, bps: u64) -> Q {
        x * q(U256::from(bps)) / q(U256::from(10_000))
    }

    fn wallet(&mut self, a: Address) -> &mut Q {
        self.wallets.entry(a).or_insert_with(q0)
    }

    fn bonded(&self, d: Address, v: Address) -> Q {
        self.bonded.get(&(d, v)).cloned().unwrap_or_else(q0)
    }

    fn total(&self, v: Address) -> Q {
        self.bonded
            .iter()
            .filter(|((_, x), _)| *x == v)
            .fold(q0(), |a, (_, b)| a + b)
    }

    /// Bonded candidate: not jailed, self-stake at least the minimum (100).
    fn is_bonded(&self, v: Address) -> bool {
        !self.validators[&v].jailed && self.bonded(v, v) >= q(ether(100))
    }

    fn add(&mut self, d: Address, v: Address, amount: &Q) {
        *self.bonded.entry((d, v)).or_insert_with(q0) += amount;
    }

    fn remove(&mut self, d: Address, v: Address, amount: &Q) {
        let held = self.bonded.entry((d, v)).or_insert_with(q0);
        *held -= amount;
        if *held < q0() {
            *held = q0();
        }
    }

    fn create(&mut self, v: Address, rate: u64, stake: U256) {
        self.validators.insert(
            v,
            LedgerValidator {
                rate,
                commission: q0(),
                ..Default::default()
            },
        );
        self.order.push(v);
        *self.wallet(v) -= q(stake);
        self.add(v, v, &q(stake));
    }

    fn pending(&self, d: Address, v: Address) -> Q {
        let own = if d == v {
            self.validators[&v].commission.clone()
        } else {
            q0()
        };
        self.owed.get(&(d, v)).cloned().unwrap_or_else(q0) + own
    }

    fn claim(&mut self, d: Address, v: Address) {
        let amount = self.pending(d, v);
        self.owed.remove(&(d, v));
        if d == v {
            self.validators.get_mut(&v).unwrap().commission = q0();
        }
        *self.wallet(d) += amount;
    }

    fn distribute(&mut self, v: Address, amount: U256) {
        let amount = q(amount);
        if !self.epoch_set.contains(&v) {
            self.burned += amount;
            return;
        }
        let total = self.total(v);
        let val = self.validators.get_mut(&v).unwrap();
        let commission = if total == q0() {
            amount.clone()
        } else {
            Self::bps(&amount, val.rate)
        };
        val.commission += commission.clone();
        let rest = amount - commission;
        if total == q0() {
            return;
        }
        let shares: Vec<_> = self
            .bonded
            .iter()
            .filter(|((_, x), _)| *x == v)
            .map(|(k, b)| (*k, b.clone()))
            .collect();
        for (key, b) in shares {
            *self.owed.entry(key).or_insert_with(q0) += rest.clone() * b / total.clone();
        }
    }

    fn unbond(&mut self, d: Address, v: Address, amount: U256, penalty: &Q, chain: &Chain) {
        let amount = q(amount);
        self.remove(d, v, &amount);
        self.burned += penalty.clone();
        let left = amount - penalty;
        self.entries.entry(d).or_default().push(LedgerEntry {
            validator: v,
            amount: left.clone(),
            initial: left,
            height: chain.number,
            completion: chain.timestamp + 1000,
        });
    }

    /// The revert a new entry of `d` at `v` meets: at most 7 open per pair, 64 per list.
    fn full(validators: Vec<Address>, v: Address) -> Option<IStaking::TooManyEntries> {
        let max = if validators.iter().filter(|x| **x == v).count() >= 7 {
            7
        } else if validators.len() >= 64 {
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
        let list = self
            .entries
            .get(&d)
            .map(|l| l.iter().map(|e| e.validator).collect());
        Self::full(list.unwrap_or_default(), v)
    }

    fn redelegations_full(
        &self,
        d: Address,
        src: Address,
        now: u64,
    ) -> Option<IStaking::TooManyEntries> {
        let list = self.redelegations.get(&d).map(|l| {
            l.iter()
                .filter(|r| r.completion > now)
                .map(|r| r.src)
                .collect()
        });
        Self::full(list.unwrap_or_default(), src)
    }

    fn redelegate(&mut self, d: Address, src: Address, dst: Address, amount: U256, chain: &Chain) {
        let amount = q(amount);
        self.remove(d, src, &amount);
        self.add(d, dst, &amount);
        let list = self.redelegations.entry(d).or_default();
        list.retain(|r| r.completion > chain.timestamp);
        list.push(LedgerRedelegation {
            src,
            dst,
            worth: amount,
            height: chain.number,
            completion: chain.timestamp + 1000,
        });
    }

    /// Scales the bonded stake of `v` (and what was redelegated into it) by `1 - f`.
    fn cut_bonded(&mut self, v: Address, keep: &Q) {
        for ((_, x), b) in self.bonded.iter_mut() {
            if *x == v {
                *b = b.clone() * keep;
            }
        }
        for r in self.redelegations.values_mut().flatten() {
            if r.dst == v {
                r.worth = r.worth.clone() * keep;
            }
        }
    }

    /// Slashes `bps` of `basis` from `v`; returns the total taken and the operator's own loss.
    fn slash(&mut self, v: Address, bps: u64, basis: &Q, since: u64, now: u64) -> (Q, Q) {
        let target = Self::bps(basis, bps);
        let (mut taken, mut own) = (q0(), q0());
        for (d, list) in self.entries.iter_mut() {
            for e in list.iter_mut() {
                if e.validator == v && e.completion > now && e.height >= since {
                    let cut = Self::bps(&e.initial, bps).min(e.amount.clone());
                    e.amount -= cut.clone();
                    taken += cut.clone();
                    if *d == v {
                        own += cut;
                    }
                }
            }
        }
        let mut moved_cuts = Vec::new();
        for (d, list) in self.redelegations.iter_mut() {
            for r in list.iter_mut() {
                if r.src == v && r.completion > now && r.height >= since {
                    let held = self.bonded.get(&(*d, r.dst)).cloned().unwrap_or_else(q0);
                    let cut = Self::bps(&r.worth, bps).min(held);
                    r.worth -= cut.clone();
                    moved_cuts.push((*d, r.dst, cut));
                }
            }
        }
        for (d, dst, cut) in moved_cuts {
            self.remove(d, dst, &cut);
            taken += cut;
        }
        let total = self.total(v);
        let mut bonded_cut = target - taken.clone();
        if bonded_cut < q0() {
            bonded_cut = q0();
        }
        if bonded_cut > total {
            bonded_cut = total.clone();
        }
        let before = self.bonded(v, v);
        if total > q0() {
            let keep = q(U256::from(1)) - bonded_cut.clone() / total;
            self.cut_bonded(v, &keep);
        }
        own += before - self.bonded(v, v);
        (taken + bonded_cut, own)
    }

    /// Leaves the set and jails for good.
    fn tombstone(&mut self, v: Address, number: u64) {
        let val = self.validators.get_mut(&v).unwrap();
        (val.jailed, val.tombstoned) = (true, true);
        self.leave(v, number);
    }

    /// A member jailed at block `number` holds no seat from the next block on.
    fn leave(&mut self, v: Address, number: u64) {
        if self.epoch_set.contains(&v) {
            self.epoch_set.retain(|a| *a != v);
            self.seat_lost
                .insert((self.epochs.len() - 1, v), number + 1);
        }
    }

    /// One block's uptime record; returns the members jailed for downtime.
    fn record_signers(&mut self, signers: &[Address], number: u64, now: u64) -> Vec<Address> {
        let mut jailed = Vec::new();
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
                (val.jailed, val.penalty_due, val.jailed_until) = (true, true, now + 100);
                let bps = [500, 1_000, 10_000][val.offences.min(2)];
                val.offences += 1;
                self.leave(m, number);
                let (start, _, seats) = self.epochs.last().unwrap();
                let (since, basis) = (number.saturating_sub(10).min(*start), seats[&m].clone());
                let (taken, _) = self.slash(m, bps, &basis, since, now);
                self.burned += taken;
                if self.total(m) == q0() {
                    self.tombstone(m, number);
                }
                jailed.push(m);
            }
        }
        jailed
    }

    /// The next epoch at block `number`: the top two bonded candidates by stake (ties: created
    /// first), each seat's stake fixed.
    fn next_epoch(&mut self, number: u64, time: u64) {
        let mut set: Vec<Address> = self
            .order
            .iter()
            .copied()
            .filter(|v| self.is_bonded(*v))
            .collect();
        set.sort_by_key(|v| std::cmp::Reverse(self.total(*v)));
        set.truncate(2);
        let seats = set.iter().map(|v| (*v, self.total(*v))).collect();
        self.epoch_set = set;
        self.epochs.push((number + 1, time, seats));
    }
}

#[test]
fn random_runs_match_a_reference_ledger_written_from_the_rules() {
    let mut totals = [0usize; 4];
    for seed in 1..=6 {
        let counts = ledger_run(seed, 1_000);
        for (t, c) in totals.iter_mut().zip(counts) {
            *t += c;
        }
    }
    let [downtime, double_signs, self_reports, burned_rewards] = totals;
    println!(
        "{downtime} downtime slashes, {double_signs} double signs ({self_reports} self-reported), {burned_rewards} rewards burned"
    );
    assert!(downtime > 0 && double_signs > 0 && self_reports > 0 && burned_rewards > 0);
}

/// `steps` random operations of five validators (two of equal stake, one at the minimum
/// self-stake, two seats) and six delegators, with a non-zero base fee, checked against the [`Ledger`] after every step;
/// returns how many downtime slashes, double signs, self-reports and burned rewards happened.
fn ledger_run(seed: u64, steps: usize) -> [usize; 4] {
    let mut chain = Chain::new(&[]);
    chain.base_fee = 7_000_000_000;
    let mut state = seed;
    let mut rand = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let validators: Vec<Address> = (1..=5u8).map(addr).collect();
    let users: Vec<Address> = (1..=11u8).map(addr).collect();
    let mut ledger = Ledger::default();
    for u in &users {
        *ledger.wallet(*u) = q(chain.balance(*u));
    }
    ledger.epochs.push((1, chain.timestamp, Default::default()));
    let genesis_supply = {
        let all: Vec<Address> = (1..=20u8)
            .map(addr)
            .chain([STAKING_ADDRESS, DELEGATION_ADDRESS])
            .collect();
        all.iter().fold(U256::ZERO, |a, x| a + chain.balance(*x)) - chain.minted
    };
    let fee = |chain: &Chain| q(chain.last_fee);
    for (i, v) in validators.iter().enumerate() {
        let (rate, stake) = ([0, 500, 500, 2_000, 5_000][i], [300, 200, 200, 100, 400][i]);
        chain
            .create(*v, i as u8 + 1, ether(stake), rate as u16)
            .ok();
        ledger.create(*v, rate, ether(stake));
        *ledger.wallet(*v) -= fee(&chain);
    }
    ledger.next_epoch(chain.number, chain.timestamp);
    assert_eq!(chain.next_epoch(), ledger.epoch_set);
    let mut counts = [0usize; 4];
    for step in 0..steps {
        chain.number += 1;
        chain.timestamp += 1 + rand(3);
        let user = users[rand(users.len() as u64) as usize];
        let v = validators[rand(5) as usize];
        let other = validators[rand(5) as usize];
        let worth = |chain: &mut Chain, d, v| {
            chain.view(
                DELEGATION_ADDRESS,
                IDelegation::delegationCall {
                    delegator: d,
                    validator: v,
                },
            )
        };
        match rand(20) {
            0..=3 => {
                let amount = ether(1 + rand(800));
                let outcome = chain.delegate(user, v, amount);
                *ledger.wallet(user) -= fee(&chain);
                if ledger.is_bonded(v) {
                    outcome.ok();
                    *ledger.wallet(user) -= q(amount);
                    ledger.add(user, v, &q(amount));
                } else {
                    outcome.revert(IDelegation::NotValidator { validator: v });
                }
            }
            4 | 5 => {
                let have = worth(&mut chain, user, v);
                if user == v || have.is_zero() {
                    continue;
                }
                let amount = have / U256::from(2) + U256::from(1);
                let outcome = chain.undelegate(user, v, amount);
                *ledger.wallet(user) -= fee(&chain);
                match ledger.unbonding_full(user, v) {
                    Some(full) => outcome.revert(full),
                    None => {
                        outcome.ok();
                        ledger.unbond(user, v, amount, &q0(), &chain);
                    }
                }
            }
            6 => {
                let have = worth(&mut chain, user, v);
                if user == v || v == other || have.is_zero() {
                    continue;
                }
                let amount = have / U256::from(3) + U256::from(1);
                let outcome = chain.call(
                    user,
                    DELEGATION_ADDRESS,
                    U256::ZERO,
                    IDelegation::redelegateCall {
                        srcValidator: v,
                        dstValidator: other,
                        amount,
                    }
                    .abi_encode(),
                );
                *ledger.wallet(user) -= fee(&chain);
                let now = chain.timestamp;
                let hop = ledger
                    .redelegations
                    .get(&user)
                    .is_some_and(|l| l.iter().any(|r| r.dst == v && r.completion > now));
                if !ledger.is_bonded(other) {
                    outcome.revert(IDelegation::NotValidator { validator: other });
                } else if hop {
                    outcome.revert(IDelegation::TransitiveRedelegation { validator: v });
                } else if let Some(full) = ledger.redelegations_full(user, v, now) {
                    outcome.revert(full);
                } else {
                    outcome.ok();
                    ledger.redelegate(user, v, other, amount, &chain);
                }
            }
            7 => {
                // Claims: the chain pays what is owed, rounded down.
                let pending = chain.view(
                    DELEGATION_ADDRESS,
                    IDelegation::pendingRewardsCall {
                        delegator: user,
                        validator: v,
                    },
                );
                let outcome = chain.call(
                    user,
                    DELEGATION_ADDRESS,
                    U256::ZERO,
                    IDelegation::claimRewardsCall { validator: v }.abi_encode(),
                );
                *ledger.wallet(user) -= fee(&chain);
                if pending.is_zero() {
                    outcome.revert(IDelegation::NothingToWithdraw {});
                } else {
                    outcome.ok();
                    ledger.claim(user, v);
                }
            }
            8 => {
                chain.timestamp += rand(600);
                let now = chain.timestamp;
                let outcome = chain.call(
                    user,
                    DELEGATION_ADDRESS,
                    U256::ZERO,
                    IDelegation::withdrawUnbondedCall {}.abi_encode(),
                );
                *ledger.wallet(user) -= fee(&chain);
                let list = ledger.entries.entry(user).or_default();
                let matured: Vec<LedgerEntry> = list
                    .iter()
                    .filter(|e| e.completion <= now)
                    .cloned()
                    .collect();
                list.retain(|e| e.completion > now);
                if matured.is_empty() {
                    outcome.revert(IDelegation::NothingToWithdraw {});
                } else {
                    outcome.ok();
                    let paid = matured.into_iter().fold(q0(), |a, e| a + e.amount);
                    *ledger.wallet(user) += paid;
                }
            }
            9 if validators.contains(&user) => {
                // Self-stake in or out; out pays the penalty while jailed or not yet cleared.
                let val = ledger.validators[&user].clone();
                if rand(2) == 0 {
                    let amount = ether(1 + rand(100));
                    let outcome = chain.call(
                        user,
                        STAKING_ADDRESS,
                        amount,
                        IStaking::addStakeCall {}.abi_encode(),
                    );
                    *ledger.wallet(user) -= fee(&chain);
                    if val.tombstoned {
                        outcome.revert(IStaking::Tombstoned { operator: user });
                    } else {
                        outcome.ok();
                        *ledger.wallet(user) -= q(amount);
                        ledger.add(user, user, &q(amount));
                    }
                } else {
                    let own = worth(&mut chain, user, user);
                    if own.is_zero() {
                        continue;
                    }
                    let amount = own / U256::from(3) + U256::from(1);
                    let outcome = chain.unstake(user, amount);
                    *ledger.wallet(user) -= fee(&chain);
                    if let Some(full) = ledger.unbonding_full(user, user) {
                        outcome.revert(full);
                        continue;
                    }
                    outcome.ok();
                    let penalty = if val.jailed || val.penalty_due {
                        Ledger::bps(&q(amount), 1_000)
                    } else {
                        q0()
                    };
                    ledger.unbond(user, user, amount, &penalty, &chain);
                }
            }
            10 | 11 => {
                // One block's signers: each seat signs with 85% probability, `v` is offline.
                let signers: Vec<Address> = ledger
                    .epoch_set
                    .iter()
                    .copied()
                    .filter(|m| *m != v && rand(100) < 85)
                    .collect();
                let logs = chain.record(signers.clone());
                chain.number -= 1;
                let jailed: Vec<Address> = logs
                    .iter()
                    .filter_map(|l| IStaking::ValidatorJailed::decode_log_data(&l.data).ok())
                    .map(|e| e.operator)
                    .collect();
                let expected = ledger.record_signers(&signers, chain.number, chain.timestamp);
                assert_eq!(jailed, expected, "seed {seed} step {step}: jailed");
                counts[0] += jailed.len();
            }
            12 => {
                let val = ledger.validators[&v].clone();
                if !val.jailed {
                    continue;
                }
                let fee_due = if chain.timestamp < val.jailed_until {
                    ether(10)
                } else {
                    U256::ZERO
                };
                let outcome = chain.call(
                    v,
                    STAKING_ADDRESS,
                    fee_due,
                    IStaking::unjailCall {}.abi_encode(),
                );
                *ledger.wallet(v) -= fee(&chain);
                if val.tombstoned {
                    outcome.revert(IStaking::Tombstoned { operator: v });
                } else {
                    outcome.ok();
                    *ledger.wallet(v) -= q(fee_due);
                    ledger.burned += q(fee_due);
                    ledger.validators.get_mut(&v).unwrap().jailed = false;
                }
            }
            13 => {
                ledger.next_epoch(chain.number, chain.timestamp);
                assert_eq!(
                    chain.next_epoch(),
                    ledger.epoch_set,
                    "seed {seed} step {step}: active set"
                );
            }
            14 if rand(2) == 0 && !ledger.validators[&v].tombstoned => {
                // Double-sign evidence for a recent height, sometimes reported by the offender.
                let height = chain.number.saturating_sub(rand(15)).max(1);
                let reporter = if rand(2) == 0 { v } else { user };
                let outcome = chain.evidence(reporter, v.0[0], height);
                *ledger.wallet(reporter) -= fee(&chain);
                let index = ledger.epochs.iter().rposition(|e| e.0 <= height).unwrap();
                let (start, time, seats) = ledger.epochs[index].clone();
                let seated = ledger
                    .seat_lost
                    .get(&(index, v))
                    .is_none_or(|lost| height < *lost);
                let seat = match seats.get(&v) {
                    Some(seat) if seated => seat.clone(),
                    _ => q0(),
                };
                if chain.timestamp - time >= 100 {
                    outcome.revert(IStaking::EvidenceOutOfRange {
                        height,
                        currentHeight: chain.number,
                    });
                    continue;
                }
                if seat == q0() {
                    outcome.revert(IStaking::NotInActiveSet {
                        operator: v,
                        height,
                    });
                    continue;
                }
                let (_, logs) = outcome.ok();
                let (taken, own) = ledger.slash(v, 500, &seat, start, chain.timestamp);
                // The reporter gets 10% of what the offender itself lost.
                let reward = Ledger::bps(&own, 1_000);
                let slashed = IStaking::ValidatorSlashed::decode_log_data(&logs[0].data).unwrap();
                let reported =
                    IStaking::DoubleSignReported::decode_log_data(&logs[1].data).unwrap();
                assert!(
                    close(slashed.amount, &taken),
                    "seed {seed} step {step}: slash {} vs {taken}",
                    slashed.amount
                );
                assert!(
                    close(reported.reward, &reward),
                    "seed {seed} step {step}: reward {} vs {reward}",
                    reported.reward
                );
                *ledger.wallet(reporter) += reward.clone();
                ledger.burned += taken - reward;
                ledger.tombstone(v, chain.number);
                counts[1] += 1;
                counts[2] += usize::from(reporter == v);
            }
            _ => {
                let amount = U256::from(rand(1 << 60) + 1);
                counts[3] += usize::from(!ledger.epoch_set.contains(&v));
                chain.distribute(v, amount);
                ledger.distribute(v, amount);
            }
        }
        // Exact, with no model: supply and escrow.
        let all: Vec<Address> = (1..=20u8)
            .map(addr)
            .chain([STAKING_ADDRESS, DELEGATION_ADDRESS])
            .collect();
        let balances = all.iter().fold(U256::ZERO, |a, x| a + chain.balance(*x));
        let burned = chain.view(STAKING_ADDRESS, IStaking::totalBurnedCall {});
        assert_eq!(
            balances + burned + chain.fees_burned,
            genesis_supply + chain.minted,
            "seed {seed} step {step}: supply"
        );
        let bonded = chain.view(STAKING_ADDRESS, IStaking::totalStakeCall {});
        let unbonding = chain.view(STAKING_ADDRESS, IStaking::totalUnbondingCall {});
        assert_eq!(
            chain.balance(DELEGATION_ADDRESS),
            bonded + unbonding,
            "seed {seed} step {step}: escrow"
        );
        // Against the ledger, to rounding: every balance, delegation, reward, entry and total.
        let at = format!("seed {seed} step {step}");
        for u in &users {
            assert!(
                close(chain.balance(*u), &ledger.wallets[u]),
                "{at}: wallet of {u}: {} vs {}",
                chain.balance(*u),
                ledger.wallets[u]
            );
        }
        let mut owed = U256::ZERO;
        for d in &users {
            for v in &validators {
                let on_chain = worth(&mut chain, *d, *v);
                assert!(
                    close(on_chain, &ledger.bonded(*d, *v)),
                    "{at}: delegation {d} at {v}: {on_chain} vs {}",
                    ledger.bonded(*d, *v)
                );
                let pending = chain.view(
                    DELEGATION_ADDRESS,
                    IDelegation::pendingRewardsCall {
                        delegator: *d,
                        validator: *v,
                    },
                );
                assert!(
                    close(pending, &ledger.pending(*d, *v)),
                    "{at}: rewards {d} at {v}: {pending} vs {}",
                    ledger.pending(*d, *v)
                );
                owed += pending;
            }
            let mut on_chain: Vec<(Address, u64, U256)> = chain
                .view(
                    DELEGATION_ADDRESS,
                    IDelegation::unbondingOfCall { delegator: *d },
                )
                .iter()
                .map(|e| (e.validator, e.creationHeight, e.amount))
                .collect();
            let mut expected: Vec<(Address, u64, Q)> = ledger
                .entries
                .get(d)
                .map(|l| {
                    l.iter()
                        .map(|e| (e.validator, e.height, e.amount.clone()))
                        .collect()
                })
                .unwrap_or_default();
            on_chain.sort_by_key(|e| (e.0, e.1));
            expected.sort_by_key(|e| (e.0, e.1));
            assert_eq!(on_chain.len(), expected.len(), "{at}: entries of {d}");
            for (c, e) in on_chain.iter().zip(&expected) {
                assert!(
                    c.0 == e.0 && c.1 == e.1 && close(c.2, &e.2),
                    "{at}: entry of {d}: {c:?} vs {e:?}"
                );
            }
        }
        assert!(
            chain.balance(STAKING_ADDRESS) >= owed,
            "{at}: the pool covers what is owed"
        );
        for v in &validators {
            let info = chain.info(*v);
            assert!(
                close(info.totalStake, &ledger.total(*v)),
                "{at}: stake of {v}"
            );
            assert_eq!(
                info.tombstoned, ledger.validators[v].tombstoned,
                "{at}: tombstone of {v}"
            );
        }
        assert!(
            close(burned, &ledger.burned),
            "{at}: burned {burned} vs {}",
            ledger.burned
        );
        assert_eq!(
            chain.view(STAKING_ADDRESS, IStaking::activeSetCall {}),
            ledger.epoch_set,
            "{at}: active set"
        );
    }
    counts
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
    // 10% of what the operator itself lost: 10 of its 200.
    let reward = ether(1);
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
fn a_slash_of_many_delegators_runs_in_bounded_steps_and_nothing_escapes_it() {
    // 300 delegators with an unbonding entry each since the boundary. The slash walks 32 of them
    // in the evidence call (charged to the reporter, so bounded) and 32 per block after it.
    let mut chain = Chain::new(&[]);
    chain.create(addr(2), 2, ether(100), 0).ok();
    chain.create(addr(3), 3, ether(100), 0).ok();
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
    // One of them also moves half of what is left to addr(3).
    let half = ether(1) / U256::from(2);
    chain
        .call(
            delegators[0],
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::redelegateCall {
                srcValidator: addr(2),
                dstValidator: addr(3),
                amount: half,
            }
            .abi_encode(),
        )
        .ok();
    let escrow_holds_everything = |chain: &mut Chain| {
        let slashing = chain
            .db
            .storage_ref(STAKING_ADDRESS, U256::from(41))
            .unwrap();
        chain.view(STAKING_ADDRESS, IStaking::totalStakeCall {})
            + chain.view(STAKING_ADDRESS, IStaking::totalUnbondingCall {})
            + slashing
            == chain.balance(DELEGATION_ADDRESS)
    };
    let (_, logs) = chain.evidence(addr(7), 2, 10).ok();
    println!(
        "evidence starting a slash of 300 delegators' entries: gas {}",
        chain.last_gas
    );
    assert!(
        logs.iter()
            .all(|l| l.topics()[0] != IStaking::ValidatorSlashed::SIGNATURE_HASH),
        "not finished in one call"
    );
    assert!(escrow_holds_everything(&mut chain));
    // Until it finishes, stake in its reach stays put.
    chain
        .undelegate(delegators[299], addr(2), ether(1))
        .revert(IStaking::SlashPending { operator: addr(2) });
    chain
        .call(
            delegators[299],
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::cancelUnbondingCall {
                validator: addr(2),
                amount: ether(1),
                creationHeight: 10,
            }
            .abi_encode(),
        )
        .revert(IStaking::SlashPending { operator: addr(2) });
    // Nor the stake redelegated from the offender: the slash may still cut it.
    chain
        .undelegate(delegators[0], addr(3), half)
        .revert(IStaking::SlashPending { operator: addr(2) });
    // Entries maturing meanwhile stay in reach, and cannot be withdrawn until it ends.
    chain.timestamp += 1_000;
    let withdraw = IDelegation::withdrawUnbondedCall {}.abi_encode();
    chain
        .call(
            delegators[1],
            DELEGATION_ADDRESS,
            U256::ZERO,
            withdraw.clone(),
        )
        .revert(IDelegation::NothingToWithdraw {});
    let mut blocks = 0;
    let slashed = loop {
        blocks += 1;
        assert!(blocks <= 9, "268 delegators left take 9 blocks of 32");
        let logs = chain.record(vec![]);
        assert!(escrow_holds_everything(&mut chain));
        if let Some(event) = logs
            .iter()
            .find_map(|l| IStaking::ValidatorSlashed::decode_log_data(&l.data).ok())
        {
            break event;
        }
    };
    assert_eq!(blocks, 9);
    // 5% of the seat's 700: 15 from the 300 unbonding and 0.025 from the redelegation, the
    // other 19.975 from the 399.5 bonded.
    assert_eq!(slashed.amount, ether(35));
    assert_eq!(chain.unbonding(delegators[0]), ether(95) / U256::from(100));
    assert_eq!(
        chain.info(addr(2)).totalStake,
        ether(379_525) / U256::from(1000)
    );
    assert_eq!(
        chain.view(
            DELEGATION_ADDRESS,
            IDelegation::delegationCall {
                delegator: delegators[0],
                validator: addr(3),
            },
        ),
        half * U256::from(95) / U256::from(100)
    );
    chain
        .undelegate(delegators[0], addr(3), ether(1) / U256::from(4))
        .ok();
    let (out, _) = chain
        .call(delegators[1], DELEGATION_ADDRESS, U256::ZERO, withdraw)
        .ok();
    assert_eq!(
        IDelegation::withdrawUnbondedCall::abi_decode_returns(&out).unwrap(),
        ether(95) / U256::from(100)
    );
    let left = chain.view(
        DELEGATION_ADDRESS,
        IDelegation::delegationCall {
            delegator: delegators[299],
            validator: addr(2),
        },
    );
    assert_eq!(left, ether(95) / U256::from(100));
    chain.undelegate(delegators[299], addr(2), left).ok();
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

    /// Withdraws `delegator`'s matured entries; returns the amount paid.
    fn withdraw(&mut self, delegator: Address) -> U256 {
        let (out, _) = self
            .call(
                delegator,
                DELEGATION_ADDRESS,
                U256::ZERO,
                IDelegation::withdrawUnbondedCall {}.abi_encode(),
            )
            .ok();
        IDelegation::withdrawUnbondedCall::abi_decode_returns(&out).unwrap()
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
    // The reporter gets 10% of what the offender itself lost (5), not 10% of the slash (50):
    // reporting oneself recovers a tenth of one's own loss and none of the delegators'.
    assert_eq!(reported.reward, ether(5) / U256::from(10));
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
        ether(5) / U256::from(10),
        "10% of the 5% of its remaining 100 self-stake"
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
    // Votes it signs after losing its seat are no evidence: they carried no weight.
    chain
        .evidence(addr(7), 2, chain.number)
        .revert(IStaking::NotInActiveSet {
            operator: addr(2),
            height: chain.number,
        });
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
    let mut last_entry_gas = 0;
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
                last_entry_gas = chain.last_gas;
            }
        }
    }
    println!("undelegate as the 64th entry: gas {last_entry_gas}");
    chain
        .undelegate(addr(20), addr(10), ether(1))
        .revert(IStaking::TooManyEntries {
            validator: addr(10),
            max: U256::from(64),
        });
    // Withdrawing all 64 at the limit (within the call's 5M gas); it frees the counts.
    chain.timestamp += 1_000;
    assert_eq!(chain.withdraw(addr(20)), ether(64));
    println!("withdrawUnbonded of 64 entries: gas {}", chain.last_gas);
    chain.undelegate(addr(20), addr(1), ether(1)).ok();
    // Seven open redelegations per (delegator, source).
    chain.delegate(addr(19), addr(1), ether(20)).ok();
    let redelegate = |chain: &mut Chain, dst: Address| {
        chain.call(
            addr(19),
            DELEGATION_ADDRESS,
            U256::ZERO,
            IDelegation::redelegateCall {
                srcValidator: addr(1),
                dstValidator: dst,
                amount: ether(1),
            }
            .abi_encode(),
        )
    };
    for dst in &validators[1..8] {
        redelegate(&mut chain, *dst).ok();
    }
    println!("redelegate as the 7th entry: gas {}", chain.last_gas);
    redelegate(&mut chain, addr(9)).revert(IStaking::TooManyEntries {
        validator: addr(1),
        max: U256::from(7),
    });
    // Completed redelegations free their slots.
    chain.timestamp += 1_000;
    redelegate(&mut chain, addr(9)).ok();
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

#[test]
fn epoch_boundaries_walk_only_the_bonded_candidates() {
    let mut chain = Chain::new(&[]);
    for i in 1..=4u8 {
        chain.create(addr(i), i, ether(100 + u64::from(i)), 0).ok();
    }
    let candidates = |chain: &Chain| {
        chain
            .db
            .storage_ref(STAKING_ADDRESS, U256::from(38))
            .unwrap()
    };
    assert_eq!(candidates(&chain), U256::from(4));
    // Leaving (all self-stake unbonded) or being jailed drops a validator from the walk; the
    // registry of every validator (the paginated `validators` view) keeps it.
    chain.unstake(addr(2), ether(102)).ok();
    assert_eq!(candidates(&chain), U256::from(3));
    assert_eq!(chain.next_epoch(), vec![addr(4), addr(3)]);
    assert_eq!(
        chain.view(
            STAKING_ADDRESS,
            IStaking::validatorsCall {
                status: 0,
                offset: U256::ZERO,
                limit: U256::from(10)
            }
        ),
        vec![addr(1), addr(2), addr(3), addr(4)]
    );
    // Coming back joins again; equal stakes keep creation order.
    chain.add_stake(addr(2), ether(104));
    chain.add_stake(addr(3), ether(1));
    assert_eq!(candidates(&chain), U256::from(4));
    assert_eq!(
        chain.next_epoch(),
        vec![addr(2), addr(3)],
        "104 each: created first"
    );
}
