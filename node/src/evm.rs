//! The EVM factory: the one place where precompiles are registered. Block building, `eth_call`
//! and `eth_estimateGas` all create their EVMs here, so a precompile added here is visible to all
//! of them alike.

use alloy_evm::{
    EvmEnv, EvmFactory,
    eth::{EthEvm, EthEvmBuilder, EthEvmContext},
    precompiles::PrecompilesMap,
};
use computechain_precompiles::SystemCalls;
use revm::{
    Inspector,
    context::{
        BlockEnv, TxEnv,
        result::{EVMError, HaltReason},
    },
    context_interface::result::InvalidTransaction,
    database_interface::DBErrorMarker,
    inspector::NoOpInspector,
    precompile::{PrecompileSpecId, Precompiles},
    primitives::hardfork::SpecId,
};

/// Creates ComputeChain EVMs: Ethereum's EVM with ComputeChain's precompile set.
#[derive(Debug, Clone, Copy)]
pub struct ComputeEvmFactory {
    system_calls: SystemCalls,
}

impl ComputeEvmFactory {
    /// EVMs that build blocks: the protocol's system calls are honoured.
    pub const fn for_blocks() -> Self {
        Self {
            system_calls: SystemCalls::Honoured,
        }
    }

    /// EVMs that serve RPC calls, whose caller is whatever the request names: the system
    /// address has no privileges there.
    pub const fn for_calls() -> Self {
        Self {
            system_calls: SystemCalls::Refused,
        }
    }
}

/// The precompiles active under `spec`: Ethereum's, plus ComputeChain's native ones (staking at
/// `0x…1000`, delegation at `0x…1001`; `0x…1002`/`0x…1003` reserved for proof-of-compute and
/// attestation).
pub fn precompiles(spec: SpecId, system_calls: SystemCalls) -> PrecompilesMap {
    let mut map =
        PrecompilesMap::from_static(Precompiles::new(PrecompileSpecId::from_spec_id(spec)));
    computechain_precompiles::register(&mut map, system_calls);
    map
}

impl EvmFactory for ComputeEvmFactory {
    type Evm<DB: alloy_evm::Database, I: Inspector<EthEvmContext<DB>>> =
        EthEvm<DB, I, PrecompilesMap>;
    type Context<DB: alloy_evm::Database> = EthEvmContext<DB>;
    type Tx = TxEnv;
    type Error<DBError: DBErrorMarker> = EVMError<DBError, InvalidTransaction>;
    type HaltReason = HaltReason;
    type Spec = SpecId;
    type BlockEnv = BlockEnv;
    type Precompiles = PrecompilesMap;

    fn create_evm<DB: alloy_evm::Database>(
        &self,
        db: DB,
        input: EvmEnv,
    ) -> Self::Evm<DB, NoOpInspector> {
        let map = precompiles(input.cfg_env.spec, self.system_calls);
        EthEvmBuilder::new(db, input).precompiles(map).build()
    }

    fn create_evm_with_inspector<DB: alloy_evm::Database, I: Inspector<Self::Context<DB>>>(
        &self,
        db: DB,
        input: EvmEnv,
        inspector: I,
    ) -> Self::Evm<DB, I> {
        let map = precompiles(input.cfg_env.spec, self.system_calls);
        EthEvmBuilder::new(db, input)
            .precompiles(map)
            .activate_inspector(inspector)
            .build()
    }
}
