#!/usr/bin/env bash
# The test command (README.md). Tests start one managed PostgreSQL cluster for the whole run
# (under $TMPDIR) unless TEST_DATABASE_URL points at a server; no Docker, no system service.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets "$@"
