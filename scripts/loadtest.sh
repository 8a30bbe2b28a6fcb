#!/usr/bin/env bash
# Load test on loopback only: a bare axum handler that reads the body, the same handler behind
# VerifyLayer, and `hookverify serve`, with wrk (Debian package `wrk`). Bounded: DURATION
# seconds per run (default 4, so that the 250,000 pre-signed deliveries last: every request is a
# fresh delivery). Each server first gets a 3 s warm-up pass of other fresh deliveries, so that the
# measured pass sees it in steady state: its memory store (100,000 entries, serve's default) full
# and evicting, its heap grown, as in a long-running receiver, rather than faulting in new pages.
#   scripts/loadtest.sh [DURATION] [CONNECTIONS] [BODY_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-4}
connections=${2:-32}
size=${3:-1024}
secret=whsec_loadtest
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

cargo build --release --features cli --bin hookverify --example bare_receiver -q
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() {
  local name=$1 pid=$2 port=$3
  # Pools large enough that both passes see fresh deliveries throughout (ids never repeat).
  python3 scripts/wrk_requests.py "$secret" 120000 "$size" "$work/warmup.lua" 0
  python3 scripts/wrk_requests.py "$secret" 250000 "$size" "$work/requests.lua" 10000000
  wrk -t1 -c"$connections" -d3s -s "$work/warmup.lua" "http://127.0.0.1:$port/" >"$work/$name.warmup"
  local before after
  before=$(cpu_ticks "$pid")
  wrk -t1 -c"$connections" -d"${duration}s" --latency -s "$work/requests.lua" \
    "http://127.0.0.1:$port/" | tee "$work/$name.txt"
  after=$(cpu_ticks "$pid")
  if grep -q "Non-2xx" "$work/$name.txt" "$work/$name.warmup"; then
    echo "$name: some answers were not 2xx: the measurement is void" >&2
    exit 1
  fi
  local requests
  requests=$(awk '/requests in/ {print $1}' "$work/$name.txt")
  awk -v t=$((after - before)) -v r="$requests" -v hz="$(getconf CLK_TCK)" -v n="$name" \
    'BEGIN { printf "%s: %.1f us CPU per request (server process)\n", n, t / hz / r * 1e6 }'
}

./target/release/hookverify serve --addr 127.0.0.1:18787 --secret "load=$secret" \
  >/dev/null 2>"$work/serve.log" &
serve_pid=$!
./target/release/examples/bare_receiver 127.0.0.1:18788 >/dev/null 2>&1 &
bare_pid=$!
./target/release/examples/bare_receiver 127.0.0.1:18789 --layer "$secret" >/dev/null 2>&1 &
layer_pid=$!
for port in 18787 18788 18789; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done

echo "== bare axum handler (reads the body) =="
run bare "$bare_pid" 18788
echo "== the same handler behind VerifyLayer (verify + memory-store dedupe) =="
run layer "$layer_pid" 18789
echo "== hookverify serve (verify + dedupe + one JSON line per delivery) =="
run serve "$serve_pid" 18787
