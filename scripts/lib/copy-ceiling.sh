#!/usr/bin/env bash
# The raw COPY ceiling of scripts/bench-scale.sh: the rows of an observations CSV (ip, port, sha1
# hex, first_seen and last_seen as Unix seconds, count, source — what `certhist import
# observations` reads) turned into the columns of the old observations table (not timed), then
# timed, in one transaction through psql: one COPY of them into a temporary table (text CSV
# format), the certificate keys they need (`cert_keys`, in SHA-1 order) and one INSERT … SELECT
# into `sightings` (schema V7) — no merge, no conflict handling.
# Usage: DATABASE_URL=… copy-ceiling.sh [ceiling-obs] FILE   → prints ceiling_obs_rows= … ceiling_obs_per_s=
set -euo pipefail
[[ ${1:-} == ceiling-obs ]] && shift
FILE=$1
URL=${DATABASE_URL:?set DATABASE_URL}
ROWS_FILE=$(mktemp)
trap 'rm -f "$ROWS_FILE"' EXIT
perl -MPOSIX=strftime -F, -lane '
  next if $. == 1;
  my $t = sub { strftime("%Y-%m-%d %H:%M:%S+00", gmtime($_[0])) };
  print join(",", $F[0], $F[1], "\\x$F[2]", $t->($F[3]), $t->($F[4]), $F[5], "{$F[6]}");' "$FILE" >"$ROWS_FILE"
n=$(wc -l <"$ROWS_FILE")
t0=$(date +%s.%N)
psql "$URL" -X -q -v ON_ERROR_STOP=1 -1 \
  -c "CREATE TEMP TABLE ceiling_obs (ip inet, port integer, sha1 bytea, first_seen timestamptz,
        last_seen timestamptz, times_seen bigint, sources text[])" \
  -c "\\copy ceiling_obs FROM '$ROWS_FILE' (FORMAT csv)" \
  -c "INSERT INTO cert_keys (sha1) SELECT DISTINCT sha1 FROM ceiling_obs ORDER BY sha1 ON CONFLICT (sha1) DO NOTHING" \
  -c "SELECT count(source_set_id(sources)) FROM (SELECT DISTINCT sources FROM ceiling_obs) d" \
  -c "INSERT INTO sightings (cert_id, first_seen, last_seen, times_seen, port, sources, ip)
      SELECT k.id, s2k(o.first_seen), s2k(o.last_seen), least(o.times_seen, 2147483647)::integer,
             (o.port - 32768)::smallint, ss.id, o.ip
      FROM ceiling_obs o JOIN cert_keys k ON k.sha1 = o.sha1 JOIN source_sets ss ON ss.names = o.sources" >/dev/null
t1=$(date +%s.%N)
awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN{s=b-a; printf "ceiling_obs_rows=%d ceiling_obs_seconds=%.3f ceiling_obs_per_s=%.0f\n", n, s, n/s}'
