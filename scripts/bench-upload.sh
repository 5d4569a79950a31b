#!/usr/bin/env bash
# Upload through the API vs import from disk (issue 12), same file, same run, same machine:
#   1. `certhist import observations FILE` into a fresh database (rows/s from its own `seconds`:
#      the import driver's time, process start-up excluded);
#   2. `curl --data-binary @FILE …/api/v1/uploads/observations` against `certhist serve` on
#      another fresh database (rows/s from curl's time_total: sending, spooling and importing).
# Prints both and the ratio (target: upload ≥ 50 % of the disk import).
#   scripts/bench-upload.sh [ROWS]     (default 1000000; ROUNDS=2 alternates the order)
# Uses a throw-away managed cluster under $BENCH_HOME (default /tmp/certhist-bench-upload); never
# the system PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
ROUNDS=${ROUNDS:-1}
HOME_DIR=${BENCH_HOME:-/tmp/certhist-bench-upload}
DATA=${BENCH_DATA:-/tmp/certhist-bench-upload-data}
FILE="$DATA/observations.csv"

echo "== building (release)"
cargo build --release -q --bin certhist
BIN=$PWD/target/release/certhist

if [ ! -f "$FILE" ] || [ "$(($(wc -l < "$FILE") - 1))" != "$ROWS" ]; then
  echo "== generating $ROWS observation rows in $FILE"
  mkdir -p "$DATA"
  # Distinct (ip, port) per row over 10.0.0.0/8, certificates skewed (1 % of rows on 10 shared
  # SHA-1s, the rest over 200k), periods over 2020–2023, counts 1–5 — the shape of bench-import.
  awk -v n="$ROWS" 'BEGIN {
    print "ip,port,sha1,first_seen,last_seen,count,source";
    srand(12345);
    for (i = 0; i < n; i++) {
      c = (rand() < 0.01) ? int(rand() * 10) : int(rand() * 200000);
      ip = 167772160 + (i % 16777216);
      first = 1580000000 + int(rand() * 100000000);
      printf "%d.%d.%d.%d,%d,%08x%032x,%d,%d,%d,bench\n",
        int(ip / 16777216), int(ip / 65536) % 256, int(ip / 256) % 256, ip % 256,
        (i < 16777216) ? 443 : 8443, c, c * 2654435761 % 4294967296,
        first, first + int(rand() * 10000000), 1 + int(rand() * 5);
    }
  }' > "$FILE"
fi
SIZE=$(stat -c %s "$FILE")
echo "file: $FILE, $ROWS rows, $SIZE bytes"

export CERTHIST_HOME="$HOME_DIR"
unset DATABASE_URL
"$BIN" db start >/dev/null
BASE_URL=$("$BIN" db url)
# The same server, another database: replace the dbname of the key=value or URL form.
url_for() {
  python3 - "$BASE_URL" "$1" <<'PY'
import re, sys
url, db = sys.argv[1], sys.argv[2]
if url.startswith(("postgres://", "postgresql://")):
    head, _, query = url.partition("?")
    head = re.sub(r"/[^/]*$", "/" + db, head)
    print(head + ("?" + query if query else ""))
else:
    print(re.sub(r"dbname=\S+", "dbname=" + db, url) if "dbname=" in url else url + " dbname=" + db)
PY
}
fresh_db() {
  psql -q "$BASE_URL" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
}

disk_round() {
  fresh_db bench_disk
  local out
  out=$(DATABASE_URL=$(url_for bench_disk) "$BIN" --json import observations "$FILE")
  echo "$out" >&2
  python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print(o["rows"], o["seconds"])' "$out"
}

upload_round() {
  fresh_db bench_upload
  local log="$DATA/serve.log" spool="$DATA/spool"
  mkdir -p "$spool"
  : > "$log"
  DATABASE_URL=$(url_for bench_upload) "$BIN" serve --listen 127.0.0.1:0 --upload-dir "$spool" 2>"$log" &
  local pid=$!
  local base=""
  for _ in $(seq 1 600); do
    base=$(grep -o 'http://[^ ]*/api/v1' "$log" | head -1 || true)
    [ -n "$base" ] && break
    sleep 0.1
  done
  [ -n "$base" ] || { echo "serve did not start: $(cat "$log")" >&2; kill "$pid"; exit 1; }
  local out code
  out=$(curl -sS -o "$DATA/upload.json" -w '%{http_code} %{time_total}' \
    -H 'Content-Type: text/csv' --data-binary @"$FILE" \
    "$base/uploads/observations?filename=observations.csv")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  cat "$DATA/upload.json" | python3 -c 'import json,sys; o=json.load(sys.stdin); o.pop("problems", None); print(json.dumps(o))' >&2
  code=${out%% *}
  [ "$code" = 200 ] || [ "$code" = 207 ] || { echo "upload answered $code" >&2; exit 1; }
  python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); print(o["rows_stored"], sys.argv[2])' "$DATA/upload.json" "${out#* }"
}

RESULTS=()
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    echo "== round $r: disk import, then upload"
    D=$(disk_round); U=$(upload_round)
  else
    echo "== round $r: upload, then disk import"
    U=$(upload_round); D=$(disk_round)
  fi
  RESULTS+=("$D|$U")
done

python3 - "$SIZE" "${RESULTS[@]}" <<'PY'
import sys
size = int(sys.argv[1])
print()
print(f"{'round':>5}{'disk rows':>11}{'disk s':>8}{'disk rows/s':>13}{'upload rows':>13}{'upload s':>10}{'upload rows/s':>15}{'ratio':>8}")
for i, r in enumerate(sys.argv[2:], 1):
    d, u = r.split("|")
    dr, ds = d.split(); ur, us = u.split()
    dps, ups = int(dr) / float(ds), int(ur) / float(us)
    print(f"{i:>5}{int(dr):>11}{float(ds):>8.1f}{dps:>13.0f}{int(ur):>13}{float(us):>10.1f}{ups:>15.0f}{ups/dps:>8.0%}")
print(f"(upload time = curl time_total: {size/1e6:.0f} MB sent, spooled, then imported)")
PY
"$BIN" db stop >/dev/null
