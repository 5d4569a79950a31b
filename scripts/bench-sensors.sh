#!/usr/bin/env bash
# Parse throughput of the Suricata eve.json reader (issue 19: goal >= 200k TLS records/s).
# Builds a large eve.json from the real fixture (tests/data/passive/logs/sashalarso__MSSIS-suricata/
# eve.json: all its events — alerts, dns, flows, http and 38 tls — repeated) and runs the
# parse-only example (release build) over it, then `certhist import suricata` end to end when
# DATABASE_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."
copies="${COPIES:-2000}"
work="${TMPDIR:-/tmp}/bench-sensors"
mkdir -p "$work"
eve="$work/eve-big.json"
src=tests/data/passive/logs/sashalarso__MSSIS-suricata/eve.json
if [ ! -s "$eve" ]; then
  for _ in $(seq "$copies"); do cat "$src"; done > "$eve"
fi
echo "input: $(wc -c < "$eve") bytes, $(wc -l < "$eve") lines, $(grep -c '"event_type":"tls"' "$eve") tls events"
cargo run --release -q -p certhist-sensors --example eve_parse -- "$eve"
# Only TLS lines (the parse cost per TLS record without the skipped events).
tlsonly="$work/eve-tls.json"
[ -s "$tlsonly" ] || grep '"event_type":"tls"' "$eve" > "$tlsonly"
cargo run --release -q -p certhist-sensors --example eve_parse -- "$tlsonly"
if [ -n "${DATABASE_URL:-}" ]; then
  cargo build --release -q
  /usr/bin/time -f "import suricata: %e s wall" target/release/certhist import suricata --force "$eve"
fi
