#!/usr/bin/env bash
# Experiment tracking figures, in one run on one stack (tests/harness/stack --custom-plugins
# plus an mlflow instance in front of tests/fakes/mlflow_fake.py):
#
#   1. metric points per second through lighttpd -> llm-opsd -> tracking-pg, in requests of
#      1,000 new points each (POST /llm-ops/v1/runs/{id}/log, wrk with a Lua body generator);
#   2. the latency llm-opsd adds in front of MLflow: GET /llm-ops/v1/runs/{id} of a run held
#      by the mlflow instance, against the same run read straight from the fake
#      (GET /api/2.0/mlflow/runs/get), one connection each, alternating rounds; as a ratio and
#      in milliseconds.
#
# Prints figures; see bench/README.md. Exits 0 whatever the figures; 1 only when the set-up
# failed or a run is invalid (non-2xx answers, no figures).
#
# Environment (all optional):
#   BENCH_DURATION=10s  length of each measured wrk run
#   BENCH_ROUNDS=2      rounds of the latency comparison (each runs both, order alternating)
#   BENCH_CONNECTIONS=4 wrk -c for the throughput run
#   BENCH_WORKERS=2     llm-opsd workers
#   BENCH_KEEP=1        keep the temporary directory
#   LLMOPS_SOURCE_DIR, LLMOPS_BIN_DIR   default: this checkout and its build/bin
set -uo pipefail

SRC=${LLMOPS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${LLMOPS_BIN_DIR:-$SRC/build/bin}
STACK=$SRC/tests/harness/stack
DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-2}
CONNS=${BENCH_CONNECTIONS:-4}
WORKERS=${BENCH_WORKERS:-2}

die() { echo "tracking.sh: $*" >&2; exit 1; }
for tool in wrk lighttpd curl awk python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps)"
done
[ -x "$BIN/llm-opsd" ] || die "$BIN/llm-opsd is missing: build first"
[ -f "$(dirname "$BIN")/plugins/tracking-pg.so" ] || die "the tracking-pg module is not built"
[ -f "$(dirname "$BIN")/plugins/mlflow.so" ] || die "the mlflow module is not built"

T=$(mktemp -d /tmp/llmops-bench-XXXXXX) || die "mktemp failed"
chmod 755 "$T"
stack_started=0 fake_pid=
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    trap - EXIT INT TERM
    [ "$stack_started" = 1 ] && "$STACK" stop "$T/stack" >/dev/null 2>&1
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "tracking.sh: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT INT TERM

python3 "$SRC/tests/fakes/mlflow_fake.py" --port 0 --ready-file "$T/fake.port" \
    --max-seconds 1800 --idle-timeout 600 >"$T/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 100); do [ -s "$T/fake.port" ] && break; sleep 0.1; done
FAKE_PORT=$(tr -dc 0-9 <"$T/fake.port")
[ -n "$FAKE_PORT" ] || die "the MLflow fake did not start"
FAKE=http://127.0.0.1:$FAKE_PORT

cat >"$T/10-mlflow.conf" <<CONF
[plugin "mlflow"]
module = mlflow
url = $FAKE
[flags "stg"]
experiment_tracking = mlflow
CONF
"$STACK" start "$T/stack" --workers "$WORKERS" --custom-plugins --drop-in "$T/10-mlflow.conf" \
    --set server.access_log=off >"$T/stack.log" 2>&1 || { cat "$T/stack.log" >&2; die "stack start failed"; }
stack_started=1
# shellcheck disable=SC1091
. "$T/stack/env"
URL=$LLMOPS_URL
TOKEN=$LLMOPS_OPERATOR_TOKEN

api() { # METHOD PATH [BODY] -> body on stdout; fails on a non-2xx
    curl -sf -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        ${3:+--data "$3"} "$URL$2"
}
jid() { python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["'"$1"'"])'; }

echo "== setting up: an experiment and a run in tracking-pg (dev) and in mlflow (stg)"
EXP_PG=$(api POST "/experiments?env=dev" '{"name":"bench-pg"}' | jid id) || die "create experiment (dev)"
RUN_PG=$(api POST "/experiments/$EXP_PG/runs" '{"name":"bench"}' | jid id) || die "create run (dev)"
EXP_ML=$(api POST "/experiments?env=stg" '{"name":"bench-ml"}' | jid id) || die "create experiment (stg)"
RUN_ML_JSON=$(api POST "/experiments/$EXP_ML/runs" '{"name":"bench"}') || die "create run (stg)"
RUN_ML=$(echo "$RUN_ML_JSON" | jid id)
RUN_ML_EXT=$(echo "$RUN_ML_JSON" | jid external_id)
api POST "/runs/$RUN_ML/log" \
    '{"metrics":[{"key":"loss","value":0.5,"step":1},{"key":"acc","value":0.9,"step":1}],"params":{"lr":"0.1"}}' \
    >/dev/null || die "log to the mlflow run"

# 1. throughput of points: every request carries 1,000 new points (a counter in the steps)
cat >"$T/log.lua" <<LUA
local counter = 0
local thread_id = 0
local threads = 0
function setup(thread) thread:set("id", threads); threads = threads + 1 end
function init(args) thread_id = id end
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local base = (thread_id * 100000000) + counter * 1000
  local parts = {}
  for i = 0, 999 do
    parts[#parts + 1] = string.format('{"key":"loss","value":%d.5,"step":%d,"timestamp_ms":1700000000000}', i, base + i)
  end
  return wrk.format(nil, nil, nil, '{"metrics":[' .. table.concat(parts, ",") .. ']}')
end
done = function(summary, latency, requests)
  io.write(string.format("REQS %d ERRORS %d NON2XX %d SECONDS %.3f P50 %.1f P99 %.1f\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.errors.status, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
echo "== 1. metric points through lighttpd -> llm-opsd -> tracking-pg ($DURATION, $CONNS connections, 1,000 points a request)"
wrk -t2 -c"$CONNS" -d"$DURATION" -s "$T/log.lua" "$URL/runs/$RUN_PG/log" >"$T/wrk-log.out" 2>&1
line=$(grep '^REQS' "$T/wrk-log.out") || { cat "$T/wrk-log.out"; die "no figures from wrk"; }
read -r _ reqs _ errs _ non2xx _ secs _ p50 _ p99 <<<"$line"
[ "$non2xx" = 0 ] && [ "$errs" = 0 ] || { cat "$T/wrk-log.out"; die "$non2xx non-2xx answers, $errs socket errors"; }
pps=$(awk -v r="$reqs" -v s="$secs" 'BEGIN { printf "%.0f", r * 1000 / s }')
stored=$(curl -sf -H "Authorization: Bearer $TOKEN" "$URL/runs/$RUN_PG/metric-history?key=loss&max_results=1" >/dev/null && echo ok)
printf '   %d requests in %.1f s: %s metric points/s (request p50 %s ms, p99 %s ms)\n' \
    "$reqs" "$secs" "$pps" "$p50" "$p99"
[ "$stored" = ok ] || die "the history cannot be read back"

# 2. latency in front of MLflow: one connection, sequential requests
cat >"$T/get.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
done = function(summary, latency, requests)
  io.write(string.format("REQS %d NON2XX %d SECONDS %.3f MEAN %.3f P50 %.3f P99 %.3f\n",
    summary.requests, summary.errors.status, summary.duration / 1e6,
    latency.mean / 1000, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
run_get() { # NAME URL -> "reqs mean p50 p99"
    wrk -t1 -c1 -d"$DURATION" -s "$T/get.lua" "$2" >"$T/wrk-$1.out" 2>&1
    local l
    l=$(grep '^REQS' "$T/wrk-$1.out") || { cat "$T/wrk-$1.out" >&2; die "no figures for $1"; }
    read -r _ r _ bad _ s _ mean _ p50 _ p99 <<<"$l"
    [ "$bad" = 0 ] || { cat "$T/wrk-$1.out" >&2; die "$1: $bad non-2xx answers"; }
    echo "$r $mean $p50 $p99"
}
echo "== 2. GET a run through llm-opsd (mlflow instance) vs straight from the MLflow fake ($ROUNDS rounds of $DURATION each, 1 connection)"
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="direct via"; else order="via direct"; fi
    for which in $order; do
        if [ "$which" = direct ]; then
            res=$(run_get direct "$FAKE/api/2.0/mlflow/runs/get?run_id=$RUN_ML_EXT") || exit 1
        else
            res=$(run_get via "$URL/runs/$RUN_ML") || exit 1
        fi
        read -r r mean p50 p99 <<<"$res"
        printf '   round %d %-6s %6d requests  mean %7.3f ms  p50 %7.3f ms  p99 %7.3f ms\n' \
            "$round" "$which" "$r" "$mean" "$p50" "$p99"
        echo "$which $mean $p50" >>"$T/lat"
    done
done
awk '{ n[$1]++; m[$1] += $2; p[$1] += $3 }
     END { md = m["direct"] / n["direct"]; mv = m["via"] / n["via"];
           pd = p["direct"] / n["direct"]; pv = p["via"] / n["via"];
           printf "   mean: direct %.3f ms, through llm-opsd %.3f ms: +%.3f ms, ratio %.2f\n", md, mv, mv - md, mv / md;
           printf "   p50:  direct %.3f ms, through llm-opsd %.3f ms: +%.3f ms, ratio %.2f\n", pd, pv, pv - pd, pv / pd }' "$T/lat"
