#!/usr/bin/env bash
# Installs, from Debian's packages, what the tests and lints need and this machine lacks:
# Redis (server and redis-cli, for the store tests and the three-node cluster), PostgreSQL, and
# OpenSSL's headers with pkg-config (the `svix` peer in the benchmarks links OpenSSL). Says what
# it installs; does nothing when everything is there.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
[ ${#need[@]} -gt 0 ] || exit 0
echo "installing ${need[*]} (Debian packages the tests need)" >&2
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -q
$sudo_cmd apt-get install -y -q --no-install-recommends "${need[@]}"
