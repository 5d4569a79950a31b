#!/usr/bin/env bash
# Growth curves (issue 15): for each size, a fresh managed cluster filled by scripts/gen-dataset.sh
# with N observations (certificates N/20, registered domains Zipf-skewed), then
#   1. bytes per observation: heap and each index of `sightings` (pg_relation_size) ÷ rows,
#      indexes as freshly built, and again after the import of step 3 (grown by inserts);
#   2. p50 / p99 / p99.9 of /api/v1/ip/{ip}, /certificates/{h}/hosts, /search suffix and
#      substring, /overlap and /expand with wrk, next to pgbench on the same SQL
#      (scripts/lib/api-bench.sh; /expand's statements are captured from the server's log);
#   3. bulk import: IMPORT_ROWS new observations (random addresses and certificates, a CSV) through
#      `certhist import observations` into the grown table, then — the same rows deleted and the
#      table vacuumed — the raw COPY ceiling of the same rows into the same table
#      (scripts/lib/copy-ceiling.sh: the rows converted to the table's columns untimed, then one
#      psql COPY and INSERT … SELECT into `sightings`, scripts/lib/copy-ceiling.sh).
# The request keys have the same result sizes at every size (a page of 101 rows), so a slower
# lookup at a larger size is the cost of the larger table: the address with 2000 certificates,
# the certificate on exactly 1000 addresses (Zipf head scaled with N), a registered domain with
# about 100 certificates, substring "h4242", two addresses sharing the top certificate.
#
# Usage: scripts/bench-scale.sh [BASE_DIR]      (clusters in BASE_DIR/SIZE, default /tmp/certhist-scale)
#   SIZES="1M 10M 100M"   observation counts (k/M/G suffixes)
#   CONNS="1 8"           wrk connections = pgbench clients = server pool
#   DURATION=10 WARMUP=2  seconds per measurement / of unmeasured load first
#   ONLY="ip hosts suffix substring overlap expand"
#   IMPORT_ROWS=500000    rows of the import measurement (the same at every size)
#   KEEP=1                keep each size's cluster (default: stop it and delete it when measured)
#   OUT=docs/bench        where scale.csv (rows of a size replace earlier rows of that size) and
#                         the plots (scale-*.svg, scripts/scale-plot.py) go
#   BIN=path              a built certhist (default: cargo build --release -j 2)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:-${BENCH_HOME:-/tmp/certhist-scale}}
SIZES=${SIZES:-1M 10M 100M}
CONNS=${CONNS:-1 8}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ONLY=${ONLY:-ip hosts suffix substring overlap expand}
IMPORT_ROWS=${IMPORT_ROWS:-500000}
KEEP=${KEEP:-0}
OUT=${OUT:-docs/bench}
PORT=${PORT:-18090}
for tool in wrk pgbench psql curl perl python3; do
  command -v $tool >/dev/null || { echo "$tool not found (wrk, postgresql-contrib, curl, perl, python3)" >&2; exit 1; }
done
if [[ -z ${BIN:-} ]]; then
  echo "== building (release)"
  cargo build --release -q -j 2 --bin certhist
  BIN=target/release/certhist
fi
mkdir -p "$OUT" "$BASE"
CSV=$OUT/scale.csv
[[ -f $CSV ]] || echo "date,size,observations,metric,endpoint,conns,value" >"$CSV"
WORK=$(mktemp -d)
SERVER_PID=
stop_server() { if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; fi; }
trap 'stop_server; rm -rf "$WORK"' EXIT
source scripts/lib/api-bench.sh   # the SQL of each request, api_measure
load() { uptime | sed 's/.*load average: //'; }
t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
count() { # "10M" → 10000000
  awk -v s="$1" 'BEGIN{m=1; u=toupper(substr(s, length(s))); if (u=="K") m=1e3; if (u=="M") m=1e6; if (u=="G") m=1e9;
    n=(m>1) ? substr(s, 1, length(s)-1) : s; printf "%d", n*m}'
}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, shared; load $(load); sizes: $SIZES; $(date -u '+%F %H:%M UTC')"

for size in $SIZES; do
  N=$(count "$size")
  HOME_DIR=$BASE/$size
  DATE=$(date -u +%F)
  ROWS_CSV=$WORK/rows.csv; : >"$ROWS_CSV"
  rec() { echo "$DATE,$size,$N,$1,$2,$3,$4" >>"$ROWS_CSV"; }   # metric endpoint conns value
  echo
  echo "=================== $size observations ($N) — $(date -u '+%H:%M UTC'), load $(load)"
  # --- generate ------------------------------------------------------------------------------
  [[ -d $HOME_DIR ]] && { $BIN --home "$HOME_DIR" db stop >/dev/null 2>&1 || true; rm -rf "$HOME_DIR"; }
  CERTS=$(( N / 20 ))
  ZIPF=$(( N / 200 < 1000 ? 1000 : N / 200 ))       # certificate c on ZIPF/c addresses (c ≤ 1000)
  HOT_IPS=$(( N / 20000 < 1 ? 1 : N / 20000 ))      # addresses with 2000 certificates each
  ZIPF_ROWS=$(awk -v z="$ZIPF" 'BEGIN{s=0; for (c=1; c<=1000; c++) s+=int(z/c); print s}')
  HASHONLY=$(( N - CERTS - ZIPF_ROWS - HOT_IPS * 2000 ))
  (( HASHONLY > 0 )) || { echo "size $size too small" >&2; exit 1; }
  say "generating: $CERTS certificates, $HASHONLY hash-only sightings, $CERTS on one address, $ZIPF_ROWS Zipf-shared (certificate c on $ZIPF/c addresses), $HOT_IPS × 2000 long-history"
  g0=$(date +%s)
  BIN=$BIN CERTS=$CERTS HASHONLY=$HASHONLY HOT_IPS=$HOT_IPS ZIPF=$ZIPF NAME_SKEW=1 \
    scripts/gen-dataset.sh "$HOME_DIR" 2>&1 | sed -u 's/^/    gen /'
  rec gen_seconds - - $(( $(date +%s) - g0 ))
  URL=$($BIN --home "$HOME_DIR" db url)
  LOG=$($BIN --home "$HOME_DIR" db status | awk '/^log:/ {print $2}')
  PSQL=(psql "$URL" -X -q -At -v ON_ERROR_STOP=1)

  # --- bytes per observation ------------------------------------------------------------------
  sizes_of() { # label rows → prints and records heap / each index / total per row
    local label=$1 rows=$2 line
    line=$("${PSQL[@]}" -F' ' -c "SELECT pg_relation_size('sightings'),
        pg_relation_size('sightings_pkey'), pg_relation_size('sightings_cert_id_idx'), pg_indexes_size('sightings')")
    read -r HEAP PK REV IDX <<<"$line"
    awk -v r="$rows" -v h="$HEAP" -v p="$PK" -v v="$REV" -v i="$IDX" -v l="$label" 'BEGIN{
      printf "  bytes/observation (%s, %d rows): heap %.1f + primary key %.1f + reverse %.1f = %.1f B (all indexes %.1f; table %.2f GiB)\n",
        l, r, h/r, p/r, v/r, (h+i)/r, i/r, (h+i)/2^30}'
    rec "bytes_heap_$label" - - "$(awk "BEGIN{printf \"%.2f\", $HEAP/$rows}")"
    rec "bytes_pkey_$label" - - "$(awk "BEGIN{printf \"%.2f\", $PK/$rows}")"
    rec "bytes_reverse_$label" - - "$(awk "BEGIN{printf \"%.2f\", $REV/$rows}")"
    rec "bytes_total_$label" - - "$(awk "BEGIN{printf \"%.2f\", ($HEAP+$IDX)/$rows}")"
    # The identity rows of the compact key (schema V7): one per SHA-1 ever sighted, so per
    # observation they cost (bytes per key) × (keys per observation) — a property of the data.
    line=$("${PSQL[@]}" -F' ' -c "SELECT count(*), pg_total_relation_size('cert_keys') FROM cert_keys")
    read -r KEYS KBYTES <<<"$line"
    awk -v r="$rows" -v k="$KEYS" -v kb="$KBYTES" -v h="$HEAP" -v i="$IDX" -v l="$label" 'BEGIN{
      printf "  certificate keys (%s): %d (%.3f per observation) × %.1f B = %.1f B per observation; sightings + keys %.1f B per observation\n",
        l, k, k/r, kb/k, kb/r, (h+i+kb)/r}'
    rec "keys_per_observation_$label" - - "$(awk "BEGIN{printf \"%.4f\", $KEYS/$rows}")"
    rec "bytes_per_key_$label" - - "$(awk "BEGIN{printf \"%.2f\", $KBYTES/$KEYS}")"
    rec "bytes_all_$label" - - "$(awk "BEGIN{printf \"%.2f\", ($HEAP+$IDX+$KBYTES)/$rows}")"
  }
  ROWS=$("${PSQL[@]}" -c "SELECT count(*) FROM sightings")
  rec rows - - "$ROWS"
  rec certificates - - "$("${PSQL[@]}" -c "SELECT count(*) FROM certificates")"
  sizes_of fresh "$ROWS"

  # --- latency -------------------------------------------------------------------------------
  IP=$("${PSQL[@]}" -c "SELECT host(ip) FROM observations WHERE ip <<= '172.16.0.0/16' ORDER BY ip LIMIT 1")
  HC=$(( ZIPF / 1000 ))
  SHA1=$("${PSQL[@]}" -c "SELECT encode(decode(md5('c$HC') || substr(md5('s$HC'), 1, 8), 'hex'), 'hex')")
  DOMAIN=$("${PSQL[@]}" -c "SELECT registered_domain FROM certificate_names GROUP BY 1 HAVING count(*) >= 100 ORDER BY count(*), 1 LIMIT 1")
  SUBSTR=h4242 OIP1= OIP2= EXPAND_SEED=
  api_pick_keys
  api_write_sql
  echo "  keys: ip=$IP ($("${PSQL[@]}" -c "SELECT count(*) FROM observations WHERE ip = '$IP'") rows) sha1=$SHA1 ($("${PSQL[@]}" -c "SELECT count(*) FROM observations WHERE sha1 = '\\x$SHA1'") rows)" \
       "suffix=*.$DOMAIN ($("${PSQL[@]}" -c "SELECT count(*) FROM certificate_names WHERE registered_domain = '$DOMAIN'") names)" \
       "substring=*$SUBSTR* ($("${PSQL[@]}" -c "SELECT count(*) FROM names WHERE name LIKE '%$SUBSTR%'") names) overlap=$OIP1,$OIP2 expand seed=$EXPAND_SEED"
  B="http://127.0.0.1:$PORT"
  for conns in $CONNS; do
    stop_server
    $BIN --home "$HOME_DIR" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do curl -fs "$B/healthz" >/dev/null && break; sleep 0.1; done
    [[ " $ONLY " == *" expand "* && ! -s $WORK/expand.sql ]] && api_capture_sql expand "$B" "$LOG"
    echo "  -- $conns connection(s), server pool default; load $(load); ${DURATION}s per run after ${WARMUP}s warm-up"
    echo "  endpoint                               API p50     p99   p99.9     req/s | pgbench p50     p99   p99.9    tps | p99 API/pg"
    for key in $ONLY; do
      api_measure "$key" "$conns" "$B" || exit 1
      errs=""
      (( W_NON2XX + W_SOCKERR > 0 )) && errs=" ($W_NON2XX non-2xx, $W_SOCKERR socket errors!)"
      printf '  %-36s %7.2f %7.2f %7.2f %9s | %11.2f %7.2f %7.2f %6s | %5.1fx%s\n' "${NAMES[$key]}" \
        "$W_P50" "$W_P99" "$W_P999" "$W_RPS" "$PG_P50" "$PG_P99" "$PG_P999" "$PG_TPS" "$(awk "BEGIN{print $W_P99/$PG_P99}")" "$errs"
      rec api_p50 "$key" "$conns" "$W_P50"; rec api_p99 "$key" "$conns" "$W_P99"; rec api_p999 "$key" "$conns" "$W_P999"
      rec api_rps "$key" "$conns" "$W_RPS"; rec api_errors "$key" "$conns" $(( W_NON2XX + W_SOCKERR ))
      rec pg_p50 "$key" "$conns" "$PG_P50"; rec pg_p99 "$key" "$conns" "$PG_P99"; rec pg_p999 "$key" "$conns" "$PG_P999"
      rec pg_tps "$key" "$conns" "$PG_TPS"
    done
  done
  stop_server
  rm -f "$WORK"/*.sql

  # --- import vs COPY ceiling ----------------------------------------------------------------
  # New keys: a certificate per row (md5 of 'm'||i), addresses over the same 10.0.0.0/10.
  FILE=$WORK/import.csv
  "${PSQL[@]}" -c "COPY (SELECT host('10.0.0.0'::inet + ((i * 2654435761) % 4194304)), CASE WHEN i % 10 = 0 THEN 8443 ELSE 443 END,
        md5('m'||i) || '00000000', 1500000000 + (i * 7919) % 300000000, 1500000000 + (i * 7919) % 300000000 + (i % 400) * 86400,
        1 + i % 30, 'scaleimport' FROM generate_series(1::bigint, $IMPORT_ROWS) AS i) TO STDOUT (FORMAT csv)" |
    { echo "ip,port,sha1,first_seen,last_seen,count,source"; cat; } >"$FILE"
  say "import: $IMPORT_ROWS rows through certhist import observations (into $ROWS rows)"
  KEYS_BEFORE=$("${PSQL[@]}" -c "SELECT coalesce(max(id), 0) FROM cert_keys")
  J=$($BIN --home "$HOME_DIR" --json import observations "$FILE")
  IMP=$(python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print(round(o["rows"]/o["seconds"]))' "$J")
  sizes_of after_import "$("${PSQL[@]}" -c "SELECT count(*) FROM sightings")"
  say "removing the imported rows, VACUUM"
  "${PSQL[@]}" -c "DELETE FROM sightings WHERE sources = (SELECT id FROM source_sets WHERE names = '{scaleimport}')" \
    -c "DELETE FROM cert_keys WHERE id > $KEYS_BEFORE" -c "VACUUM sightings" -c "VACUUM cert_keys"
  say "ceiling: COPY of the same rows straight into the same table"
  C=$(DATABASE_URL=$URL scripts/lib/copy-ceiling.sh "$FILE")
  CEIL=$(sed 's/.*ceiling_obs_per_s=//' <<<"$C")
  printf '  import %s rows/s, raw COPY ceiling %s rows/s: %.0f %% of the ceiling (goal ≥ 50 %%); load %s\n' \
    "$IMP" "$CEIL" "$(awk "BEGIN{print 100*$IMP/$CEIL}")" "$(load)"
  rec import_rows_per_s - - "$IMP"; rec ceiling_rows_per_s - - "$CEIL"
  rec load_average - - "$(load | cut -d, -f1)"
  rm -f "$FILE"

  # --- record --------------------------------------------------------------------------------
  { head -1 "$CSV"; tail -n +2 "$CSV" | awk -F, -v s="$size" '$2 != s'; cat "$ROWS_CSV"; } >"$WORK/csv.new"
  mv "$WORK/csv.new" "$CSV"
  if [[ $KEEP == 1 ]]; then
    echo "  kept: $HOME_DIR ($BIN --home $HOME_DIR db url)"
  else
    $BIN --home "$HOME_DIR" db stop >/dev/null; rm -rf "$HOME_DIR"
  fi
done

echo
echo "=================== summary ($CSV)"
python3 scripts/scale-plot.py "$CSV" "$OUT"
say "done; load $(load)"
