#!/usr/bin/env bash
# The test command: installs what is missing, then runs every suite (forge tests, cargo unit and
# end-to-end tests) and closes with one summary line over all of them. Works on a clean machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.tools/bin:$PATH"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "== forge build + forge test"
forge build
forge test 2>&1 | tee -a "$log"
echo "== cargo build"
cargo build --workspace --all-targets
echo "== cargo test (unit + end-to-end)"
cargo test --workspace -- --test-threads 2 2>&1 | tee -a "$log"
# forge: "N tests passed, M failed"; cargo: "test result: ok. N passed; M failed; ...".
awk '
  /tests passed, [0-9]+ failed/ { for (i = 1; i <= NF; i++) { if ($i == "tests" && $(i+1) ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;/) p += $(i-1); if ($i ~ /^failed;/) f += $(i-1) } }
  END { printf "tests: %d passed, %d failed\n", p, f; exit (f > 0) }
' "$log"
