#!/usr/bin/env bash
# CT ingest benchmark: generates a local static-CT log of N entries (default 200000) of templated
# certificates, ingests it end to end with verification (file:// tiles, checkpoint signature,
# per-batch inclusion proofs from hash tiles), and prints entries/s next to a raw binary COPY of
# the same rows into the same tables in the same run (on one connection, and split by sha1 over
# as many connections as the ingest's writers).
# Three datasets, each on a fresh managed cluster with certhist's default settings:
#   1. template names: every entry has the template's 3 names (the data of the first figures);
#   2. distinct names: every entry has names of its own (the worst case for the name indexes);
#   3. paired names: two consecutive entries share their names, as a precertificate and its
#      certificate do (CERTHIST_BENCH_NAME_GROUP=2).
# Environment: CERTHIST_BENCH_WRITERS (default 2), CERTHIST_BENCH_BATCH (entries per batch,
# default 16384), CERTHIST_BENCH_URL (measure on a server of your own instead), RUST_LOG=
# certhist_ct=debug,certhist_store=debug for per-batch timings. Never the system Postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200000}"
cargo build --release -q -p certhist-ct --example bench_ct
echo "== dataset 1: template names (3 names per entry, the same for every entry)"
CERTHIST_BENCH_SAME_NAMES=1 ./target/release/examples/bench_ct "$N"
echo "== dataset 2: distinct names (3 names per entry, new for every entry)"
./target/release/examples/bench_ct "$N"
echo "== dataset 3: paired names (3 names per entry, shared by 2 consecutive entries)"
CERTHIST_BENCH_NAME_GROUP=2 ./target/release/examples/bench_ct "$N"
