#!/usr/bin/env bash
# API load while ingesting (issue 16), on the dataset of scripts/gen-dataset.sh, in one run:
#   1. quiet API: three wrk processes at once, on GET /api/v1/ip/{ip},
#      /api/v1/certificates/{sha1}/hosts and /api/v1/search (a *.suffix name search), DURATION s;
#   2. quiet ingest: a CT ingest (`certhist ingest ct` of a static-CT log of CT_ENTRIES generated
#      entries, served over loopback HTTP) and `certhist import observations` of OBS_ROWS rows, at
#      the same time, into the same database, no API load: their rates;
#   3. the same two ingests (another log of other certificates, another file of other addresses)
#      while the three wrk processes run again: p99 and non-2xx under ingest, ingest rates under
#      load, each printed next to its quiet figure of steps 1 and 2.
# The run fails (exit 1) on any non-2xx answer or socket error, or a failed ingest.
#
# Usage: scripts/bench-load-ingest.sh [BENCH_HOME]   (default /tmp/certhist-load-ingest)
#   SCALE=0.1        dataset size for gen-dataset.sh (0.1: 100k certificates, ~2.9M observations,
#                    built in a few minutes; 1: the full API-benchmark dataset)
#   REUSE=1          keep the dataset of an earlier run in BENCH_HOME (skips gen-dataset.sh; the
#                    ingested rows of that run stay, so the ingests then add to a larger database)
#   CT_ENTRIES=200000  entries per generated CT log;  OBS_ROWS=5000000 rows per observation file
#   DURATION=30      seconds of wrk per phase (the ingests must outlast it: the script says so)
#   CONNS=4          wrk connections per endpoint (3 endpoints at once)
#   BIN=path         another certhist binary; default: build the release binary
# Never the system Postgres: the managed cluster in BENCH_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_HOME=${1:-${BENCH_HOME:-/tmp/certhist-load-ingest}}
export SCALE=${SCALE:-0.1}
CT_ENTRIES=${CT_ENTRIES:-200000}
OBS_ROWS=${OBS_ROWS:-5000000}
DURATION=${DURATION:-30}
CONNS=${CONNS:-4}
PORT=${PORT:-18090}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found (serves the CT log over loopback HTTP)" >&2; exit 1; }

if [[ -z ${BIN:-} ]]; then
  cargo build --release -q --bin certhist
  BIN=target/release/certhist
fi
cargo build --release -q -p certhist-ct --example bench_ct
t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
echo "machine: $(nproc) cores, $(free -g | awk '/^Mem/ {print $2}') GiB; $(uptime | sed 's/.*load/load/') (shared with other builds)"

if [[ ${REUSE:-0} != 1 ]]; then
  say "generating the dataset (SCALE=$SCALE)"
  rm -rf "$BENCH_HOME"
  gstart=$(date +%s)
  scripts/gen-dataset.sh "$BENCH_HOME" | tail -3
  say "dataset built in $(( $(date +%s) - gstart )) s"
fi
$BIN --home "$BENCH_HOME" db start >/dev/null
URL=$($BIN --home "$BENCH_HOME" db url)
PSQL=(psql "$URL" -X -q -At -v ON_ERROR_STOP=1)

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Two CT logs of different certificates (entry i of log B is entry CT_ENTRIES + i of log A's
# series), each served by its own loopback HTTP server; two observation files of disjoint
# addresses (100.64.0.0/10 for A, 100.128.0.0/10 for B; none in the dataset), one sighting each.
say "generating 2 CT logs of $CT_ENTRIES entries and 2 observation files of $OBS_ROWS rows"
KEY_A=$(CERTHIST_BENCH_GENERATE_ONLY="$WORK/log-a" target/release/examples/bench_ct "$CT_ENTRIES")
KEY_B=$(CERTHIST_BENCH_OFFSET="$CT_ENTRIES" CERTHIST_BENCH_GENERATE_ONLY="$WORK/log-b" target/release/examples/bench_ct "$CT_ENTRIES")
gen_obs() { # file second-octet-base
  awk -v n="$OBS_ROWS" -v base="$2" 'BEGIN {
    for (i = 0; i < n; i++) {
      a = base + int(i / 65536) % 64; b = int(i / 256) % 256; c = i % 256;
      printf "100.%d.%d.%d,443,%08x%032x,%d,%d,1,loadbench\n", a, b, c, i, base, 1700000000 + i % 86400, 1700000000 + i % 86400 + 3600
    } }' | gzip -1 >"$1"
}
gen_obs "$WORK/obs-a.csv.gz" 64 &
gen_obs "$WORK/obs-b.csv.gz" 128 &
wait
LOG_PORT_A=$((PORT + 1)); LOG_PORT_B=$((PORT + 2))
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/log-a" "$LOG_PORT_A" >/dev/null 2>&1 & PIDS+=($!)
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/log-b" "$LOG_PORT_B" >/dev/null 2>&1 & PIDS+=($!)

# Keys of the three requests (as scripts/bench-api.sh picks them).
IP=$("${PSQL[@]}" -c "SELECT host(ip) FROM observations WHERE ip <<= '172.16.0.0/16' LIMIT 1")
SHA1=$("${PSQL[@]}" -c "SELECT encode(decode(md5('c100') || substr(md5('s100'), 1, 8), 'hex'), 'hex')")
DOMAIN=$("${PSQL[@]}" -c "SELECT registered_domain FROM certificate_names WHERE registered_domain LIKE 'd%.com' LIMIT 1 OFFSET 4242")
echo "dataset: $("${PSQL[@]}" -c "SELECT (SELECT count(*) FROM certificates) || ' certificates, ' || (SELECT count(*) FROM observations) || ' observations'")"
declare -A PATHS=(
  [ip]="/api/v1/ip/$IP"
  [hosts]="/api/v1/certificates/$SHA1/hosts"
  [search]="/api/v1/search?field=name&q=*.$DOMAIN"
)
KEYS="ip hosts search"

$BIN --home "$BENCH_HOME" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 & SERVER_PID=$!; PIDS+=($SERVER_PID)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
for k in $KEYS; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT${PATHS[$k]}")
  [[ $code == 200 ]] || { echo "$k: ${PATHS[$k]} answered $code" >&2; exit 1; }
done

# wrk on the three endpoints at once for DURATION s; results in $WORK/wrk-<phase>-<key>.
load() { # phase
  local pids=() k
  for k in $KEYS; do
    wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s scripts/wrk-percentiles.lua \
      "http://127.0.0.1:$PORT${PATHS[$k]}" >"$WORK/wrk-$1-$k" 2>&1 & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
}
declare -A W
stat() { # phase key field
  local kv; for kv in $(grep '^WRKSTATS' "$WORK/wrk-$1-$2" | cut -d' ' -f2-); do
    [[ ${kv%%=*} == "$3" ]] && { echo "${kv#*=}"; return; }
  done
  echo "?"
}
# Both ingests at once into the database; sets CT_S, OBS_S (wall seconds) and checks success.
ingest() { # phase log-port key obs-file
  local s0; s0=$(date +%s.%N)
  ( $BIN --home "$BENCH_HOME" --json ingest ct --log "http://127.0.0.1:$2" --kind static --public-key "$3" \
      >"$WORK/ct-$1.json" 2>"$WORK/ct-$1.err"; echo $? >"$WORK/ct-$1.rc"; date +%s.%N >"$WORK/ct-$1.end" ) &
  local ct=$!
  ( $BIN --home "$BENCH_HOME" --json import observations "$4" \
      >"$WORK/obs-$1.json" 2>"$WORK/obs-$1.err"; echo $? >"$WORK/obs-$1.rc"; date +%s.%N >"$WORK/obs-$1.end" ) &
  local obs=$!
  INGEST_PIDS=("$ct" "$obs")
  echo "$s0" >"$WORK/start-$1"
}
ingest_wait() { # phase
  local p; for p in "${INGEST_PIDS[@]}"; do wait "$p"; done
  local s0; s0=$(cat "$WORK/start-$1")
  for what in ct obs; do
    [[ $(cat "$WORK/$what-$1.rc") == 0 ]] || { echo "$what ingest ($1) failed:" >&2; cat "$WORK/$what-$1.err" >&2; exit 1; }
  done
  CT_S=$(awk "BEGIN{printf \"%.1f\", $(cat "$WORK/ct-$1.end") - $s0}")
  OBS_S=$(awk "BEGIN{printf \"%.1f\", $(cat "$WORK/obs-$1.end") - $s0}")
}

"${PSQL[@]}" -c "CHECKPOINT"
say "phase 1: quiet API (${DURATION}s, $CONNS connections per endpoint); $(uptime | sed 's/.*load/load/')"
load quiet
"${PSQL[@]}" -c "CHECKPOINT"
say "phase 2: quiet ingest (CT log A + observations A, no API load); $(uptime | sed 's/.*load/load/')"
ingest quietingest "$LOG_PORT_A" "$KEY_A" "$WORK/obs-a.csv.gz"
ingest_wait quietingest
CT_QUIET=$CT_S; OBS_QUIET=$OBS_S
"${PSQL[@]}" -c "CHECKPOINT"
say "phase 3: API load while ingesting (CT log B + observations B); $(uptime | sed 's/.*load/load/')"
ingest loaded "$LOG_PORT_B" "$KEY_B" "$WORK/obs-b.csv.gz"
load loaded
LOAD_END=$(date +%s.%N)
ingest_wait loaded
CT_LOADED=$CT_S; OBS_LOADED=$OBS_S
say "done; $(uptime | sed 's/.*load/load/')"

outlasted() { awk "BEGIN{print ($(cat "$WORK/$1-loaded.end") >= $LOAD_END) ? \"yes\" : \"NO (ended before the load)\"}"; }
echo
echo "API, $CONNS connections per endpoint, 3 endpoints at once, ${DURATION}s per phase"
printf '%-40s %10s %10s %10s %10s %10s %8s\n' endpoint "quiet p50" "quiet p99" "ingest p50" "ingest p99" "req/s q/i" non-2xx
errors=0
for k in $KEYS; do
  n=$(( $(stat loaded "$k" non2xx) + $(stat loaded "$k" socket_errors) + $(stat quiet "$k" non2xx) + $(stat quiet "$k" socket_errors) ))
  errors=$((errors + n))
  rq=$(awk "BEGIN{printf \"%.0f\", $(stat quiet "$k" requests) / $(stat quiet "$k" seconds)}")
  rl=$(awk "BEGIN{printf \"%.0f\", $(stat loaded "$k" requests) / $(stat loaded "$k" seconds)}")
  printf '%-40s %8.2fms %8.2fms %8.2fms %8.2fms %10s %8s\n' "GET ${PATHS[$k]%%\?*}" \
    "$(stat quiet "$k" p50)" "$(stat quiet "$k" p99)" "$(stat loaded "$k" p50)" "$(stat loaded "$k" p99)" "$rq/$rl" "$n"
done
echo
echo "ingest (both at once)                      quiet                     under API load       outlasted the load"
printf 'CT ingest, %d entries                  %6.1f s %8.0f entries/s   %6.1f s %8.0f entries/s   %s\n' "$CT_ENTRIES" \
  "$CT_QUIET" "$(awk "BEGIN{print $CT_ENTRIES / $CT_QUIET}")" "$CT_LOADED" "$(awk "BEGIN{print $CT_ENTRIES / $CT_LOADED}")" "$(outlasted ct)"
printf 'observations import, %d rows       %6.1f s %8.0f rows/s      %6.1f s %8.0f rows/s      %s\n' "$OBS_ROWS" \
  "$OBS_QUIET" "$(awk "BEGIN{print $OBS_ROWS / $OBS_QUIET}")" "$OBS_LOADED" "$(awk "BEGIN{print $OBS_ROWS / $OBS_LOADED}")" "$(outlasted obs)"
# What the ingests stored, counted independently of their summaries.
echo "stored: $("${PSQL[@]}" -c "SELECT (SELECT count(*) FROM ct_entries) || ' CT entries (expected $((2 * CT_ENTRIES))), ' ||
  (SELECT count(*) FROM observations WHERE ip <<= '100.64.0.0/10' OR ip <<= '100.128.0.0/10') || ' imported observations (expected $((2 * OBS_ROWS)))'")"
if (( errors > 0 )); then echo "FAILED: $errors non-2xx answers or socket errors" >&2; exit 1; fi
echo "non-2xx answers and socket errors: 0"
