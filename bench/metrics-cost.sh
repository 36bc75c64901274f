#!/usr/bin/env bash
# The cost of metrics on the hot path: GET /llm-ops/v1/gpu-types?env=dev req/s with
# [metrics] enabled = on and = off, two stacks (tests/harness/stack) measured in alternating
# rounds of the same run; prints both rates and their ratio (target: metrics cost < 3 %).
# Exits 0 whatever the figures; 1 when the set-up fails or a run has non-2xx answers.
#
# Environment: BENCH_DURATION=10s BENCH_ROUNDS=3 BENCH_CONNECTIONS=32 BENCH_WORKERS=2
#              BENCH_KEEP=1 (keep the temporary directory); LLMOPS_BIN_DIR
set -uo pipefail
SRC=${LLMOPS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
STACK=$SRC/tests/harness/stack
DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-32}
WORKERS=${BENCH_WORKERS:-2}
die() { echo "metrics-cost.sh: $*" >&2; exit 1; }
for tool in wrk lighttpd curl awk; do command -v "$tool" >/dev/null || die "$tool is not installed"; done
T=$(mktemp -d /tmp/llmops-bench-XXXXXX) || die "mktemp failed"
chmod 755 "$T"
# shellcheck disable=SC2317
cleanup() {
    trap - EXIT INT TERM
    for s in on off; do "$STACK" stop "$T/$s" >/dev/null 2>&1; done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT INT TERM
for s in on off; do
    enabled=$([ $s = on ] && echo on || echo off)
    "$STACK" start "$T/$s" --workers "$WORKERS" --no-jobs --set server.access_log=off \
        --set metrics.enabled="$enabled" >"$T/$s.log" 2>&1 || { cat "$T/$s.log"; die "stack $s failed"; }
done
url_of() { awk -F= '$1=="LLMOPS_URL"{print $2}' "$T/$1/env"; }
tok_of() { awk -F= '$1=="LLMOPS_READER_TOKEN"{print $2}' "$T/$1/env"; }
curl -sf "$(url_of on | sed 's|/v1$||')/metrics" >/dev/null || die "the metrics of the 'on' stack do not answer"
run() { # NAME -> req/s
    local out
    out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -H "Authorization: Bearer $(tok_of "$1")" \
        "$(url_of "$1")/gpu-types?env=dev" 2>&1)
    echo "$out" | grep -q "Non-2xx" && { echo "$out" >&2; die "$1: non-2xx answers"; }
    echo "$out" | awk '/Requests\/sec/ { print $2 }'
}
echo "== warm-up"
run on >/dev/null; run off >/dev/null
echo "== $ROUNDS rounds of $DURATION each, $CONNS connections, $WORKERS workers, access log off"
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then order="on off"; else order="off on"; fi
    for s in $order; do
        rate=$(run "$s")
        printf '   round %d metrics %-3s %10s req/s\n' "$r" "$s" "$rate"
        echo "$s $rate" >>"$T/rates"
    done
done
awk '{ sum[$1] += $2; n[$1]++ }
     END { on = sum["on"] / n["on"]; off = sum["off"] / n["off"];
           printf "   mean: metrics on %.0f req/s, off %.0f req/s: on/off = %.3f (cost %.1f %%; target < 3 %%)\n",
                  on, off, on / off, (1 - on / off) * 100 }' "$T/rates"
