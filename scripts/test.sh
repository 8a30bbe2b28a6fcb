#!/usr/bin/env bash
# All tests, as the README names them and CI runs them: installs what is missing first
# (scripts/install-test-deps.sh), then runs every test of every feature.
#   scripts/test.sh [cargo test arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
exec cargo test --all-features --locked "$@"
