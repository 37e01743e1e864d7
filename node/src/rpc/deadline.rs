//! The deadline of an RPC call's execution (geth's `--rpc.evmtimeout`): an inspector that ends
//! the whole transaction once the time is up.

use revm::{
    Inspector,
    context::{ContextError, ContextTr},
    interpreter::{InstructionResult, Interpreter},
};
use std::time::{Duration, Instant};

/// The error a call that ran out of time ends with (`EVMError::Custom`).
const TIMED_OUT: &str = "execution aborted: timeout";

/// Instructions run between two looks at the clock.
const STEPS_PER_CHECK: u32 = 1024;

/// Stops execution once `at` has passed. Halting the frame alone would let its caller go on, so
/// the context's error is set too: revm then unwinds every frame and the transaction fails with
/// [`TIMED_OUT`], which estimation cannot mistake for running out of gas.
#[derive(Debug)]
pub(crate) struct Deadline {
    at: Option<Instant>,
    steps: u32,
    expired: bool,
}

impl Deadline {
    /// A deadline `timeout` from now; none for a zero `timeout`.
    pub(crate) fn after(timeout: Duration) -> Self {
        Self {
            at: (!timeout.is_zero()).then(|| Instant::now() + timeout),
            steps: 0,
            expired: false,
        }
    }

    /// Whether the time is up (checked now).
    pub(crate) fn expired(&mut self) -> bool {
        self.expired = self.expired || self.at.is_some_and(|at| Instant::now() >= at);
        self.expired
    }
}

impl<CTX: ContextTr> Inspector<CTX> for Deadline {
    fn step(&mut self, interp: &mut Interpreter, context: &mut CTX) {
        self.steps = self.steps.wrapping_add(1);
        if !self.expired && !self.steps.is_multiple_of(STEPS_PER_CHECK) {
            return;
        }
        if self.expired() {
            *context.error() = Err(ContextError::Custom(TIMED_OUT.into()));
            interp.halt(InstructionResult::OutOfGas);
        }
    }
}
