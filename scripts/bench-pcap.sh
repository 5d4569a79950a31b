#!/usr/bin/env bash
# Packet-capture reading benchmark: builds a capture of about MEGABYTES (default 500) by
# repeating the 2.9 MB Papertrailhack fixture (6 TLS 1.2 certificates, TLS 1.3 and bulk traffic)
# with shifted times and client ports, then reads it with certhist-pcap and with
# `tshark -Y tls.handshake.certificate -T fields -e x509sat.uTF8String` and prints both
# throughputs and their ratio. tshark is skipped with a message if it is not installed
# (DEBIAN_FRONTEND=noninteractive apt-get install -y tshark). Each reader runs twice, the file
# being in the page cache for both; the better run counts. Environment: CERTHIST_BENCH_DIR (where
# the capture is written; default a temporary directory, removed afterwards),
# CERTHIST_BENCH_SOURCE (another little-endian µs Ethernet pcap to repeat, e.g. the handshake-heavy
# tests/data/passive/pcap/zeek__zeek/testing/btest/Traces/tls/google-cert-repeat.pcap).
set -euo pipefail
cd "$(dirname "$0")/.."
MB="${1:-500}"
SRC="${CERTHIST_BENCH_SOURCE:-tests/data/passive/pcap/Papertrailhack__zeek-intrusion-project/pcaps/capture.pcap}"
DIR="${CERTHIST_BENCH_DIR:-$(mktemp -d)}"
[ -n "${CERTHIST_BENCH_DIR:-}" ] || trap 'rm -rf "$DIR"' EXIT
FILE="$DIR/bench-$(basename "$SRC" .pcap)-$MB.pcap"
cargo build --release -q -p certhist-pcap --example bench
BENCH=./target/release/examples/bench
[ -f "$FILE" ] || "$BENCH" make "$SRC" "$FILE" "$MB"
BYTES=$(stat -c %s "$FILE")
cat "$FILE" > /dev/null # into the page cache

best=0
for run in 1 2; do
  line=$("$BENCH" read "$FILE")
  echo "certhist-pcap run $run: $line"
  rate=$(sed -E 's/.*mb_per_s=([0-9.]+).*/\1/' <<<"$line")
  best=$(awk -v a="$best" -v b="$rate" 'BEGIN { print (b > a) ? b : a }')
done
echo "certhist-pcap: $best MB/s"

if ! command -v tshark > /dev/null; then
  echo "tshark: not installed, skipped (apt-get install -y tshark)"
  exit 0
fi
tbest=0
for run in 1 2; do
  start=$(date +%s.%N)
  n=$(tshark -n -r "$FILE" -Y tls.handshake.certificate -T fields -e x509sat.uTF8String 2>/dev/null | wc -l)
  end=$(date +%s.%N)
  rate=$(awk -v b="$BYTES" -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", b / 1e6 / (e - s) }')
  echo "tshark run $run: certificate frames=$n seconds=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }') mb_per_s=$rate"
  tbest=$(awk -v a="$tbest" -v b="$rate" 'BEGIN { print (b > a) ? b : a }')
done
echo "tshark: $tbest MB/s"
awk -v a="$best" -v b="$tbest" 'BEGIN { printf "ratio certhist-pcap / tshark: %.1fx\n", a / b }'
