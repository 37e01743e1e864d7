#!/usr/bin/env bash
# The test command: installs what is missing, then runs every suite (cargo unit and end-to-end
# tests, forge tests). Works on a clean machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.tools/bin:$PATH"
echo "== forge build + forge test"
forge build
forge test
echo "== cargo build"
cargo build --workspace --all-targets
echo "== cargo test (unit + end-to-end)"
cargo test --workspace -- --test-threads 2
