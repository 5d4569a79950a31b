#!/usr/bin/env bash
# CT ingest benchmark: generates a local static-CT log of N entries (default 200000) of templated
# certificates, ingests it end to end with verification (file:// tiles, checkpoint signature,
# per-batch inclusion proofs from hash tiles), and prints entries/s next to a raw binary COPY of
# the same rows into the same tables in the same run.
# RUST_LOG=certhist_ct=debug adds per-batch timings (fetch wait, verify, parse, write).
# Database: the managed test cluster (certhist_store::testing) or TEST_DATABASE_URL; never the
# system Postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200000}"
cargo build --release -q -p certhist-ct --example bench_ct
exec ./target/release/examples/bench_ct "$N"
