#!/usr/bin/env bash
# Benchmark of certhist-cryptnet: a generated CryptnetUrlCache (default 100k entries, variations
# of a fixture OCSP entry) parsed, decoded and resolved against a database of (default) 1M
# synthetic certificates in a managed cluster under a temporary home (never the system Postgres).
# Usage: scripts/bench-cryptnet.sh [ENTRIES] [CERTS]
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${1:-100000}
CERTS=${2:-1000000}
HOME_DIR=$(mktemp -d /tmp/certhist-bench-cryptnet.XXXXXX)
chmod 755 "$HOME_DIR"   # the cluster may run as another account
# the example stops its managed cluster itself before exiting
cleanup() { rm -rf "$HOME_DIR"; }
trap cleanup EXIT
cargo build --release -p certhist-cryptnet --example bench_cryptnet
echo "machine: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
target/release/examples/bench_cryptnet "$HOME_DIR" "$ENTRIES" "$CERTS"
