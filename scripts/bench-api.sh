#!/usr/bin/env bash
# HTTP load on the certhist API next to pgbench on the same SQL, in one run, on the dataset of
# scripts/gen-dataset.sh (issue 6, tail latency issue 17). For each connection count and each
# endpoint: wrk (p50 / p99 / p99.9, req/s), then pgbench running every statement the request
# runs (one pgbench transaction = one request's statements, literal parameters, -M extended).
# The figures are of the server as it is deployed; then, per endpoint, a shorter run against a
# second start with `serve --stage-timing` gives the server's own stage split
# (/debug/stage-timing) — the instrumentation costs 3–8 % of throughput, so it stays out of the
# measured run.
#
# Usage: scripts/bench-api.sh [BENCH_HOME]
#   CONNS="1 8 32"   connection counts (wrk connections = pgbench clients)
#   POOL=N           database pool of the server (default: the server's own default, two per
#                    core; POOL=conns gives it as many connections as wrk has)
#   DURATION=10      seconds per measurement;  WARMUP=2 seconds of unmeasured load first
#   ROUNDS=1         measurements per endpoint and connection count, API and pgbench
#                    alternating; with more than one, a last table gives the median of each
#                    figure over the rounds (this 2-core VM varies by 10-20 % from run to run)
#   ONLY="ip hosts"  a subset of: ip hosts suffix substring overlap uiip
#   STAGES=0         skip the stage split lines;  STAGE_DURATION=3 seconds of load per split
#   BIN=path         another certhist binary (a before/after comparison); default: build
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_HOME=${1:-${BENCH_HOME:-/tmp/certhist-bench}}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-1 8 32}
PORT=${PORT:-18080}
ONLY=${ONLY:-ip hosts suffix substring overlap uiip}
STAGES=${STAGES:-1}
ROUNDS=${ROUNDS:-1}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
command -v pgbench >/dev/null || { echo "pgbench not found: apt-get install -y postgresql-contrib" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq not found: apt-get install -y jq" >&2; exit 1; }

if [[ -z ${BIN:-} ]]; then
  cargo build --release -q --bin certhist
  BIN=target/release/certhist
fi
$BIN --home "$BENCH_HOME" db start >/dev/null   # starts the cluster, creates and migrates the database
URL=$($BIN --home "$BENCH_HOME" db url)
PSQL=(psql "$URL" -X -q -At -v ON_ERROR_STOP=1)
WORK=$(mktemp -d)
SERVER_PID=
stop_server() { if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; fi; }
trap 'stop_server; rm -rf "$WORK"' EXIT

source scripts/lib/api-bench.sh   # keys, the SQL of each request, api_measure
api_pick_keys
echo "dataset: $("${PSQL[@]}" -c "SELECT (SELECT reltuples::bigint FROM pg_class WHERE relname='certificates') || ' certificates, ' || (SELECT reltuples::bigint FROM pg_class WHERE relname='sightings') || ' observations'")"
echo "keys: ip=$IP sha1=$SHA1 suffix=*.$DOMAIN substring=*$SUBSTR* overlap=$OIP1,$OIP2"
echo "machine: $(nproc) cores; $(uptime | sed 's/.*load/load/'); ${DURATION}s per run after ${WARMUP}s warm-up"

# The SQL each request runs (store/src/read), parameters bound as literals: $WORK/KEY.sql.
api_write_sql

# One result row: conns name api-p50 p99 p99.9 rps pg-p50 p99 p99.9 tps [suffix].
row() {
  printf '%-5s %-34s API %7.2f %7.2f %7.2f ms %6s/s | pgbench %7.2f %7.2f %7.2f ms %6s/s | p99 %4.1fx  thr %3.0f%%%s\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${10}" \
    "$(awk "BEGIN{print $4/$8}")" "$(awk "BEGIN{print 100*$6/${10}}")" "${11:-}"
}

run() { # key conns: ROUNDS measurements, one row each; the figures go to $WORK/rounds
  local key=$1 conns=$2 base="http://127.0.0.1:$PORT" round
  for round in $(seq 1 "$ROUNDS"); do
    api_measure "$key" "$conns" "$base" || exit 1
    local errs=""
    (( W_NON2XX + W_SOCKERR > 0 )) && errs=" ($W_NON2XX non-2xx, $W_SOCKERR socket errors!)"
    (( ROUNDS > 1 )) && errs+=" [round $round]"
    row "$conns" "${NAMES[$key]}" "$W_P50" "$W_P99" "$W_P999" "$W_RPS" "$PG_P50" "$PG_P99" "$PG_P999" "$PG_TPS" "$errs"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$conns" "$key" "$W_P50" "$W_P99" "$W_P999" "$W_RPS" \
      "$PG_P50" "$PG_P99" "$PG_P999" "$PG_TPS" >>"$WORK/rounds"
  done
}

# The median of each figure over the rounds, per connection count and endpoint (ratios of the
# medians).
medians() {
  local conns key
  echo
  echo "== median of $ROUNDS rounds"
  for conns in $CONNS; do
    for key in $ONLY; do
      # shellcheck disable=SC2046
      row "$conns" "${NAMES[$key]}" $(awk -F'\t' -v c="$conns" -v k="$key" '$1 == c && $2 == k' "$WORK/rounds" \
        | perl -e 'my @cols; while (<STDIN>) { chomp; my @f = split /\t/; push @{$cols[$_]}, $f[$_] for 2..9; }
                   print join(" ", map { my @v = sort { $a <=> $b } @{$cols[$_]}; $v[int($#v / 2)] } 2..9), "\n"')
    done
  done
}

stages() { # key conns: the stage split of the server started with --stage-timing
  local key=$1 conns=$2 base="http://127.0.0.1:$PORT"
  local threads=$(( conns < 2 ? 1 : 2 ))
  wrk -t"$threads" -c"$conns" -d1s "$base${PATHS[$key]}" >/dev/null
  curl -fs -X DELETE "$base/debug/stage-timing" >/dev/null
  wrk -t"$threads" -c"$conns" -d"${STAGE_DURATION:-3}s" "$base${PATHS[$key]}" >/dev/null
  # The busiest route of the report (the one wrk hit), p50 / p99 of each stage.
  printf '%-5s %s\n' "$conns" "${NAMES[$key]}"
  curl -fs "$base/debug/stage-timing" | jq -r '.routes | max_by(.requests) | "      stages p50/p99 ms (" + (.statements_per_request*100|round/100|tostring) + " stmts/req): "
      + (.stages as $s | ["pool_wait", "query", "decode", "serialise", "write", "other", "total"]
         | map("\(.) \($s[.].p50/1000*100|round/100)/\($s[.].p99/1000*100|round/100)") | join("  "))'
}

start_server() { # extra serve arguments
  stop_server
  $BIN --home "$BENCH_HOME" serve --listen "127.0.0.1:$PORT" "${pool_args[@]}" "$@" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
}

for conns in $CONNS; do
  pool=${POOL:-default}
  [[ $pool == conns ]] && pool=$conns
  pool_args=()
  [[ $pool != default ]] && pool_args=(--max-connections "$pool")
  start_server
  echo
  echo "== $conns connection(s), server pool $pool; $(uptime | sed 's/.*load/load/')"
  echo "conns endpoint                               p50     p99   p99.9            |         p50     p99   p99.9                | API/pgbench (goal p99 ≤ 3x, thr ≥ 60 %)"
  for key in $ONLY; do run "$key" "$conns"; done
  if [[ $STAGES == 1 ]]; then
    start_server --stage-timing
    echo "-- stage split, serve --stage-timing, ${STAGE_DURATION:-3}s per endpoint"
    for key in $ONLY; do stages "$key" "$conns"; done
  fi
done
stop_server
(( ROUNDS > 1 )) && medians
echo "done; $(uptime | sed 's/.*load/load/')"
