#!/usr/bin/env bash
# CPU per request over HTTP, pinned: every server under test on core 0, the load generator
# (wrk) and the stores (Redis, PostgreSQL) on core 1, configurations alternated round by round,
# medians reported. Loopback only; every run bounded (DURATION seconds, ROUNDS rounds).
#   scripts/pinned.sh [ROUNDS] [DURATION] [BODY_BYTES] [CONFIGS...]
# CONFIGS (default all): bare layer serve-memory serve-redis serve-postgres (and layer-KEYS: the
# layer with a memory store of KEYS keys instead of the default); a config prefixed
# with `old:` (e.g. old:serve-redis) runs the binaries in $OLD_BIN instead (another commit's
# target/release), for a before/after alternated in one run.
# CONNECTIONS (default 32) sets wrk's connections; with DELAY_MS set, each connection waits that
# long between requests, a steady rate below saturation (about CONNECTIONS x 1000 / DELAY_MS per
# second), so that every configuration runs at the same load.
# Needs wrk, taskset, redis-server and PostgreSQL (Debian packages wrk, util-linux,
# redis-server, postgresql).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
duration=${2:-4}
size=${3:-1024}
shift $(( $# < 3 ? $# : 3 ))
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(bare layer serve-memory serve-redis serve-postgres)
secret=whsec_pinned
connections=${CONNECTIONS:-32}
for tool in wrk taskset; do
  command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done

cargo build --release --features cli --bin hookverify --example bare_receiver -q
work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  if [ -n "${pgdata:-}" ]; then pg_as "$pgbin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

pg_as() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# User and system CPU ticks, "utime stime".
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

needs() { for c in "${configs[@]}"; do [ "${c#old:}" = "$1" ] && return 0; done; return 1; }
if needs serve-redis; then
  taskset -c 1 redis-server --port 16390 --save '' --appendonly no --bind 127.0.0.1 >/dev/null &
  wait_port 16390
fi
if needs serve-postgres; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  pgdata=$work/pg
  mkdir -p "$pgdata"
  [ "$(id -u)" -eq 0 ] && chown postgres "$pgdata"
  pg_as "$pgbin/initdb" -D "$pgdata" -U postgres --auth trust >/dev/null
  pg_as taskset -c 1 "$pgbin/pg_ctl" -D "$pgdata" -o "-p 16391 -k $pgdata -c listen_addresses=127.0.0.1 -c fsync=off" -l "$pgdata/log" start >/dev/null
  wait_port 16391
fi

start() {
  local bin=./target/release config=$1
  if [[ $config == old:* ]]; then bin=${OLD_BIN:?set OLD_BIN for old: configs}; config=${config#old:}; fi
  case $config in
    bare) taskset -c 0 "$bin/examples/bare_receiver" 127.0.0.1:18800 >/dev/null 2>&1 & ;;
    layer) taskset -c 0 "$bin/examples/bare_receiver" 127.0.0.1:18800 --layer "$secret" >/dev/null 2>&1 & ;;
    layer-*) taskset -c 0 "$bin/examples/bare_receiver" 127.0.0.1:18800 --layer "$secret" "${config#layer-}" >/dev/null 2>&1 & ;;
    serve-memory) store=memory ;;&
    serve-redis) store=redis://127.0.0.1:16390/ ;;&
    serve-postgres) store=postgres://postgres@127.0.0.1:16391/postgres ;;&
    serve-*) taskset -c 0 "$bin/hookverify" serve --addr 127.0.0.1:18800 \
               --secret "load=$secret" --store "$store" >/dev/null 2>"$work/serve.log" & ;;
  esac
  server=$!
  wait_port 18800
}

declare -A results
next_id=0
for round in $(seq "$rounds"); do
  for config in "${configs[@]}"; do
    start "$config"
    # Fresh deliveries only: ids never repeat across passes, rounds or configurations.
    python3 scripts/wrk_requests.py "$secret" 20000 "$size" "$work/warmup.lua" "$next_id"
    python3 scripts/wrk_requests.py "$secret" 250000 "$size" "$work/requests.lua" $((next_id + 20000))
    next_id=$((next_id + 270000))
    taskset -c 1 wrk -t1 -c"$connections" -d1s -s "$work/warmup.lua" http://127.0.0.1:18800/ >/dev/null
    before=$(cpu_ticks "$server")
    taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" -s "$work/requests.lua" \
      http://127.0.0.1:18800/ >"$work/out.txt"
    after=$(cpu_ticks "$server")
    kill "$server"; wait "$server" 2>/dev/null || true
    if grep -q "Non-2xx" "$work/out.txt"; then
      echo "$config: some answers were not 2xx: void" >&2; cat "$work/out.txt" >&2; exit 1
    fi
    requests=$(awk '/requests in/ {print $1}' "$work/out.txt")
    read -r user_before sys_before <<<"$before"
    read -r user_after sys_after <<<"$after"
    user=$((user_after - user_before)); sys=$((sys_after - sys_before))
    line=$(awk -v u=$user -v s=$sys -v r="$requests" -v d="$duration" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { printf "%.1f %.0f %.1f %.1f", (u + s) / hz / r * 1e6, r / d, u / hz / r * 1e6, s / hz / r * 1e6 }')
    echo "round $round $config: $line (us CPU per request, requests/s, of which user, system)"
    results[$config]+="$line;"
  done
done

echo "== medians over $rounds rounds: us CPU per request (server on core 0), requests/s =="
median() { tr ';' '\n' | sed '/^$/d' | awk -v f="$1" '{print $f}' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
for config in "${configs[@]}"; do
  printf "%-20s %6s us  %8s req/s  (user %s us, system %s us)\n" "$config" \
    "$(median 1 <<<"${results[$config]}")" "$(median 2 <<<"${results[$config]}")" \
    "$(median 3 <<<"${results[$config]}")" "$(median 4 <<<"${results[$config]}")"
done
