#!/usr/bin/env bash
# Database write throughput of the passive imports (issue 19) vs the raw COPY ceiling of the same
# rows into the same tables, measured in the same run on a fresh throw-away managed cluster:
#   1. `certhist import suricata` of a generated eve.json (N tls records, each a distinct
#      (ip, port, sha1) with an SNI name) → observations + sni_names;
#   2. `certhist import zeek` of a generated Zeek >= 4.1 JSON ssl.log (N records naming their
#      leaf by SHA-256 only, no x509.log) → certificate_stubs + observations_sha256 + sni_names;
#   3. the ceiling: COPY of exactly the rows each import ended with (read back from the tables,
#      not timed), into the same tables, truncated, with their indexes;
#   4. resolve_stubs: `certhist import certs` of S generated certificates into a database where
#      each has a stub with one sighting, vs the same import with no stubs (the difference is the
#      join that moves the sightings under the SHA-1).
#   [PROFILE=debug] [CERTHIST_BIN=path] scripts/bench-passive-db.sh [N] [S]   (defaults 500000, 100000)
# Never uses the system PostgreSQL: the cluster lives under $BENCH_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-500000}
S=${2:-100000}
HOME_DIR=${BENCH_HOME:-${TMPDIR:-/tmp}/certhist-bench-passive}
DATA=${BENCH_DATA:-${TMPDIR:-/tmp}/certhist-bench-passive-data}
mkdir -p "$DATA"

# PROFILE=debug measures an unoptimised build (a lower bound for certhist's side: the ceiling is
# psql's COPY either way).
PROFILE=${PROFILE:-release}
echo "== building ($PROFILE)"
if [ "$PROFILE" = release ]; then FLAG=--release; else FLAG=; fi
EX=target/$PROFILE/examples/bench_import
# CERTHIST_BIN=path measures another build of certhist (e.g. a copy of the binary before a change,
# for before/after runs interleaved on a shared machine); it is not rebuilt.
if [ -n "${CERTHIST_BIN:-}" ]; then
  BIN=$CERTHIST_BIN
else
  cargo build $FLAG -q --bin certhist && cargo build $FLAG -q -p certhist-files --example bench_import
  BIN=target/$PROFILE/certhist
fi
echo "== certhist binary: $BIN"

echo "== generating $N eve.json tls records, $N Zeek ssl.log records, $S certificates in $DATA"
python3 - "$DATA" "$N" <<'PY'
import hashlib, json, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(19)
with open(f"{d}/eve.json", "w") as eve, open(f"{d}/ssl.log", "w") as zeek:
    for i in range(n):
        ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        port = 443 + (i % 7)
        sec = 1700000000 + i
        h = hashlib.sha256(i.to_bytes(8, "big")).digest()
        sha1 = ":".join(f"{b:02x}" for b in h[:20])
        # EVE's timestamp layout: YYYY-MM-DDTHH:MM:SS.ffffff+0000
        import datetime
        t = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000+0000")
        eve.write(json.dumps({"timestamp": t, "flow_id": i, "event_type": "tls",
            "src_ip": "192.168.1.10", "src_port": 40000 + i % 20000, "dest_ip": ip, "dest_port": port,
            "proto": "TCP", "tls": {"subject": f"CN=h{i}.example", "issuerdn": "CN=Bench CA",
            "serial": "01", "fingerprint": sha1, "sni": f"h{i}.example", "version": "TLS 1.2"}},
            separators=(",", ":")) + "\n")
        zeek.write(json.dumps({"ts": sec + 0.25, "uid": f"C{i}", "id.orig_h": "192.168.1.10",
            "id.orig_p": 40000 + i % 20000, "id.resp_h": ip, "id.resp_p": port,
            "server_name": f"z{i}.example", "cert_chain_fps": [h.hex()]}, separators=(",", ":")) + "\n")
PY
if [ ! -f "$DATA/certs.pem" ] || [ "$(grep -c BEGIN "$DATA/certs.pem")" != "$S" ]; then
  [ -x "$EX" ] || cargo build $FLAG -q -p certhist-files --example bench_import
  $EX gen "$DATA/gen" "$S" 1 >/dev/null
  mv "$DATA/gen/certs.pem" "$DATA/certs.pem"
  rm -rf "$DATA/gen"
fi
# One Zeek record per generated certificate, by its SHA-256 (stubs until the DER arrives).
mkdir -p "$DATA/stubs"
python3 - "$DATA" <<'PY'
import base64, hashlib, json, sys
d = sys.argv[1]
out = open(f"{d}/stubs/ssl.log", "w")
der, i = [], 0
for line in open(f"{d}/certs.pem"):
    if line.startswith("-----BEGIN"):
        der = []
    elif line.startswith("-----END"):
        h = hashlib.sha256(base64.b64decode("".join(der))).hexdigest()
        out.write(json.dumps({"ts": 1700000000 + i, "id.resp_h": f"172.16.{(i >> 8) & 255}.{i & 255}",
            "id.resp_p": 443, "cert_chain_fps": [h]}) + "\n")
        i += 1
    else:
        der.append(line.strip())
PY

export CERTHIST_HOME="$HOME_DIR"
unset DATABASE_URL
rm -rf "$HOME_DIR"
$BIN db start >/dev/null
URL=$($BIN db url)
trap '$BIN db stop >/dev/null 2>&1 || true' EXIT
sql() { psql -X -q -v ON_ERROR_STOP=1 "$URL" "$@"; }
now() { date +%s.%N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
reset() { sql -c "TRUNCATE certificates, certificate_names, names, sightings, cert_keys, observations_sha256, certificate_stubs, sni_names, imported_files, followed_files" -c "VACUUM ANALYZE" >/dev/null; }
# COPY of the rows of table $1 (columns $2) as the import left them: dumped (not timed), the
# table truncated, then the timed COPY back in (text format through psql).
ceiling() {
  local table=$1 cols=$2 f="$DATA/$1.copy"
  sql -c "\\copy (SELECT $cols FROM $table) TO '$f'"
  sql -c "TRUNCATE $table" -c "VACUUM ANALYZE $table" >/dev/null
  local t0; t0=$(now)
  sql -c "\\copy $table ($cols) FROM '$f'"
  echo "$(now) - $t0" | bc -l
}
rows() { sql -At -c "SELECT count(*) FROM $1"; }

results=()
reset
echo "== import suricata ($N records; load $(load))"
t0=$(now); $BIN import suricata "$DATA/eve.json" >/dev/null; t_imp=$(echo "$(now) - $t0" | bc -l)
ro=$(rows observations); rs=$(rows sni_names)
c1=$(ceiling observations "ip, port, sha1, first_seen, last_seen, times_seen, sources")
c2=$(ceiling sni_names "ip, port, name, first_seen, last_seen, times_seen, sources")
results+=("suricata $N $((ro + rs)) $t_imp $(echo "$c1 + $c2" | bc -l) $(load)")

reset
echo "== import zeek, SHA-256 only ($N records; load $(load))"
t0=$(now); $BIN import zeek "$DATA/ssl.log" >/dev/null; t_imp=$(echo "$(now) - $t0" | bc -l)
r1=$(rows observations_sha256); r2=$(rows certificate_stubs); r3=$(rows sni_names)
c1=$(ceiling observations_sha256 "ip, port, sha256, first_seen, last_seen, times_seen, sources")
c2=$(ceiling certificate_stubs "sha256, subject_dn, subject_cn, issuer_dn, serial_text, not_before, not_after, san_dns, sources, added_at")
c3=$(ceiling sni_names "ip, port, name, first_seen, last_seen, times_seen, sources")
results+=("zeek-stubs $N $((r1 + r2 + r3)) $t_imp $(echo "$c1 + $c2 + $c3" | bc -l) $(load)")

echo "== resolve_stubs: import certs ($S) with and without a stub for each (load $(load))"
reset
t0=$(now); $BIN import certs "$DATA/certs.pem" >/dev/null; t_plain=$(echo "$(now) - $t0" | bc -l)
reset
$BIN import zeek "$DATA/stubs" >/dev/null
stubs=$(rows certificate_stubs)
t0=$(now); $BIN import certs "$DATA/certs.pem" >/dev/null; t_join=$(echo "$(now) - $t0" | bc -l)
left=$(rows certificate_stubs); moved=$(rows observations)

echo
printf '%-12s %9s %10s %16s %16s %7s   %s\n' "import" "records" "rows" "certhist rows/s" "raw COPY rows/s" "ratio" "load (1/5/15 min)"
for r in "${results[@]}"; do
  set -- $r
  python3 -c "
rows, ti, tc = $3, $4, $5
print(f'{\"$1\":<12} {$2:>9} {rows:>10} {rows/ti:>16.0f} {rows/tc:>16.0f} {rows/ti/(rows/tc):>7.0%}   $6 $7 $8')"
done
python3 -c "
s, tp, tj = $S, $t_plain, $t_join
print()
print(f'resolve_stubs: import certs of {s} certificates {tp:.2f} s without stubs, {tj:.2f} s with a stub each ($stubs stubs before, $left after, $moved sightings moved): {tj - tp:+.2f} s, {(tj - tp) / s * 1e6:.1f} µs per stub')"
