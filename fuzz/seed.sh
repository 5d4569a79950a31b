#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the fixtures under tests/data (and a few generated inputs).
# Idempotent: existing corpus entries (what earlier runs found) are kept. Only small files are
# copied (libFuzzer reads at most -max_len bytes of an input anyway).
#   fuzz/seed.sh [TARGET…]   seeds the named targets only (default: all). scripts/fuzz.sh passes the
#                            targets it runs, so the committed corpora of the others stay as they are.
set -eu  # no pipefail: `… | head -c` ends its writer early on purpose
cd "$(dirname "$0")"
TMPDIR=${TMPDIR:-/tmp}
DATA=../tests/data
# Seeds are made in a scratch directory, then the wanted targets' seeds are copied into corpus/.
C=$(mktemp -d "$TMPDIR/certhist-seed.XXXXXX")
trap 'rm -rf "$C"' EXIT
MAX=65536

seed() { # seed TARGET FILE… : copy files under $MAX bytes into the target's corpus
  local t=$1; shift
  mkdir -p "$C/$t"
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    [ "$(stat -c %s "$f")" -le "$MAX" ] || { head -c "$MAX" "$f" >"$C/$t/head-$(basename "$f")"; continue; }
    cp "$f" "$C/$t/$(echo "$f" | sed 's|^\.\./tests/data/||; s|/|__|g')"
  done
}
text() { # text TARGET NAME CONTENT : a generated seed
  mkdir -p "$C/$1"
  printf '%s' "$3" >"$C/$1/gen-$2"
}

# CryptnetUrlCache.
seed cryptnet_metadata $(find $DATA/cryptnet -path '*MetaData/*' -type f)
for m in $(find $DATA/cryptnet -path '*MetaData/*' -type f | head -40); do
  c=${m/MetaData/Content}
  [ -f "$c" ] || continue
  mkdir -p $C/cryptnet_metadata
  { cat "$m"; printf '\0\0\0\0CONTENT'; head -c 16384 "$c"; } >"$C/cryptnet_metadata/entry-$(basename "$m")"
done
seed cryptnet_content $(find $DATA/cryptnet -path '*Content/*' -type f) \
  $(find $DATA/certs -name '*.der' -size -16k | head -30) $(find $DATA/certs -iname '*crl*' -size -64k)
URLS=$C/urls.txt  # the fixture's URLs, one per line (the scratch directory goes with the run)
cut -f7 $DATA/cryptnet/EXPECTED.tsv | grep '^http' | head -200 >"$URLS" || true
mkdir -p $C/ocsp_get_url
i=0
while read -r u; do i=$((i+1)); printf '%s' "$u" >"$C/ocsp_get_url/url-$i"; done <"$URLS"
cp "$URLS" "$C/ocsp_get_url/url-list"
# Paths of many segments, which made the decoder quadratic (2026-12-06; see docs/RELIABILITY.md):
# with one, a regression is a timeout as soon as the run reads its seeds.
slashes() { head -c "$1" /dev/zero | tr '\0' /; }
text ocsp_get_url slashes "http://h/$(slashes 60000)"
text ocsp_get_url segments "http://h$(for _ in $(seq 6000); do printf /MIIBAAAA; done)"

# Certificate files and DER.
seed certfile $(find $DATA/certs $DATA/demo \( -name '*.pem' -o -name '*.der' -o -name '*.json' -o -name '*.crt' -o -name '*.cert' -o -name '*.chain' \) -size -64k | head -150)
seed x509 $(find $DATA/certs $DATA/ct -name '*.der' -size -64k)
for p in $(find $DATA/certs -name '*.pem' -size -32k | head -60); do
  mkdir -p $C/x509
  openssl x509 -in "$p" -outform der -out "$C/x509/pem-$(basename "$p").der" 2>/dev/null || rm -f "$C/x509/pem-$(basename "$p").der"
done

# Observation files.
seed observations $DATA/demo/observations.csv
text observations csv-header $'ip,port,sha1,first_seen,last_seen,count,source\n192.0.2.1,443,0123456789abcdef0123456789abcdef01234567,2024-01-01T00:00:00Z,2024-02-01,3,scan\n'
text observations tsv $'2001:db8::1\t8443\t0123456789abcdef0123456789abcdef01234567\t1700000000\t1700003600\n'
text observations ndjson $'{"ip":"198.51.100.7","port":443,"sha1":"0123456789abcdef0123456789abcdef01234567","first_seen":"2024-01-01","last_seen":"2024-01-02","count":2}\n'

# Scan files.
seed zgrab2 $(find $DATA/scans -name '*.json' -size -64k)
head -c $MAX $DATA/scans/zmap__ztag/test.json >/dev/null 2>&1 && seed zgrab2 $DATA/scans/zmap__ztag/test.json
mkdir -p $C/sonar
for f in $DATA/scans/crocs-muni__cevast/*.gz; do gzip -dc "$f" | head -c 16384 >"$C/sonar/$(basename "$f" .gz)"; done
seed nmap_xml $(find $DATA/scans -name '*.xml' -size -64k)
for f in $(find $DATA/scans -name '*.xml.bz2'); do mkdir -p $C/nmap_xml; bzip2 -dc "$f" | head -c $MAX >"$C/nmap_xml/$(basename "$f" .bz2)"; done
B64=$(base64 -w0 <"$(find $DATA/ct -name 'r10.der' | head -1)")
text masscan list $'#masscan\nopen tcp 443 192.0.2.1 1700000000\nbanner tcp 443 192.0.2.1 1700000000 X509 '"$B64"$'\n# end\n'
text masscan ndjson '{"ip":"192.0.2.1","timestamp":"1700000000","ports":[{"port":443,"proto":"tcp","service":{"name":"X509","banner":"'"$B64"'"}}]}'$'\n'
text masscan json '[
{"ip":"192.0.2.1","timestamp":"1700000000","ports":[{"port":443,"proto":"tcp","service":{"name":"X509CA","banner":"'"$B64"'"}}]}
]'
text masscan xml '<?xml version="1.0"?><nmaprun scanner="masscan"><host endtime="1700000000"><address addr="192.0.2.1" addrtype="ipv4"/><ports><port protocol="tcp" portid="443"><state state="open"/><service name="X509" banner="'"$B64"'"></service></port></ports></host></nmaprun>'

# Certificate Transparency.
seed ct_leaf $(find $DATA/ct -path '*fixtures*' -type f -size -64k)
for f in $(find $DATA/ct -name '*get-entries*.json' -o -name 'ok_entries' | head -5); do
  python3 - "$f" "$C/ct_leaf" <<'PY' || true
import base64, json, sys, os
d = json.load(open(sys.argv[1]))
for i, e in enumerate(d.get("entries", [])[:8]):
    leaf = base64.b64decode(e["leaf_input"]); extra = base64.b64decode(e["extra_data"])
    open(os.path.join(sys.argv[2], f"entry-{os.path.basename(sys.argv[1])}-{i}"), "wb").write(leaf + b"\0\0EXTRA" + extra)
PY
done
mkdir -p $C/ct_tile
for f in $(find $DATA/ct/sunlight -path '*tile*' -type f); do
  { printf '\0\x00'; head -c $MAX "$f"; } >"$C/ct_tile/$(echo "$f" | sed 's|.*/tile/||; s|/|_|g')"
done
seed ct_checkpoint $(find $DATA/ct $DATA/demo -iname '*checkpoint*' -type f)
seed ct_json $(find $DATA/ct \( -name '*.json' -o -name 'json_*' -o -name 'ok_*' \) -type f -size -64k)

# TLS streams: small captures (the parser seeks the first hello record in them).
seed tls_stream $(find $DATA/passive/pcap -name '*.pcap*' -size -64k)

# API parameters and the search box.
text api_params window 'since=2024-01-01&until=2024-02-01T00:00:00Z&limit=10&exact=true'
text api_params ip 'q=192.0.2.0/24&q=2001:db8::/48&ip=198.51.100.1&hops=2'
text api_params hash 'q=0123456789abcdef0123456789abcdef01234567&cursor=WyJhIiwxLFsxXV0'
text api_params unix 'since=1700000000&until=%31%37&limit=1000&unknown=1'
text web_recognise ip '192.0.2.1'
text web_recognise cidr '2001:db8::/32'
text web_recognise sha1 '01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67'
text web_recognise name '*.example.com'
text web_recognise email 'user@example.org'
text web_recognise serial '0x61E3AF17D9AFAE3019433B0D4255BEA'
text web_recognise slashes "http://h/$(slashes 2030)"
[ -s "$URLS" ] && text web_recognise ocsp "$(head -1 "$URLS")"

# Network-sensor logs.
mkdir -p $C/zeek
for ssl in $(find $DATA/passive/logs -name 'ssl.log'); do
  d=$(dirname "$ssl")
  { head -c 20000 "$ssl"; printf '\n@x509\n'; head -c 20000 "$d/x509.log" 2>/dev/null || true
    printf '\n@files\n'; head -c 8000 "$d/files.log" 2>/dev/null || true; } >"$C/zeek/$(echo "$d" | sed 's|.*/logs/||; s|/|__|g')"
done
mkdir -p $C/suricata
for f in $(find $DATA/passive/logs -name '*.json' -path '*suricata*'); do
  grep '"event_type":"tls"' "$f" | head -40 >"$C/suricata/tls-$(basename "$(dirname "$f")")-$(basename "$f")" || true
  head -c 16384 "$f" >"$C/suricata/head-$(basename "$(dirname "$f")")-$(basename "$f")"
done

for t in ${*:-$(ls "$C")}; do
  [ -d "$C/$t" ] || continue
  mkdir -p "corpus/$t"
  cp -r "$C/$t/." "corpus/$t/"
  echo "$t: $(ls "$C/$t" | wc -l) seeds, $(ls "corpus/$t" | wc -l) inputs in corpus/$t"
done
