#!/usr/bin/env bash
# Builds the fuzz targets of fuzz/ (cargo-fuzz, libFuzzer, AddressSanitizer, nightly toolchain)
# and runs each for SECONDS (default 60), FUZZ_PARALLEL at a time (default 1), seeded from tests/data
# (fuzz/seed.sh). An allocation over the limit, an RSS over the limit, one input taking longer
# than the timeout, a panic or a sanitizer report is a failure: the input is kept under
# fuzz/artifacts/<target>/ and the run goes on with the next target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]      e.g. scripts/fuzz.sh 3600  (the goal: an hour each)
#   scripts/fuzz.sh --ledger                 prints the CPU-time ledger of fuzz/runs.tsv as a
#                                            markdown table (docs/RELIABILITY.md) and runs nothing
#   scripts/fuzz.sh --reset TARGET REASON    records that TARGET's code changed (REASON, e.g. the
#                                            commit): its CPU time counts again from zero
#
# Prints a table (target, executions, CPU seconds, wall seconds, coverage, peak RSS, result) and
# appends one line per target to fuzz/runs.tsv. Exits non-zero when any target failed.
# After each run the target's corpus is minimized (libFuzzer -merge) in place: fuzz/corpus/ is
# committed, so the next run, on any machine, starts where this one ended.
# Environment: FUZZ_RSS_MB (default 2048), FUZZ_TIMEOUT (seconds per input, default 10),
# FUZZ_MAX_LEN (default 65536), FUZZ_JOBS_CARGO (cargo -j, default 2), FUZZ_PARALLEL (targets
# fuzzed at once, default 1; one per core at most), FUZZ_MINIMIZE (0 keeps the corpus as is).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LOG=fuzz/runs.tsv
GOAL_CPU_S=3600
ALL=$(sed -n 's/^name = "\([a-z0-9_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^certhist-fuzz$')

# ledger FORMAT: per target, the runs of $LOG since its last failure or reset (a failing run, and
# a RESET row of --reset, start the count again): runs, executions, longest run and total CPU
# time, coverage of the last run, and since when it counts. FORMAT is "text" (the summary after a
# run) or "markdown" (the table of docs/RELIABILITY.md). Targets without a run are listed too,
# with zeros.
ledger() {
  awk -F'\t' -v format="$1" -v goal="$GOAL_CPU_S" -v all="$(echo "$ALL" | sort | tr "\n" " ")" '
    function thousands(n,   s) {
      s = sprintf("%d", n)
      while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]([,]|$)/, ",&", s)
      return s
    }
    NR > 1 {
      t = $3
      if ($9 != "ok") {
        runs[t] = execs[t] = cpu[t] = longest[t] = 0; delete cov[t]
        since[t] = ($9 ~ /^RESET/ ? "reset " : "failure ") substr($1, 1, 10)
        why[t] = $9; sub(/^RESET */, "", why[t])
        next
      }
      runs[t]++; execs[t] += $5; cpu[t] += $6; cov[t] = $7
      if ($6 > longest[t]) longest[t] = $6
    }
    END {
      n = split(all, names, " ")
      if (format == "markdown") {
        print "| target | runs | executions | longest run, CPU s | total, CPU min | coverage (edges, last run) | counted since | ≥ 60 CPU-min |"
        print "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"
      }
      for (i = 1; i <= n; i++) {
        t = names[i]; met_t = cpu[t] >= goal; met += met_t; total += cpu[t]
        if (format == "markdown")
          printf "| %s | %d | %s | %s | %.1f | %s | %s | %s |\n", t, runs[t], thousands(execs[t]),
            thousands(longest[t]), cpu[t] / 60, (t in cov) ? thousands(cov[t]) : "-",
            (t in since) ? since[t] : "first run", met_t ? "**yes**" : "no"
        else
          printf "  %-18s %7.1f CPU-minutes  %s%s\n", t, cpu[t] / 60,
            met_t ? "goal met (>= " goal / 60 ")" : "short of the goal (" goal / 60 ")",
            (t in since) ? "; counted since " since[t] " (" why[t] ")" : ""
      }
      printf "%s%d of %d targets at %d CPU-minutes; %.1f CPU-hours in all\n",
        format == "markdown" ? "\n" : "  ", met, n, goal / 60, total / 3600
    }' "$LOG"
}

if [ "${1:-}" = --ledger ]; then
  [ -f "$LOG" ] || { echo "fuzz.sh: no $LOG yet" >&2; exit 2; }
  ledger markdown
  exit 0
fi
machine() { echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo), $(uname -m)"; }
header() {
  [ -f "$LOG" ] || printf 'date\tmachine\ttarget\tseconds\texecs\tcpu_s\tcov\tpeak_rss_mb\tresult\n' >"$LOG"
}
# --reset: the code a target exercises changed enough that its earlier hours say little about
# the new code (a rewritten parser, not a renamed variable). Appends a RESET row; runs nothing.
if [ "${1:-}" = --reset ]; then
  t=${2:-} reason=${3:-}
  echo "$ALL" | grep -qx "$t" || { echo "fuzz.sh --reset: no target '$t' (targets: $(echo $ALL))" >&2; exit 2; }
  case $reason in
    '' | *$'\t'* | *$'\n'*) echo "fuzz.sh --reset: give a REASON on one line, without tabs" >&2; exit 2 ;;
  esac
  header
  printf '%s\t%s\t%s\t0\t0\t0\t-\t-\tRESET %s\n' "$(date -u +%FT%TZ)" "$(machine)" "$t" "$reason" >>"$LOG"
  echo "fuzz.sh: $t counts from zero from now on ($reason)"
  exit 0
fi

SECONDS_EACH=${1:-60}
shift || true
RSS_MB=${FUZZ_RSS_MB:-2048}
TIMEOUT=${FUZZ_TIMEOUT:-10}
MAX_LEN=${FUZZ_MAX_LEN:-65536}
PARALLEL=${FUZZ_PARALLEL:-1}
MINIMIZE=${FUZZ_MINIMIZE:-1}
CARGO_FUZZ_VERSION=0.13.1
export TMPDIR=${TMPDIR:-/tmp}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

TARGETS=${*:-$ALL}
for t in $TARGETS; do
  echo "$ALL" | grep -qx "$t" || { echo "fuzz.sh: no target $t (targets: $(echo $ALL))" >&2; exit 2; }
done

dicts_of() {
  case $1 in
    cryptnet_content | x509 | ct_leaf | ct_tile | certfile) echo asn1 ;;
    cryptnet_metadata) echo asn1 query ;;
    ocsp_get_url | api_params | web_recognise) echo query ;;
    zgrab2 | ct_json | suricata | observations | sonar | ct_checkpoint) echo json ;;
    nmap_xml) echo xml ;;
    masscan) echo xml json ;;
    zeek) echo zeek json ;;
    tls_stream) echo tls asn1 ;;
  esac
}

echo "== seeding fuzz/corpus from tests/data"
fuzz/seed.sh $TARGETS >/dev/null

echo "== building $(echo $TARGETS | wc -w) fuzz targets (cargo +nightly fuzz build, address sanitizer)"
CARGO_BUILD_JOBS="${FUZZ_JOBS_CARGO:-2}" cargo +nightly fuzz build --codegen-units 16 2>&1 \
  | grep -E '^(error|warning: unused)|Finished' || true
BIN=fuzz/target/x86_64-unknown-linux-gnu/release

header
MACHINE=$(machine)
WORK=$(mktemp -d "$TMPDIR/certhist-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# run_target T: fuzzes T for SECONDS_EACH, then shrinks fuzz/corpus/T to the inputs that keep its
# coverage (libFuzzer -merge), so the committed corpus carries each run's progress to the next.
# Writes its table row to $WORK/T.row, and $WORK/T.failed when it failed.
run_target() {
  local t=$1 d dict=()
  mkdir -p "fuzz/artifacts/$t" "fuzz/corpus/$t"
  : >"$WORK/$t.dict"
  for d in $(dicts_of "$t"); do cat "fuzz/dict/$d.dict" >>"$WORK/$t.dict"; done
  [ -s "$WORK/$t.dict" ] && dict=(-dict="$WORK/$t.dict")
  echo "== $t: ${SECONDS_EACH}s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  local start rc wall cpu execs rss cov result
  start=$(date +%s)
  # CPU seconds of the fuzzer process (user + system) from GNU time.
  /usr/bin/time -f '%U %S' -o "$WORK/$t.time" \
    "$BIN/$t" "fuzz/corpus/$t" "${dict[@]}" \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" \
    -timeout="$TIMEOUT" -max_len="$MAX_LEN" -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$t/" >"$WORK/$t.log" 2>&1 && rc=0 || rc=$?
  wall=$(( $(date +%s) - start ))
  # GNU time writes "Command exited with non-zero status N" first when the fuzzer failed.
  cpu=$(tail -1 "$WORK/$t.time" 2>/dev/null | awk '{printf "%d", $1 + $2}' || true)
  cpu=${cpu:-?}
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/$t.log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$WORK/$t.log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$WORK/$t.log" | tail -1 | cut -d' ' -f2 || true)
  if [ $rc -eq 0 ]; then
    result=ok
  else
    if grep -q 'ERROR: libFuzzer: timeout' "$WORK/$t.log"; then result=TIMEOUT
    elif grep -qE 'out-of-memory|malloc\(.*\) exceeds' "$WORK/$t.log"; then result=OOM
    elif grep -q 'panicked' "$WORK/$t.log"; then result=PANIC
    else result="CRASH(rc=$rc)"; fi
    result="$result $(grep -oE "fuzz/artifacts/$t/[^ ]+" "$WORK/$t.log" | tail -1)"
    cp "$WORK/$t.log" "fuzz/artifacts/$t/last-failure.log"
  fi
  if [ "$MINIMIZE" = 1 ]; then
    local before after
    before=$(find "fuzz/corpus/$t" -type f | wc -l)
    rm -rf "$WORK/$t.min" && mkdir "$WORK/$t.min"
    if "$BIN/$t" -merge=1 -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" -timeout="$TIMEOUT" \
        -max_len="$MAX_LEN" "$WORK/$t.min" "fuzz/corpus/$t" >"$WORK/$t.merge.log" 2>&1; then
      rm -rf "fuzz/corpus/$t" && mv "$WORK/$t.min" "fuzz/corpus/$t"
      after=$(find "fuzz/corpus/$t" -type f | wc -l)
      echo "== $t: $result; corpus $before -> $after inputs (minimized)"
    else
      echo "== $t: $result; corpus minimization failed (kept as is): $WORK/$t.merge.log" >&2
      tail -5 "$WORK/$t.merge.log" >&2
    fi
  else
    echo "== $t: $result"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$MACHINE" "$t" "$wall" \
    "${execs:-?}" "$cpu" "${cov:-?}" "${rss:-?}" "$result" >>"$LOG"
  printf '%-18s %12s %7s %7s %6s %8s  %s\n' "$t" "${execs:-?}" "$cpu" "$wall" "${cov:-?}" "${rss:-?}" \
    "$result" >"$WORK/$t.row"
  [ "$result" = ok ] || touch "$WORK/$t.failed"
}

for t in $TARGETS; do
  [ -x "$BIN/$t" ] || { echo "fuzz.sh: $BIN/$t was not built" >&2; exit 1; }
done
for t in $TARGETS; do
  # At most FUZZ_PARALLEL targets at once (one per core is the sensible most).
  while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do wait -n || true; done
  run_target "$t" &
done
wait
FAILED=0
for t in $TARGETS; do [ ! -e "$WORK/$t.failed" ] || FAILED=1; done

echo
printf '%-18s %12s %7s %7s %6s %8s  %s\n' target execs cpu_s wall_s cov rss_mb result
for t in $TARGETS; do cat "$WORK/$t.row"; done
echo "(appended to $LOG; failing inputs under fuzz/artifacts/<target>/)"
echo
echo "CPU time per target without a failure, all runs in $LOG (since the target's last failure or reset):"
ledger text
exit $FAILED
