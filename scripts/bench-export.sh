#!/usr/bin/env bash
# Export memory benchmark (issue 14): a certificate served by BENCH_ROWS (1,000,000) addresses,
# generated directly in SQL, exported as a reverse search (`certhist export --format F cert SHA1`)
# in every format under /usr/bin/time -v. Prints rows, bytes, seconds and peak RSS of each export
# next to the same binary's peak RSS for a 1-row export (the baseline) and the ceiling
# BENCH_RSS_CEILING_MB (default 256): streamed exports stay far below it whatever the row count.
# Database: TEST_DATABASE_URL if set, else a managed cluster on a temporary home (never the
# system Postgres). PROFILE=debug uses the debug binary (no release build on a busy machine);
# BENCH_FORMATS="misp" measures some formats only.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_ROWS:-1000000}
CEILING_MB=${BENCH_RSS_CEILING_MB:-256}
FORMATS=${BENCH_FORMATS:-ndjson csv stix misp}
PROFILE=${PROFILE:-release}
command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time not found: apt-get install -y time" >&2; exit 1; }
if [ "$PROFILE" = release ]; then
  cargo build --release -q --bin certhist; BIN=target/release/certhist
else
  cargo build -q --bin certhist; BIN=target/debug/certhist
fi
WORK=$(mktemp -d)
chmod o+x "$WORK"  # the managed cluster runs as the `postgres` account when root
STARTED_CLUSTER=
cleanup() {
  if [ -n "$STARTED_CLUSTER" ]; then "$BIN" --home "$WORK/home" db stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  export DATABASE_URL=$TEST_DATABASE_URL
  C=("$BIN")
else
  C=("$BIN" --home "$WORK/home")
  "${C[@]}" db start >/dev/null
  STARTED_CLUSTER=1
fi
URL=${DATABASE_URL:-$("${C[@]}" db url)}
PSQL=(psql "$URL" -X -q -At -v ON_ERROR_STOP=1)

# One real certificate (stored DER: the STIX and MISP exports carry its fields and PEM).
"${C[@]}" import certs tests/data/demo/certs.pem >/dev/null 2>&1
SHA1=390917308a9acfd9af6fbe16586c31eaf62a3bd5
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  cores: $(nproc)  commit: $(git rev-parse --short HEAD)  profile: $PROFILE"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "generating $N hosts of $SHA1 in SQL …"
"${PSQL[@]}" -c "INSERT INTO cert_keys (sha1) VALUES ('\\x$SHA1'), ('\\x876020057ffa1c2993f6b0f6dd3e6a5cb70ff499')
    ON CONFLICT (sha1) DO NOTHING;
  DELETE FROM sightings WHERE cert_id = (SELECT id FROM cert_keys WHERE sha1 = '\\x$SHA1');
  INSERT INTO sightings (cert_id, first_seen, last_seen, times_seen, port, sources, ip)
  SELECT (SELECT id FROM cert_keys WHERE sha1 = '\\x$SHA1'),
         s2k(timestamptz '2025-01-01' + make_interval(secs => i)), s2k(timestamptz '2025-06-01' + make_interval(secs => i * 2)),
         1 + i % 97, ((CASE WHEN i % 3 = 0 THEN 8443 ELSE 443 END) - 32768)::smallint, source_set_id('{bench}'),
         '10.0.0.0'::inet + i
  FROM generate_series(1, $N) i;
  INSERT INTO sightings (cert_id, first_seen, last_seen, times_seen, port, sources, ip)
  SELECT id, s2k('2025-01-01'), s2k('2025-01-02'), 1, (443 - 32768)::smallint, source_set_id('{bench}'), '192.0.2.1'
  FROM cert_keys WHERE sha1 = '\\x876020057ffa1c2993f6b0f6dd3e6a5cb70ff499'
  ON CONFLICT DO NOTHING;
  ANALYZE sightings;"

measure() { # label args...
  local label=$1; shift
  local out="$WORK/out" tv="$WORK/time"
  /usr/bin/time -v -o "$tv" "${C[@]}" export -o "$out" "$@"
  local rss secs bytes lines
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tv")
  bytes=$(stat -c %s "$out")
  lines=$(wc -l <"$out")
  printf '%-28s %10s bytes %9s lines  wall %8s  peak RSS %7.1f MB\n' "$label" "$bytes" "$lines" "$secs" "$(echo "$rss / 1024" | bc -l)"
  echo "$rss" >"$WORK/rss.$label"
}
measure baseline-1-row --format ndjson cert 876020057ffa1c2993f6b0f6dd3e6a5cb70ff499
for f in $FORMATS; do
  measure "$f-$N-rows" --format "$f" cert "$SHA1"
done
base=$(cat "$WORK/rss.baseline-1-row")
worst=0
for f in $FORMATS; do
  r=$(cat "$WORK/rss.$f-$N-rows"); [ "$r" -gt "$worst" ] && worst=$r
done
printf 'peak RSS: worst %.1f MB (baseline %.1f MB) — ceiling %d MB: %s\n' \
  "$(echo "$worst / 1024" | bc -l)" "$(echo "$base / 1024" | bc -l)" "$CEILING_MB" \
  "$([ "$worst" -le $((CEILING_MB * 1024)) ] && echo OK || echo OVER)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
