#!/usr/bin/env bash
# Peak memory on big inputs (issue 15): peak RSS (`/usr/bin/time -v`) of
#   1. an import of LINES (default 10,000,000) Sonar `ip,sha1` lines (a fresh home);
#   2. `certhist scan` of a /8 (127.0.0.0/8 on loopback: every connection refused at once) for
#      SCAN_SECS (default 60) seconds, and of a whole /16 for comparison — the target list is
#      expanded lazily, so both stay at the same size;
#   3. an NDJSON export of every sighting in 10.0.0.0/10 through `/api/v1/ip` (≈ 1.75 M rows on
#      `scripts/gen-dataset.sh` data: run it first on BENCH_HOME).
# Each figure is printed next to its ceiling. Usage: scripts/bench-memory.sh [BENCH_HOME]
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_HOME=${1:-${BENCH_HOME:-/tmp/certhist-bench}}
LINES=${LINES:-10000000}
SCAN_SECS=${SCAN_SECS:-60}
CEILING_MB=${CEILING_MB:-256}
EXPORT_CIDR=${EXPORT_CIDR:-10.0.0.0/10}
BIN=${CERTHIST_BIN:-target/release/certhist}
[ -x "$BIN" ] || cargo build --release -q --bin certhist
BIN=$(realpath "$BIN")
WORK=$(mktemp -d)
chmod 755 "$WORK"
trap '"$BIN" --home "$WORK/home" db stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
peak() { awk '/Maximum resident set size/ {printf "%.1f", $NF / 1024}' "$1"; }
report() { # what peak_mb
  awk -v w="$1" -v p="$2" -v c="$CEILING_MB" 'BEGIN {printf "%-44s peak RSS %7.1f MB   ceiling %d MB   %s\n", w, p, c, (p <= c ? "ok" : "OVER")}'
}
echo "$(date -u +%FT%TZ) $(uname -m), $(nproc) cores; $(uptime)"

awk -v n="$LINES" 'BEGIN {for (i = 0; i < n; i++) {ip = (i * 2654435761) % 16777216;
  printf "10.%d.%d.%d,%08x%08x%08x%08x%08x\n", int(ip / 65536) % 256, int(ip / 256) % 256, ip % 256, i, i * 7, i * 13, i * 31, i * 101}}' > "$WORK/hosts.csv"
"$BIN" --home "$WORK/home" db start >/dev/null
/usr/bin/time -v "$BIN" --home "$WORK/home" import sonar --hosts "$WORK/hosts.csv" --date 20200608 >/dev/null 2> "$WORK/import.time"
report "import sonar, $LINES lines" "$(peak "$WORK/import.time")"

/usr/bin/time -v timeout -s INT "$SCAN_SECS" "$BIN" --home "$WORK/home" scan 127.0.0.0/8 --timeout 200ms >/dev/null 2> "$WORK/scan8.time" || true
report "scan 127.0.0.0/8, stopped after ${SCAN_SECS} s" "$(peak "$WORK/scan8.time")"
/usr/bin/time -v "$BIN" --home "$WORK/home" scan 127.0.0.0/16 --timeout 200ms > "$WORK/scan16.out" 2> "$WORK/scan16.time" || true
report "scan 127.0.0.0/16 ($(awk '/^connections/ {print $2}' "$WORK/scan16.out") connections)" "$(peak "$WORK/scan16.time")"

PORT=$((20000 + RANDOM % 20000))
/usr/bin/time -v "$BIN" --home "$BENCH_HOME" serve --listen "127.0.0.1:$PORT" --widest-prefix-v4 10 \
  --request-timeout-secs 3600 > /dev/null 2> "$WORK/serve.time" &
TIME_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/api/v1/healthz" >/dev/null && break; sleep 0.2; done
rows=$(curl -sf -H 'Accept: application/x-ndjson' "http://127.0.0.1:$PORT/api/v1/ip/$EXPORT_CIDR" | wc -l)
kill -INT "$(pgrep -P "$TIME_PID")" || true   # the server is the child of /usr/bin/time
wait "$TIME_PID" || true
report "NDJSON export /ip/$EXPORT_CIDR ($rows rows)" "$(peak "$WORK/serve.time")"
