#!/usr/bin/env bash
# Render benchmark of the web UI on the dataset of scripts/gen-dataset.sh: wrk against the HTML
# pages (an address's history page — 100 rows + the SVG timeline — and a certificate page with
# its first 100 hosts), next to the JSON endpoint that reads the same rows, plus the weight of
# each page (HTML + the one CSS and JS file; nothing else is fetched).
# Usage: scripts/bench-ui.sh [BENCH_HOME]   (DURATION=15 CONNS=8 to change the load)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_HOME=${1:-${BENCH_HOME:-/tmp/certhist-bench}}
DURATION=${DURATION:-15}
CONNS=${CONNS:-8}
PORT=${PORT:-18081}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }

cargo build --release -q --bin certhist
BIN=target/release/certhist
$BIN --home "$BENCH_HOME" db start >/dev/null
URL=$($BIN --home "$BENCH_HOME" db url)
PSQL=(psql "$URL" -X -q -At -v ON_ERROR_STOP=1)
WORK=$(mktemp -d)
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

$BIN --home "$BENCH_HOME" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

# The same keys as bench-api.sh: an address with a multi-year history (2000 certificates; the
# page shows 100), a certificate on 1000 addresses.
IP=$("${PSQL[@]}" -c "SELECT host(ip) FROM observations WHERE ip <<= '172.16.0.0/16' LIMIT 1")
SHA1=$("${PSQL[@]}" -c "SELECT encode(decode(md5('c100') || substr(md5('s100'), 1, 8), 'hex'), 'hex')")
echo "dataset: $("${PSQL[@]}" -c "SELECT (SELECT reltuples::bigint FROM pg_class WHERE relname='certificates') || ' certificates, ' || (SELECT reltuples::bigint FROM pg_class WHERE relname='observations') || ' observations'")"
echo "keys: ip=$IP sha1=$SHA1; $CONNS connections, ${DURATION}s each"

weight() { # path → bytes of the page plus its CSS and JS
  local page css js
  page=$(curl -fs "http://127.0.0.1:$PORT$1" | tee "$WORK/page.html" | wc -c)
  css=$(curl -fs "http://127.0.0.1:$PORT$(grep -o '/static/app\.[0-9a-f]*\.css' "$WORK/page.html")" | wc -c)
  js=$(curl -fs "http://127.0.0.1:$PORT$(grep -o '/static/app\.[0-9a-f]*\.js' "$WORK/page.html")" | wc -c)
  echo "$page + $css + $js = $((page + css + js)) bytes"
}

run() { # name path
  local name=$1 path=$2
  local threads=$(( CONNS < 2 ? 1 : 2 ))
  local out; out=$(wrk -t"$threads" -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT$path")
  local rps; rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  local p50; p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  local p99; p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  local errs; errs=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '%-44s p50 %-9s p99 %-9s %9s req/s %s\n' "$name" "$p50" "$p99" "$rps" "${errs:+($errs non-2xx!)}"
}
echo "page weight /ip/$IP: $(weight "/ip/$IP")"
echo "page weight /certificate/$SHA1: $(weight "/certificate/$SHA1")"
run "GET /ip/{ip} HTML, 100 rows + timeline (goal p99 50 ms)" "/ip/$IP"
run "GET /api/v1/ip/{ip} JSON, same rows" "/api/v1/ip/$IP"
run "GET /certificate/{sha1} HTML, record + 100 hosts" "/certificate/$SHA1"
