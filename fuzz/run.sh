#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 5) with the seeds and the dictionary.
#   fuzz/run.sh 600          # the ten-minute runs recorded in SECURITY.md
#   SANITIZER=address fuzz/run.sh 600   # with ASan (needs RUSTC_BOOTSTRAP=1 on stable)
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-5}
sanitizer=${SANITIZER:-none}
[ "$sanitizer" = none ] || export RUSTC_BOOTSTRAP=1
cargo fuzz build -s "$sanitizer"
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  cargo fuzz run -s "$sanitizer" "$target" "corpus/$target" "seeds/$target" -- \
    -dict=dict/hookverify.dict -max_total_time="$seconds" -print_final_stats=1 2>&1 \
    | grep -E '^(Done|stat::number_of_executed_units|==|SUMMARY)|panicked' || true
  # A crash leaves an artifact and a non-zero exit above; fail loudly either way.
  if ls "artifacts/$target"/crash-* >/dev/null 2>&1; then
    echo "fuzz target $target found a crash: see fuzz/artifacts/$target" >&2
    exit 1
  fi
done
