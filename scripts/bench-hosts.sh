#!/usr/bin/env bash
# Hosts benchmark (issue 4): (a) TLS scan throughput against >= 64 local TLS servers on
# 127.0.x.y, (b) import of a generated Sonar hosts file (>= 5M lines) next to the ceiling: raw
# binary COPY of the same rows into the same table in the same run.
# Database: TEST_DATABASE_URL if set, else a managed cluster on a temporary home (never the
# system Postgres). Knobs: BENCH_SERVERS (64), BENCH_ROUNDS (40), BENCH_LINES (5000000),
# BENCH_CONCURRENCY (128).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p certhist-scan --example bench_hosts
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  cores: $(nproc)  commit: $(git rev-parse --short HEAD)"
exec ./target/release/examples/bench_hosts
