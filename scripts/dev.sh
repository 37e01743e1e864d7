#!/usr/bin/env bash
# Starts a dev chain with funded accounts on a clean machine: installs what the build needs
# (scripts/setup.sh), then runs `computechain node --dev` with any extra flags given.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
exec cargo run --bin computechain -- node --dev "$@"
