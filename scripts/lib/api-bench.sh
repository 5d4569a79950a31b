# Shared pieces of scripts/bench-api.sh and scripts/bench-scale.sh (sourced, not run): the SQL
# each API request runs with its parameters bound as literals (for pgbench), the request paths,
# and one measurement of an endpoint with wrk and with pgbench on the same SQL.
#
# The caller sets: URL (the database), PSQL (an array: psql "$URL" -X -q -At -v ON_ERROR_STOP=1),
# WORK (a scratch directory), and may preset the sample keys (IP SHA1 DOMAIN SUBSTR OIP1 OIP2,
# EXPAND_SEED); api_pick_keys fills in the ones left empty.

# Sample keys: an address with a multi-year history (2000 certificates), a certificate on 1000
# addresses, a registered domain (suffix search), a substring (~111 names), two addresses that
# share certificates (the Zipf-shared ones). The defaults fit scripts/gen-dataset.sh at SCALE=1.
api_pick_keys() {
  [[ -n ${IP:-} ]] || IP=$("${PSQL[@]}" -c "SELECT host(ip) FROM observations WHERE ip <<= '172.16.0.0/16' LIMIT 1")
  [[ -n ${SHA1:-} ]] || SHA1=$("${PSQL[@]}" -c "SELECT encode(decode(md5('c100') || substr(md5('s100'), 1, 8), 'hex'), 'hex')")
  [[ -n ${DOMAIN:-} ]] || DOMAIN=$("${PSQL[@]}" -c "SELECT registered_domain FROM certificate_names LIMIT 1 OFFSET 4242")
  [[ -n ${SUBSTR:-} ]] || SUBSTR=h4242
  if [[ -z ${OIP1:-} || -z ${OIP2:-} ]]; then
    read -r OIP1 OIP2 < <("${PSQL[@]}" -F' ' -c "SELECT host(ip) FROM observations WHERE sha1 = decode(md5('c1') || substr(md5('s1'), 1, 8), 'hex') ORDER BY ip LIMIT 2" | paste -sd' ')
  fi
  [[ -n ${EXPAND_SEED:-} ]] || EXPAND_SEED=$IP
}

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

# Writes $WORK/KEY.sql for ip uiip hosts suffix substring overlap (one pgbench transaction = the
# statements of one request) and fills PATHS and NAMES.
api_write_sql() {
  # /api/v1/ip/{ip}: ip_history (limit 101) + the page's tags.
  local IP_SQL IPS SHAS COVER UI_SHAS HOSTS_SQL S REV OV_SQL kind
  IP_SQL=$(bind store/src/read/ip_history.sql "'$IP'::text" $NOW $NOW "NULL::inet" "NULL::int4" "NULL::bytea" "101::int8")
  IFS='|' read -r IPS SHAS COVER < <(page_keys "$IP_SQL" ip sha1 "ip, port, sha1, c4, c5, c6, c7, c8, c9")
  { echo "$IP_SQL;"; tags_sql "$IPS" "$SHAS" "$COVER"; } >"$WORK/ip.sql"
  # /ip/{ip} HTML page: the same two, then "also on N other addresses" for the 100 shown.
  UI_SHAS=$(page_sha1s "SELECT DISTINCT sha1, 0 FROM (SELECT sha1 FROM ($IP_SQL) h(ip, port, sha1, c4, c5, c6, c7, c8, c9) LIMIT 100) h" c1)
  { cat "$WORK/ip.sql"
    echo "SELECT s.sha1, (SELECT count(*) FROM (SELECT DISTINCT o.ip FROM cert_keys k JOIN sightings o ON o.cert_id = k.id WHERE k.sha1 = s.sha1 LIMIT 51) d)
          FROM unnest('$UI_SHAS'::bytea[]) AS s(sha1);"; } >"$WORK/uiip.sql"
  # /api/v1/certificates/{h}/hosts: cert_hosts (limit 101) + the page's tags.
  HOSTS_SQL=$(bind store/src/read/cert_hosts.sql "'\\x$SHA1'::bytea" $NOW $NOW "NULL::inet" "NULL::int4" "101::int8")
  IFS='|' read -r IPS _ COVER < <(page_keys "$HOSTS_SQL" ip "NULL::bytea" "ip, port")
  { echo "$HOSTS_SQL;"; tags_sql "$IPS" "{}" "$COVER"; } >"$WORK/hosts.sql"
  # /api/v1/search?field=name: the statement search_filtered builds (store/src/read/search.rs)
  # + the tags of the page's certificates.
  REV=$(echo ".$DOMAIN" | rev)
  for kind in suffix substring; do
    if [[ $kind == suffix ]]; then S=$(api_search_sql "reverse(d.name) LIKE '$REV%'"); else S=$(api_search_sql "d.name LIKE '%$SUBSTR%'"); fi
    { echo "$S;"; tags_sql "{}" "$(page_sha1s "$S" c2)" "NULL::text"; } >"$WORK/$kind.sql"
  done
  # /api/v1/overlap?ip=A&ip=B: overlap_by_ips (limit 101) + the tags of the certificates.
  OV_SQL=$(bind store/src/read/overlap_by_ips.sql "'{$OIP1,$OIP2}'::inet[]" $NOW $NOW "2::int8" "NULL::bytea" "101::int8")
  { echo "$OV_SQL;"; tags_sql "{}" "$(page_sha1s "$OV_SQL" c1)" "NULL::text"; } >"$WORK/overlap.sql"

  PATHS=(
    [ip]="/api/v1/ip/$IP"
    [hosts]="/api/v1/certificates/$SHA1/hosts"
    [suffix]="/api/v1/search?field=name&q=*.$DOMAIN"
    [substring]="/api/v1/search?field=name&q=*$SUBSTR*"
    [overlap]="/api/v1/overlap?ip=$OIP1&ip=$OIP2"
    [uiip]="/ip/$IP"
    [expand]="/api/v1/expand?seed=$EXPAND_SEED"
  )
}
declare -A PATHS=()
declare -A NAMES=(
  [ip]="GET /api/v1/ip/{ip}" [hosts]="GET /api/v1/certificates/{h}/hosts" [suffix]="GET /api/v1/search *.suffix"
  [substring]="GET /api/v1/search *substring*" [overlap]="GET /api/v1/overlap ip=A&ip=B" [uiip]="GET /ip/{ip} HTML page"
  [expand]="GET /api/v1/expand seed=IP (2 hops)"
)
SUMMARY="c.sha1, c.sha256, c.serial, c.subject_cn, c.subject_o, c.issuer_cn, c.issuer_o, c.not_before, c.not_after, c.is_ca, c.is_precert, c.parse_error"
api_search_sql() { # names-condition
  echo "SELECT h.matched, $SUMMARY FROM (
  SELECT DISTINCT n.name AS matched, n.sha1 FROM certificate_names n
  WHERE n.name IN (SELECT d.name FROM names d WHERE $1) AND n.kinds & 31::int2 <> 0
    AND (NULL::text IS NULL OR (n.name, n.sha1) > (NULL::text, NULL::bytea)) ORDER BY 1, 2 LIMIT 101::int8) h
JOIN certificates c ON c.sha1 = h.sha1 ORDER BY h.matched, c.sha1"
}

# api_capture_sql KEY BASE LOGFILE: runs the request PATHS[KEY] once against the server at BASE
# with statement logging switched on (ALTER SYSTEM, reset afterwards) and writes the statements
# the server ran, parameters bound as literals, to $WORK/KEY.sql. For requests whose statements
# depend on earlier results (/expand walks a graph: seeds, hop by hop, node details), this is the
# exact sequence of that request. LOGFILE: the cluster's log (`certhist db status`).
api_capture_sql() {
  local key=$1 base=$2 log=$3 mark
  "${PSQL[@]}" -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  mark=$(stat -c %s "$log")
  curl -fs -o /dev/null "$base${PATHS[$key]}" || { echo "$key: ${PATHS[$key]} failed" >&2; return 1; }
  sleep 0.5
  "${PSQL[@]}" -c "ALTER SYSTEM RESET log_statement" -c "SELECT pg_reload_conf()" >/dev/null
  # Log entries: "… LOG:  execute <name>: SQL" (continuation lines start with a tab), then
  # "… DETAIL:  parameters: $1 = '…', $2 = NULL". Statements of our own psql are left out.
  tail -c +"$((mark + 1))" "$log" | perl -e '
    my (@stmts, $cur, $in);
    while (my $l = <STDIN>) {
      if ($l =~ /LOG:\s+execute [^:]*:\s?(.*)$/) { push @stmts, [$1, ""]; $in = 1; next; }
      if ($in && $l =~ /^\t(.*)$/) { $stmts[-1][0] .= "\n$1"; next; }
      $in = 0;
      if (@stmts && $l =~ /DETAIL:\s+parameters: (.*)$/) { $stmts[-1][1] = $1; }
    }
    for my $s (@stmts) {
      my ($sql, $p) = @$s;
      my %v; while ($p =~ /\$(\d+) = (NULL|\x27(?:[^\x27]|\x27\x27)*\x27)/g) { $v{$1} = $2; }
      $sql =~ s/\$(\d+)/exists $v{$1} ? $v{$1} : "\$$1"/ge;
      print "$sql;\n";
    }' >"$WORK/$key.sql"
  [[ -s $WORK/$key.sql ]] || { echo "$key: no statements captured from $log" >&2; return 1; }
}

# p50 / p99 / p99.9 (ms) of a file of microsecond latencies.
percentiles() {
  sort -n "$1" | awk '{a[NR]=$1} END {n=NR; if (n == 0) {print "- - -"; exit}
    i50=int(n*0.5); i99=int(n*0.99); i999=int(n*0.999); if (i50<1) i50=1; if (i99<1) i99=1; if (i999<1) i999=1;
    printf "%.2f %.2f %.2f\n", a[i50]/1000, a[i99]/1000, a[i999]/1000}'
}

# api_measure KEY CONNS BASE: wrk on PATHS[KEY] (WARMUP s unmeasured, then DURATION s), then
# pgbench on $WORK/KEY.sql with as many clients. Sets W_P50 W_P99 W_P999 W_RPS W_NON2XX
# W_SOCKERR and PG_P50 PG_P99 PG_P999 PG_TPS.
api_measure() {
  local key=$1 conns=$2 base=$3 path=${PATHS[$1]}
  local threads=$(( conns < 2 ? 1 : 2 ))
  local code; code=$(curl -s -o /dev/null -w '%{http_code}' "$base$path")
  [[ $code == 200 ]] || { echo "$key: $path answered $code" >&2; return 1; }
  (( WARMUP > 0 )) && wrk -t"$threads" -c"$conns" -d"${WARMUP}s" "$base$path" >/dev/null
  local out; out=$(wrk -t"$threads" -c"$conns" -d"${DURATION}s" -s scripts/wrk-percentiles.lua "$base$path")
  local stats; stats=$(grep '^WRKSTATS' <<<"$out")
  local -A w; local kv
  for kv in ${stats#WRKSTATS }; do w[${kv%%=*}]=${kv#*=}; done
  W_P50=${w[p50]} W_P99=${w[p99]} W_P999=${w[p999]} W_NON2XX=${w[non2xx]} W_SOCKERR=${w[socket_errors]}
  W_RPS=$(awk "BEGIN{printf \"%.0f\", ${w[requests]}/${w[seconds]}}")
  # pgbench's sessions get the settings of the server's request pool (Store::for_requests: no
  # parallel plans), so both sides run the same plans.
  (cd "$WORK" && rm -f pgbench_log.* && PGOPTIONS="-c max_parallel_workers_per_gather=0" pgbench -n -M extended -c "$conns" -j "$threads" -T "$DURATION" -l -f "$key.sql" "$URL" >pgbench.out 2>&1) \
    || { echo "pgbench failed on $key:" >&2; cat "$WORK/pgbench.out" >&2; return 1; }
  PG_TPS=$(awk '/^tps/ {printf "%.0f", $3; exit}' "$WORK/pgbench.out")
  cat "$WORK"/pgbench_log.* | awk '{print $3}' >"$WORK/lat"
  read -r PG_P50 PG_P99 PG_P999 < <(percentiles "$WORK/lat")
}
