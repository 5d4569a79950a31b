#!/usr/bin/env bash
# Import throughput vs the raw COPY ceiling, measured in the same run on the same machine.
#   scripts/bench-import.sh [CERTS] [OBSERVATIONS]     (defaults 200000 and 5000000)
# Uses a throw-away managed cluster under $BENCH_HOME (default /tmp/certhist-bench-import); never
# the system PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
CERTS=${1:-200000}
OBS=${2:-5000000}
HOME_DIR=${BENCH_HOME:-/tmp/certhist-bench-import}
DATA=${BENCH_DATA:-/tmp/certhist-bench-import-data}

echo "== building (release)"
cargo build --release -q --bin certhist && cargo build --release -q -p certhist-files --example bench_import
BIN=target/release/certhist
EX=target/release/examples/bench_import

if [ ! -f "$DATA/certs.pem" ] || [ "$(grep -c BEGIN "$DATA/certs.pem")" != "$CERTS" ] || [ "$(($(wc -l < "$DATA/observations.csv") - 1))" != "$OBS" ]; then
  echo "== generating $CERTS certificates and $OBS observations in $DATA"
  rm -rf "$DATA"; $EX gen "$DATA" "$CERTS" "$OBS"
fi

export CERTHIST_HOME="$HOME_DIR"
unset DATABASE_URL
$BIN db start >/dev/null
URL=$($BIN db url)
reset_tables() { psql -q "$URL" -c "TRUNCATE certificates, certificate_names, names, sightings, cert_keys, imported_files" -c "VACUUM ANALYZE" >/dev/null; }

echo "== ceiling: COPY (FORMAT binary) of the same rows straight into the same tables"
reset_tables
CEIL=$(DATABASE_URL="$URL" $EX ceiling "$DATA")
echo "$CEIL"
reset_tables

echo "== certhist import certs (read + parse + issuer keys + COPY straight in + names)"
C=$($BIN --json import certs "$DATA/certs.pem")
echo "$C"
echo "== certhist import observations (read + parse + COPY to staging + merge)"
O=$($BIN --json import observations "$DATA/observations.csv")
echo "$O"

python3 - "$CEIL" "$C" "$O" <<'PY'
import json, sys
ceil = dict(kv.split("=") for kv in sys.argv[1].split())
c, o = json.loads(sys.argv[2]), json.loads(sys.argv[3])
cps = c["read"] / c["seconds"]; ops = o["rows"] / o["seconds"]
cc, oc = float(ceil["ceiling_certs_per_s"]), float(ceil["ceiling_obs_per_s"])
cc2 = float(ceil["ceiling_certs2_per_s"])
print()
print(f"{'':14}{'rows':>10}{'certhist rows/s':>17}{'raw COPY rows/s':>17}{'ratio':>8}")
print(f"{'certificates':14}{c['read']:>10}{cps:>17.0f}{max(cc, cc2):>17.0f}{cps/max(cc, cc2):>8.0%}")
print(f"{'':14}{'':>10}{'':>17}  (raw COPY on 1 connection {cc:.0f}, split over 2 {cc2:.0f})")
print(f"{'observations':14}{o['rows']:>10}{ops:>17.0f}{oc:>17.0f}{ops/oc:>8.0%}")
PY
$BIN db stop >/dev/null
