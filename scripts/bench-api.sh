#!/usr/bin/env bash
# HTTP load on the certhist API next to pgbench on the same SQL, in one run, on the dataset of
# scripts/gen-dataset.sh. Prints p99 latency and throughput of each endpoint beside pgbench's.
# Usage: scripts/bench-api.sh [BENCH_HOME]   (DURATION=15 CONNS=8 to change the load)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_HOME=${1:-${BENCH_HOME:-/tmp/certhist-bench}}
DURATION=${DURATION:-15}
CONNS=${CONNS:-8}
PORT=${PORT:-18080}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
command -v pgbench >/dev/null || { echo "pgbench not found: apt-get install -y postgresql-contrib" >&2; exit 1; }

cargo build --release -q --bin certhist
BIN=target/release/certhist
$BIN --home "$BENCH_HOME" db start >/dev/null   # starts the cluster, creates and migrates the database
URL=$($BIN --home "$BENCH_HOME" db url)
PSQL=(psql "$URL" -X -q -At -v ON_ERROR_STOP=1)
WORK=$(mktemp -d)
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

$BIN --home "$BENCH_HOME" serve --listen "127.0.0.1:$PORT" --max-connections "$CONNS" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

# Sample keys: an address with a multi-year history, a certificate on 1000 addresses, a suffix.
IP=$("${PSQL[@]}" -c "SELECT host(ip) FROM observations WHERE ip <<= '172.16.0.0/16' LIMIT 1")
SHA1=$("${PSQL[@]}" -c "SELECT encode(decode(md5('c100') || substr(md5('s100'), 1, 8), 'hex'), 'hex')")
DOMAIN=$("${PSQL[@]}" -c "SELECT registered_domain FROM certificate_names LIMIT 1 OFFSET 4242")
echo "dataset: $("${PSQL[@]}" -c "SELECT (SELECT reltuples::bigint FROM pg_class WHERE relname='certificates') || ' certificates, ' || (SELECT reltuples::bigint FROM pg_class WHERE relname='observations') || ' observations'")"
echo "keys: ip=$IP sha1=$SHA1 suffix=*.$DOMAIN; $CONNS connections, ${DURATION}s each"

# The SQL the API runs (store/src/read/*.sql), with the request's parameters as literals.
SUMMARY="c.sha1, c.sha256, c.serial, c.subject_cn, c.subject_o, c.issuer_cn, c.issuer_o, c.not_before, c.not_after, c.is_ca, c.is_precert, c.parse_error"
cat >"$WORK/ip.sql" <<SQL
SELECT o.ip, o.port, o.sha1, o.first_seen, o.last_seen, o.times_seen, o.sources, c.sha1 IS NOT NULL, $SUMMARY
FROM observations o LEFT JOIN certificates c ON c.sha1 = o.sha1
WHERE o.ip <<= '$IP'::text::cidr AND (NULL::timestamptz IS NULL OR o.last_seen >= NULL) AND (NULL::timestamptz IS NULL OR o.first_seen <= NULL)
  AND (NULL::inet IS NULL OR (o.ip, o.port, o.sha1) > (NULL, NULL, NULL)) ORDER BY o.ip, o.port, o.sha1 LIMIT 101;
SQL
cat >"$WORK/hosts.sql" <<SQL
SELECT ip, port, first_seen, last_seen, times_seen, sources FROM observations
WHERE sha1 = '\\x$SHA1' AND (NULL::timestamptz IS NULL OR last_seen >= NULL) AND (NULL::timestamptz IS NULL OR first_seen <= NULL)
  AND (NULL::inet IS NULL OR (ip, port) > (NULL, NULL)) ORDER BY ip, port LIMIT 101;
SQL
REV=$(echo ".$DOMAIN" | rev)
cat >"$WORK/search.sql" <<SQL
SELECT h.matched, $SUMMARY FROM (
  SELECT DISTINCT n.name AS matched, n.sha1 FROM certificate_names n
  WHERE n.name IN (SELECT d.name FROM names d WHERE reverse(d.name) LIKE '$REV%') AND n.kinds & 31 <> 0
    AND (NULL::text IS NULL OR (n.name, n.sha1) > (NULL, NULL)) ORDER BY 1, 2 LIMIT 101) h
JOIN certificates c ON c.sha1 = h.sha1 ORDER BY h.matched, c.sha1;
SQL

run() { # name path sqlfile
  local name=$1 path=$2 sql=$3
  local threads=$(( CONNS < 2 ? 1 : 2 ))
  local out; out=$(wrk -t"$threads" -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT$path")
  local rps; rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  local p99; p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  local errs; errs=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  (cd "$WORK" && rm -f pgbench_log.* && pgbench -n -M extended -c "$CONNS" -j 2 -T "$DURATION" -l -f "$sql" "$URL" >pgbench.out 2>&1)
  local tps; tps=$(awk '/^tps/ {print $3; exit}' "$WORK/pgbench.out")
  local pg99; pg99=$(cat "$WORK"/pgbench_log.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {printf "%.2fms", a[int(NR*0.99)]/1000}')
  printf '%-34s API p99 %-9s %9s req/s %s| pgbench p99 %-9s %9s tps | API/pgbench %5.1f%%\n' \
    "$name" "$p99" "$rps" "${errs:+($errs non-2xx) }" "$pg99" "$tps" "$(awk "BEGIN{print 100*$rps/$tps}")"
}
run "GET /ip/{ip} (goal p99 10 ms)" "/api/v1/ip/$IP" ip.sql
run "GET /certificates/{h}/hosts (10 ms)" "/api/v1/certificates/$SHA1/hosts" hosts.sql
run "GET /search name *.suffix (50 ms)" "/api/v1/search?field=name&q=*.$DOMAIN" search.sql
