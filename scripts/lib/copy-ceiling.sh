#!/usr/bin/env bash
# The raw COPY ceiling of scripts/bench-scale.sh: the rows of an observations CSV (ip, port, sha1
# hex, first_seen and last_seen as Unix seconds, count, source — what `certhist import
# observations` reads) turned into the columns of the observations table (not timed), then
# timed: one COPY of them straight into `observations` through psql (text CSV format, one
# transaction; no staging, no merge, no conflict handling).
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
psql "$URL" -X -q -v ON_ERROR_STOP=1 \
  -c "\\copy observations (ip, port, sha1, first_seen, last_seen, times_seen, sources) FROM '$ROWS_FILE' (FORMAT csv)"
t1=$(date +%s.%N)
awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN{s=b-a; printf "ceiling_obs_rows=%d ceiling_obs_seconds=%.3f ceiling_obs_per_s=%.0f\n", n, s, n/s}'
