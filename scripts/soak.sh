#!/usr/bin/env bash
# Soak: "nothing lost, nothing twice, memory bounded" for `hookverify serve`, on each store.
#   scripts/soak.sh [SECONDS] [RATE]          (defaults 60 s, 200 deliveries/s)
# For each store (memory, then a throwaway Redis, then a throwaway PostgreSQL): starts serve on
# a free loopback port with stdout to a file, runs the soak example (examples/soak.rs: fresh
# deliveries at RATE for SECONDS, their retries, replays under fresh ids, SLOW_CLIENTS
# connections trickling a body that never ends), samples serve's VmRSS every second, stops
# serve with SIGTERM, then checks serve's stdout against what the provider saw acknowledged:
# every acknowledged id handled exactly once, no replay id handled, no id handled twice, no id
# that was never sent. One line per store; exits non-zero if any check fails on any store.
# Environment:
#   SLOW_CLIENTS    slow connections held open at once (default 400)
#   STORES          which stores, in order (default "memory redis postgres")
#   HOOKVERIFY_BIN  a serve binary to test instead of building this tree's (then only the
#                   soak example is built)
#   SOAK_OUT        keep each store's files (serve's stdout and stderr, sent.txt, replays.txt,
#                   summary.json, rss.txt) in SOAK_OUT/STORE instead of a temporary folder
# Loopback only; bounded in time (the load runs SECONDS, then at most 90 s for retries and
# stragglers); the servers it started and its temporary folder are removed on exit.
# Needs redis-server and PostgreSQL (Debian packages redis-server, postgresql) for those stores.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
rate=${2:-200}
slow=${SLOW_CLIENTS:-400}
read -r -a stores <<<"${STORES:-memory redis postgres}"
secret=whsec_soak
tolerance=300
for n in "$seconds" "$rate" "$slow"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "SECONDS, RATE and SLOW_CLIENTS are whole numbers" >&2; exit 2; }
done
(( seconds >= 1 && seconds <= 86400 && rate >= 1 && rate <= 10000 )) ||
  { echo "SECONDS must be 1 to 86400, RATE 1 to 10000" >&2; exit 2; }

# serve keeps two keys per delivery (its id and its message) for twice the tolerance plus 30 s
# (630 s); a quarter more for headroom, so that a full soak never evicts a live key.
window=$((2 * tolerance + 30))
capacity=$((2 * rate * window * 125 / 100))

target=${CARGO_TARGET_DIR:-target}
if [ -n "${HOOKVERIFY_BIN:-}" ]; then
  bin=$HOOKVERIFY_BIN
  cargo build --release --features axum --example soak -q
else
  bin=$target/release/hookverify
  cargo build --release --features cli --bin hookverify --example soak -q
fi
soak=$target/release/examples/soak
[ -x "$bin" ] || { echo "no serve binary at $bin" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work"
serve_pid= sampler_pid= redis_pid= pgdata= pgbin=
pg_as() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for pid in $sampler_pid $serve_pid $redis_pid; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$pgdata" ]; then pg_as "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true; fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done
  echo "port $1 never opened" >&2; exit 1
}
needs() { local s; for s in "${stores[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

if needs redis; then
  command -v redis-server >/dev/null || { echo "redis-server is missing" >&2; exit 1; }
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
  redis_pid=$!
  wait_port "$redis_port"
fi
if needs postgres; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$pgbin" ] || { echo "PostgreSQL is missing" >&2; exit 1; }
  pg_port=$(free_port)
  pgdata=$work/pg
  mkdir -p "$pgdata"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$pgdata"; fi
  pg_as "$pgbin/initdb" -D "$pgdata" -U postgres --auth trust >/dev/null
  pg_as "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/log" \
    -o "-p $pg_port -k $pgdata -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  wait_port "$pg_port"
fi

echo "soak: $seconds s at $rate deliveries/s, $slow slow connections; serve: $bin"
echo "memory store capacity: 2 keys x $rate/s x ${window} s x 1.25 = $capacity keys"
echo "store, deliveries, handled, lost, twice, replays handled, max RSS MiB, p99 ms"
failed=0
for store in "${stores[@]}"; do
  case $store in
    memory) url=memory; extra=(--capacity "$capacity") ;;
    redis) url=redis://127.0.0.1:$redis_port/; extra=() ;;
    postgres) url=postgres://postgres@127.0.0.1:$pg_port/postgres; extra=() ;;
    *) echo "unknown store $store" >&2; exit 2 ;;
  esac
  out=${SOAK_OUT:+$SOAK_OUT/$store}
  out=${out:-$work/$store}
  rm -rf "$out"
  mkdir -p "$out"

  "$bin" serve --addr 127.0.0.1:0 --secret "soak=$secret" --store "$url" \
    --tolerance "$tolerance" "${extra[@]}" >"$out/stdout.jsonl" 2>"$out/stderr.log" &
  serve_pid=$!
  addr=
  for _ in $(seq 200); do
    addr=$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$out/stderr.log" | head -1)
    [ -n "$addr" ] && break
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$addr" ] || { echo "$store: serve did not start:" >&2; cat "$out/stderr.log" >&2; exit 1; }

  # VmRSS every second while serve runs, in KiB.
  ( while rss=$(awk '/^VmRSS/ {print $2}' "/proc/$serve_pid/status" 2>/dev/null) && [ -n "$rss" ]; do
      echo "$rss"; sleep 1
    done ) >"$out/rss.txt" &
  sampler_pid=$!

  soak_status=0
  timeout --kill-after=10 $((seconds + 90)) "$soak" "http://$addr/" "$secret" "$rate" "$seconds" \
    "$slow" "$out" 2>"$out/soak.log" || soak_status=$?

  kill -TERM "$serve_pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$serve_pid" 2>/dev/null; then
    echo "$store: serve still running 15 s after SIGTERM: killed" >&2
    kill -KILL "$serve_pid" 2>/dev/null || true
  fi
  wait "$serve_pid" 2>/dev/null || true
  kill "$sampler_pid" 2>/dev/null || true
  wait "$sampler_pid" 2>/dev/null || true
  serve_pid= sampler_pid=

  if [ ! -s "$out/summary.json" ]; then
    echo "$store: the soak wrote no summary (status $soak_status):" >&2; cat "$out/soak.log" >&2
    failed=1; continue
  fi
  python3 - "$store" "$out" "$soak_status" <<'EOF' || failed=1
import json, sys
from collections import Counter

store, out, soak_status = sys.argv[1], sys.argv[2], int(sys.argv[3])
summary = json.load(open(f"{out}/summary.json"))
acked = [l.strip() for l in open(f"{out}/sent.txt") if l.strip()]
replays = {l.strip() for l in open(f"{out}/replays.txt") if l.strip()}
handled = Counter()
unreadable = 0
for line in open(f"{out}/stdout.jsonl"):
    try:
        handled[json.loads(line)["delivery_id"]] += 1
    except (ValueError, KeyError, TypeError):
        unreadable += 1
fresh = {f"dlv_soak_{n}" for n in range(summary["deliveries"])}
missing = [i for i in acked if handled[i] == 0]         # acknowledged, never handled
unacked = summary["lost"]                               # no attempt got a 2xx
lost = len(missing) + unacked
twice = sorted(i for i, c in handled.items() if c > 1)
replayed = sorted(i for i in handled if i in replays)
foreign = sorted(i for i in handled if i not in fresh and i not in replays)
rss = [int(l) for l in open(f"{out}/rss.txt") if l.strip().isdigit()]
max_rss = max(rss) / 1024 if rss else float("nan")
handled_fresh = sum(1 for i in handled if i in fresh)
print(f"{store}, {summary['deliveries']}, {handled_fresh}, {lost}, {len(twice)}, {len(replayed)}, "
      f"{max_rss:.1f}, {summary['latency_ms']['p99']}")
problems = []
if missing: problems.append(f"{len(missing)} acknowledged but never handled, e.g. {missing[:3]}")
if unacked: problems.append(f"{unacked} got no 2xx on any attempt, e.g. {summary['lost_ids_first_20'][:3]}")
if twice: problems.append(f"{len(twice)} handled more than once, e.g. {twice[:3]}")
if replayed: problems.append(f"{len(replayed)} replays handled, e.g. {replayed[:3]}")
if foreign: problems.append(f"{len(foreign)} ids handled that were never sent as deliveries, e.g. {foreign[:3]}")
if unreadable: problems.append(f"{unreadable} stdout lines without a delivery_id")
if soak_status not in (0, 1): problems.append(f"the soak exited with status {soak_status}")
slow = summary["slow_connections"]
print(f"  {store}: status {json.dumps(summary['status'], sort_keys=True)}; slow connections opened "
      f"{slow['opened']}, closed by serve {slow['closed_by_server']} (answers {slow['answers']}), "
      f"open at end {slow['open_at_end']}; RSS at start {rss[0] / 1024 if rss else 0:.1f} MiB")
for p in problems:
    print(f"  {store}: FAIL: {p}")
sys.exit(1 if problems else 0)
EOF
done
exit "$failed"
