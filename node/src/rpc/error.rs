//! JSON-RPC error objects with geth's codes and messages.

use alloy::primitives::Bytes;
use jsonrpsee::types::{ErrorObjectOwned, error::INVALID_PARAMS_CODE};

/// Result of an RPC handler.
pub(crate) type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// geth's generic server error code.
pub(crate) const SERVER_ERROR: i32 = -32000;
/// Code of a reverted call, with the revert data in `data`.
pub(crate) const EXECUTION_REVERTED: i32 = 3;

/// `-32602`: the parameters are wrong.
pub(crate) fn invalid_params(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(INVALID_PARAMS_CODE, msg.into(), None::<()>)
}

/// `-32000` with a message (geth's code for pool and execution errors).
pub(crate) fn server_error(msg: impl ToString) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(SERVER_ERROR, msg.to_string(), None::<()>)
}

/// `-32603`: something failed inside the node.
pub(crate) fn internal(err: impl std::fmt::Display) -> ErrorObjectOwned {
    tracing::warn!(target: "rpc", %err, "internal error");
    ErrorObjectOwned::owned(-32603, format!("internal error: {err}"), None::<()>)
}

/// A reverted execution, as geth reports it: code 3, `execution reverted: <reason>` when the data
/// is `Error(string)` or `Panic(uint256)`, and the raw revert data.
pub(crate) fn reverted(output: Bytes) -> ErrorObjectOwned {
    use alloy::sol_types::{Panic, Revert, SolError};
    let message = if let Ok(revert) = Revert::abi_decode(&output) {
        format!("execution reverted: {}", revert.reason)
    } else if let Ok(panic) = Panic::abi_decode(&output) {
        format!("execution reverted: {panic}")
    } else {
        "execution reverted".to_string()
    };
    ErrorObjectOwned::owned(EXECUTION_REVERTED, message, Some(output))
}

/// geth's answer for a block it does not have.
pub(crate) fn header_not_found() -> ErrorObjectOwned {
    server_error("header not found")
}
