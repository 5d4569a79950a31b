#!/usr/bin/env bash
# HTTP load on the certhist API next to pgbench on the same SQL, in one run, on the dataset of
# scripts/gen-dataset.sh (issue 6, tail latency issue 17). For each connection count and each
# endpoint: wrk (p50 / p99 / p99.9, req/s), then pgbench running every statement the request
# runs (one pgbench transaction = one request's statements, literal parameters, -M extended),
# then the server's own stage split (`serve --stage-timing`, /debug/stage-timing).
#
# Usage: scripts/bench-api.sh [BENCH_HOME]
#   CONNS="1 8 32"   connection counts (wrk connections = pgbench clients)
#   POOL=N           database pool of the server (default: the connection count; POOL=default
#                    leaves --max-connections to the server's default)
#   DURATION=10      seconds per measurement;  WARMUP=2 seconds of unmeasured load first
#   ONLY="ip hosts"  a subset of: ip hosts suffix substring overlap uiip
#   STAGES=0         skip the stage split lines
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

# Sample keys: an address with a multi-year history (2000 certificates), a certificate on 1000
# addresses, a registered domain (suffix search), a substring (~111 names), two addresses that
# share certificates (the Zipf-shared ones).
IP=$("${PSQL[@]}" -c "SELECT host(ip) FROM observations WHERE ip <<= '172.16.0.0/16' LIMIT 1")
SHA1=$("${PSQL[@]}" -c "SELECT encode(decode(md5('c100') || substr(md5('s100'), 1, 8), 'hex'), 'hex')")
DOMAIN=$("${PSQL[@]}" -c "SELECT registered_domain FROM certificate_names LIMIT 1 OFFSET 4242")
SUBSTR=h4242
read -r OIP1 OIP2 < <("${PSQL[@]}" -F' ' -c "SELECT host(ip) FROM observations WHERE sha1 = decode(md5('c1') || substr(md5('s1'), 1, 8), 'hex') ORDER BY ip LIMIT 2" | paste -sd' ')
echo "dataset: $("${PSQL[@]}" -c "SELECT (SELECT reltuples::bigint FROM pg_class WHERE relname='certificates') || ' certificates, ' || (SELECT reltuples::bigint FROM pg_class WHERE relname='observations') || ' observations'")"
echo "keys: ip=$IP sha1=$SHA1 suffix=*.$DOMAIN substring=*$SUBSTR* overlap=$OIP1,$OIP2"
echo "machine: $(nproc) cores; $(uptime | sed 's/.*load/load/'); ${DURATION}s per run after ${WARMUP}s warm-up"

# --- The SQL each request runs (store/src/read), parameters bound as literals -------------------
# bind FILE v1 v2 …: the file with $1, $2, … replaced by the literals (as typed parameters).
bind() {
  local file=$1; shift
  local i=1 envs=()
  for v in "$@"; do envs+=("P$i=$v"); i=$((i + 1)); done
  env "${envs[@]}" perl -pe 's/\$(\d+)/exists $ENV{"P$1"} ? $ENV{"P$1"} : "\$$1"/ge' "$file"
}
NOW="NULL::timestamptz"
# The tags of a page (tags_touching.sql): ips, sha1s (array literals), covering IPv4 block.
tags_sql() { bind store/src/read/tags_touching.sql "'$1'::inet[]" "'$2'::bytea[]" "'{}'::text[]" "$3" "NULL::text"; echo ";"; }
# Array literals and covering block of a page: query → "ips|sha1s|cover".
# The statements select two columns named sha1 (observation, certificate): the first columns
# of a page are renamed by position.
page_keys() { # sql-without-semicolon ip-column sha1-column column-names
  "${PSQL[@]}" -c "SELECT coalesce(array_agg(DISTINCT $2)::text, '{}'), coalesce(array_agg($3)::text, '{}'),
                          coalesce(quote_literal(text(inet_merge(min($2), max($2)))), 'NULL') || '::text'
                   FROM ($1) page($4)"
}
page_sha1s() { # sql-without-semicolon sha1-column (the first)
  "${PSQL[@]}" -c "SELECT coalesce(array_agg($2)::text, '{}') FROM ($1) page(c1, c2)"
}

# /api/v1/ip/{ip}: ip_history (limit 101) + the page's tags.
IP_SQL=$(bind store/src/read/ip_history.sql "'$IP'::text" $NOW $NOW "NULL::inet" "NULL::int4" "NULL::bytea" "101::int8")
IFS='|' read -r IPS SHAS COVER < <(page_keys "$IP_SQL" ip sha1 "ip, port, sha1, c4, c5, c6, c7, c8, c9")
{ echo "$IP_SQL;"; tags_sql "$IPS" "$SHAS" "$COVER"; } >"$WORK/ip.sql"
# /ip/{ip} HTML page: the same two, then "also on N other addresses" for the 100 shown.
UI_SHAS=$(page_sha1s "SELECT DISTINCT sha1, 0 FROM (SELECT sha1 FROM ($IP_SQL) h(ip, port, sha1, c4, c5, c6, c7, c8, c9) LIMIT 100) h" c1)
{ cat "$WORK/ip.sql"
  echo "SELECT s.sha1, (SELECT count(*) FROM (SELECT DISTINCT o.ip FROM observations o WHERE o.sha1 = s.sha1 LIMIT 51) d)
        FROM unnest('$UI_SHAS'::bytea[]) AS s(sha1);"; } >"$WORK/uiip.sql"
# /api/v1/certificates/{h}/hosts: cert_hosts (limit 101) + the page's tags.
HOSTS_SQL=$(bind store/src/read/cert_hosts.sql "'\\x$SHA1'::bytea" $NOW $NOW "NULL::inet" "NULL::int4" "101::int8")
IFS='|' read -r IPS _ COVER < <(page_keys "$HOSTS_SQL" ip "NULL::bytea" "ip, port")
{ echo "$HOSTS_SQL;"; tags_sql "$IPS" "{}" "$COVER"; } >"$WORK/hosts.sql"
# /api/v1/search?field=name: the statement search_filtered builds (store/src/read/search.rs)
# + the tags of the page's certificates.
SUMMARY="c.sha1, c.sha256, c.serial, c.subject_cn, c.subject_o, c.issuer_cn, c.issuer_o, c.not_before, c.not_after, c.is_ca, c.is_precert, c.parse_error"
search_sql() { # names-condition
  echo "SELECT h.matched, $SUMMARY FROM (
  SELECT DISTINCT n.name AS matched, n.sha1 FROM certificate_names n
  WHERE n.name IN (SELECT d.name FROM names d WHERE $1) AND n.kinds & 31::int2 <> 0
    AND (NULL::text IS NULL OR (n.name, n.sha1) > (NULL::text, NULL::bytea)) ORDER BY 1, 2 LIMIT 101::int8) h
JOIN certificates c ON c.sha1 = h.sha1 ORDER BY h.matched, c.sha1"
}
REV=$(echo ".$DOMAIN" | rev)
for kind in suffix substring; do
  if [[ $kind == suffix ]]; then S=$(search_sql "reverse(d.name) LIKE '$REV%'"); else S=$(search_sql "d.name LIKE '%$SUBSTR%'"); fi
  { echo "$S;"; tags_sql "{}" "$(page_sha1s "$S" c2)" "NULL::text"; } >"$WORK/$kind.sql"
done
# /api/v1/overlap?ip=A&ip=B: overlap_by_ips (limit 101) + the tags of the certificates.
OV_SQL=$(bind store/src/read/overlap_by_ips.sql "'{$OIP1,$OIP2}'::inet[]" $NOW $NOW "2::int8" "NULL::bytea" "101::int8")
{ echo "$OV_SQL;"; tags_sql "{}" "$(page_sha1s "$OV_SQL" c1)" "NULL::text"; } >"$WORK/overlap.sql"

declare -A PATHS=(
  [ip]="/api/v1/ip/$IP"
  [hosts]="/api/v1/certificates/$SHA1/hosts"
  [suffix]="/api/v1/search?field=name&q=*.$DOMAIN"
  [substring]="/api/v1/search?field=name&q=*$SUBSTR*"
  [overlap]="/api/v1/overlap?ip=$OIP1&ip=$OIP2"
  [uiip]="/ip/$IP"
)
declare -A NAMES=(
  [ip]="GET /api/v1/ip/{ip}" [hosts]="GET /api/v1/certificates/{h}/hosts" [suffix]="GET /api/v1/search *.suffix"
  [substring]="GET /api/v1/search *substring*" [overlap]="GET /api/v1/overlap ip=A&ip=B" [uiip]="GET /ip/{ip} HTML page"
)

percentiles() { # file of microsecond latencies → "p50 p99 p99.9" in ms
  sort -n "$1" | awk '{a[NR]=$1} END {n=NR; if (n == 0) {print "- - -"; exit}
    i50=int(n*0.5); i99=int(n*0.99); i999=int(n*0.999); if (i50<1) i50=1; if (i99<1) i99=1; if (i999<1) i999=1;
    printf "%.2f %.2f %.2f\n", a[i50]/1000, a[i99]/1000, a[i999]/1000}'
}

run() { # key conns
  local key=$1 conns=$2 path=${PATHS[$1]}
  local threads=$(( conns < 2 ? 1 : 2 ))
  local base="http://127.0.0.1:$PORT"
  local code; code=$(curl -s -o /dev/null -w '%{http_code}' "$base$path")
  [[ $code == 200 ]] || { echo "$key: $path answered $code" >&2; exit 1; }
  (( WARMUP > 0 )) && wrk -t"$threads" -c"$conns" -d"${WARMUP}s" "$base$path" >/dev/null
  curl -fs -X DELETE "$base/debug/stage-timing" >/dev/null
  local out; out=$(wrk -t"$threads" -c"$conns" -d"${DURATION}s" -s scripts/wrk-percentiles.lua "$base$path")
  local stats; stats=$(grep '^WRKSTATS' <<<"$out")
  local -A w; local kv
  for kv in ${stats#WRKSTATS }; do w[${kv%%=*}]=${kv#*=}; done
  local rps; rps=$(awk "BEGIN{printf \"%.0f\", ${w[requests]}/${w[seconds]}}")
  local report; report=$(curl -fs "$base/debug/stage-timing")
  (cd "$WORK" && rm -f pgbench_log.* && pgbench -n -M extended -c "$conns" -j "$threads" -T "$DURATION" -l -f "$key.sql" "$URL" >pgbench.out 2>&1) \
    || { echo "pgbench failed on $key:" >&2; cat "$WORK/pgbench.out" >&2; exit 1; }
  local tps; tps=$(awk '/^tps/ {printf "%.0f", $3; exit}' "$WORK/pgbench.out")
  cat "$WORK"/pgbench_log.* | awk '{print $3}' >"$WORK/lat"
  local pg50 pg99 pg999; read -r pg50 pg99 pg999 < <(percentiles "$WORK/lat")
  local errs=""
  (( w[non2xx] + w[socket_errors] > 0 )) && errs=" (${w[non2xx]} non-2xx, ${w[socket_errors]} socket errors!)"
  printf '%-5s %-34s API %7.2f %7.2f %7.2f ms %6s/s | pgbench %7.2f %7.2f %7.2f ms %6s/s | p99 %4.1fx  thr %3.0f%%%s\n' \
    "$conns" "${NAMES[$key]}" "${w[p50]}" "${w[p99]}" "${w[p999]}" "$rps" "$pg50" "$pg99" "$pg999" "$tps" \
    "$(awk "BEGIN{print ${w[p99]}/$pg99}")" "$(awk "BEGIN{print 100*$rps/$tps}")" "$errs"
  if [[ $STAGES == 1 ]]; then
    # The busiest route of the report (the one wrk hit), p50 / p99 of each stage.
    jq -r '.routes | max_by(.requests) | "      stages p50/p99 ms (" + (.statements_per_request|tostring) + " stmts/req): "
      + (.stages as $s | ["pool_wait", "query", "decode", "serialise", "write", "other", "total"]
         | map("\(.) \($s[.].p50/1000*100|round/100)/\($s[.].p99/1000*100|round/100)") | join("  "))' <<<"$report"
  fi
}

for conns in $CONNS; do
  pool=${POOL:-$conns}
  stop_server
  pool_args=()
  [[ $pool != default ]] && pool_args=(--max-connections "$pool")
  $BIN --home "$BENCH_HOME" serve --listen "127.0.0.1:$PORT" "${pool_args[@]}" --stage-timing >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  echo
  echo "== $conns connection(s), server pool $pool; $(uptime | sed 's/.*load/load/')"
  echo "conns endpoint                               p50     p99   p99.9            |         p50     p99   p99.9                | API/pgbench (goal p99 ≤ 3x, thr ≥ 60 %)"
  for key in $ONLY; do run "$key" "$conns"; done
done
stop_server
echo "done; $(uptime | sed 's/.*load/load/')"
