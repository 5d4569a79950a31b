#!/usr/bin/env bash
# The in-place conversion to schema V7 (lean observations), measured (issue 15):
#   1. a V6 database from scripts/gen-dataset.sh as of V6 (`git show V6_REV:scripts/gen-dataset.sh`,
#      run with a V6 binary V6_BIN) at SCALE;
#   2. `certhist db upgrade` of it with this tree's binary, SIGKILLed after KILL_AFTER seconds
#      and run again to the end: rows/s, time;
#   3. the same dataset generated fresh on V7 (this tree's gen-dataset.sh), and the checksum of
#      `SELECT … FROM observations ORDER BY ip, port, sha1` of both;
#   4. bytes per observation of the converted and the fresh database (heap, each index, the
#      cert_keys identity rows and the source sets, per observation).
# Usage: V6_BIN=/path/to/v6/certhist scripts/bench-upgrade.sh [WORK]   (SCALE=0.1, KILL_AFTER=20,
#        BIN=target/release/certhist, V6_REV=main)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-${TMPDIR:-/tmp}/certhist-bench-upgrade}
SCALE=${SCALE:-0.1}
KILL_AFTER=${KILL_AFTER:-20}
BIN=${BIN:-target/release/certhist}
V6_BIN=${V6_BIN:?a certhist binary of schema V6}
V6_REV=${V6_REV:-main}
mkdir -p "$WORK/scripts"
say() { echo "[$(date -u +%H:%M:%S)] $*"; }
git show "$V6_REV:scripts/gen-dataset.sh" >"$WORK/scripts/gen-v6.sh"
chmod +x "$WORK/scripts/gen-v6.sh"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  cores: $(nproc)  commit: $(git rev-parse --short HEAD)  load: $(cut -d' ' -f1-3 /proc/loadavg)"

say "V6 dataset (SCALE=$SCALE) with $V6_BIN"
BIN=$V6_BIN SCALE=$SCALE "$WORK/scripts/gen-v6.sh" "$WORK/v6" | tail -3
V6_URL=$($V6_BIN --home "$WORK/v6" db url)
say "V6: $(psql "$V6_URL" -XAtq -c "SELECT count(*) || ' rows, ' || round(pg_total_relation_size('observations')::numeric / count(*), 1) || ' B/observation' FROM observations")"

say "db upgrade, killed after ${KILL_AFTER}s"
t0=$(date +%s.%N)
$BIN --home "$WORK/v6" --json db upgrade >"$WORK/upgrade1.ndjson" 2>"$WORK/upgrade1.err" &
pid=$!
sleep "$KILL_AFTER"
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
tail -1 "$WORK/upgrade1.ndjson"
say "running again"
$BIN --home "$WORK/v6" --json db upgrade >"$WORK/upgrade2.ndjson"
t1=$(date +%s.%N)
head -1 "$WORK/upgrade2.ndjson"
tail -2 "$WORK/upgrade2.ndjson"
say "conversion wall time including the migration, the kill and the restart: $(echo "$t1 - $t0" | bc) s"

say "fresh V7 dataset (SCALE=$SCALE)"
BIN=$BIN SCALE=$SCALE scripts/gen-dataset.sh "$WORK/v7" | tail -3
V7_URL=$($BIN --home "$WORK/v7" db url)

sum() {
  # md5 of the rows' md5s in key order (a string of every row would pass 1 GB at 10 M rows).
  psql "$1" -XAtq -c "SET TIME ZONE 'UTC'" -c "SET work_mem = '256MB'" -c "SELECT count(*), md5(string_agg(md5(format('%s|%s|%s|%s|%s|%s|%s', ip, port,
      encode(sha1, 'hex'), first_seen, last_seen, times_seen, sources)), '' ORDER BY ip, port, sha1)) FROM observations"
}
sizes() {
  psql "$1" -XAtq -c "VACUUM ANALYZE sightings, cert_keys, source_sets" -c "SELECT
    '$2: ' || n || ' rows; heap ' || round(h::numeric / n, 1) || ' + pkey ' || round(p::numeric / n, 1)
    || ' + reverse ' || round(r::numeric / n, 1) || ' = ' || round((h + p + r)::numeric / n, 1)
    || ' B/observation; cert_keys ' || k || ' rows, ' || round(kt::numeric / k, 1) || ' B/row = '
    || round(kt::numeric / n, 1) || ' B/observation; source_sets ' || sn || ' rows, ' || st || ' B; total '
    || round((h + p + r + kt + st)::numeric / n, 1) || ' B/observation'
    FROM (SELECT (SELECT count(*) FROM sightings) n, pg_relation_size('sightings') h,
                 pg_relation_size('sightings_pkey') p, pg_relation_size('sightings_cert_id_idx') r,
                 (SELECT count(*) FROM cert_keys) k, pg_total_relation_size('cert_keys') kt,
                 (SELECT count(*) FROM source_sets) sn, pg_total_relation_size('source_sets') st) x"
}
say "checksum converted: $(sum "$V6_URL")"
say "checksum fresh V7:  $(sum "$V7_URL")"
sizes "$V6_URL" converted
sizes "$V7_URL" fresh
