#!/usr/bin/env bash
# Serving figures, in one run on one stack (tests/harness/stack) whose environment dev is
# served by the kserve module (Serverless) in front of tests/fakes/k8s_fake.py:
#
#   1. create -> ready: BENCH_DEPLOYMENTS deployments created one after the other through
#      lighttpd; for each, the time from its row's creation to the background process's
#      'ready' audit entry (both PostgreSQL timestamps; nobody GETs it meanwhile, so only the
#      background process moves it), less the fake's own delay: the fake turns an object
#      ready at its BENCH_POLLS-th read, and each read costs the fake what a direct GET costs
#      (measured in 2.), so its delay is BENCH_POLLS x that GET's p50. p50 and max.
#   2. list and get: GET /llm-ops/v1/deployments?env=dev and /deployments/{id} through
#      lighttpd -> llm-opsd -> kserve -> the fake, against the same reads straight from the
#      fake (GET .../inferenceservices and .../inferenceservices/{name} with its bearer token),
#      one connection each, alternating rounds: p50 and p99, as ratios, and the CPU per
#      request of llm-opsd's workers, their PostgreSQL backends, lighttpd and the background
#      process (/proc/PID/schedstat, as bench/gpu-types.sh measures it) and of the fake (its
#      /proc/PID/stat utime + stime: it answers on short-lived threads), and how many
#      requests the fake answered per request (its /_stats).
#
# Prints figures; see bench/README.md. Exits 0 whatever the figures; 1 only when the set-up
# failed or a run is invalid (non-2xx answers, no figures).
#
# Environment (all optional):
#   BENCH_DURATION=5s    length of each measured wrk run
#   BENCH_ROUNDS=2       rounds of the latency comparison (each runs all four, order alternating)
#   BENCH_DEPLOYMENTS=10 deployments created (and listed)
#   BENCH_POLLS=2        reads of an object after which the fake calls it ready
#   BENCH_WORKERS=2      llm-opsd workers
#   BENCH_KEEP=1         keep the temporary directory
#   BENCH_DIRECT_ONLY=1  only the fake-direct half of 2. (no stack; for a build without the
#                        deployments API)
#   LLMOPS_SOURCE_DIR, LLMOPS_BIN_DIR   default: this checkout and its build/bin
set -uo pipefail

SRC=${LLMOPS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${LLMOPS_BIN_DIR:-$SRC/build/bin}
STACK=$SRC/tests/harness/stack
DURATION=${BENCH_DURATION:-5s}
ROUNDS=${BENCH_ROUNDS:-2}
NDEP=${BENCH_DEPLOYMENTS:-10}
POLLS=${BENCH_POLLS:-2}
WORKERS=${BENCH_WORKERS:-2}
DIRECT_ONLY=${BENCH_DIRECT_ONLY:-0}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

die() { echo "serving.sh: $*" >&2; exit 1; }
for tool in wrk lighttpd curl awk python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps)"
done
[[ "$NDEP" =~ ^[1-9][0-9]*$ ]] || die "BENCH_DEPLOYMENTS must be a positive integer"
[[ "$POLLS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_POLLS must be a positive integer"
if [ "$DIRECT_ONLY" != 1 ]; then
    [ -x "$BIN/llm-opsd" ] || die "$BIN/llm-opsd is missing: build first"
    [ -f "$(dirname "$BIN")/plugins/kserve.so" ] || die "the kserve module is not built"
fi

T=$(mktemp -d /tmp/llmops-bench-XXXXXX) || die "mktemp failed"
chmod 755 "$T"
stack_started=0 fake_pid=
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    trap - EXIT INT TERM
    [ "$stack_started" = 1 ] && "$STACK" stop "$T/stack" >/dev/null 2>&1
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "serving.sh: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the Kubernetes fake: plain http, a bearer token, any namespace
FAKE_TOKEN=bench-k8s-token-$$
printf '%s\n' "$FAKE_TOKEN" >"$T/k8s.token"
python3 "$SRC/tests/fakes/k8s_fake.py" --port 0 --ready-file "$T/fake.port" --token "$FAKE_TOKEN" \
    --any-namespace --polls "$POLLS" --max-seconds 1800 --idle-timeout 600 >"$T/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 100); do [ -s "$T/fake.port" ] && break; sleep 0.1; done
FAKE_PORT=$(tr -dc 0-9 <"$T/fake.port" 2>/dev/null)
[ -n "$FAKE_PORT" ] || die "the Kubernetes fake did not start: $(tail -n 5 "$T/fake.log")"
FAKE=http://127.0.0.1:$FAKE_PORT
ISVC=/apis/serving.kserve.io/v1beta1/namespaces/llm/inferenceservices
fake() { # METHOD PATH [BODY]
    curl -sf -X "$1" -H "Authorization: Bearer $FAKE_TOKEN" -H 'Content-Type: application/json' \
        ${3:+--data "$3"} "$FAKE$2"
}

fake_requests() { # every request the fake has answered so far (its /_stats counts)
    curl -sf -H "Authorization: Bearer $FAKE_TOKEN" "$FAKE/_stats" |
        python3 -c 'import json, sys; print(sum(json.load(sys.stdin)["counts"].values()))'
}
cpu_ns() { # pids...: nanoseconds they have run on a CPU (first field of /proc/PID/schedstat)
    local pid total=0 ns
    for pid in "$@"; do
        { read -r ns _ <"/proc/$pid/schedstat"; } 2>/dev/null || continue
        total=$((total + ns))
    done
    echo "$total"
}
TICK_NS=$((1000000000 / $(getconf CLK_TCK)))
cpu_ticks_ns() { # pids...: user + system time of the whole process, its ended threads too
    # (/proc/PID/stat utime + stime, clock ticks): the fake serves each request on a thread of
    # its own, whose schedstat is gone when it ends
    local pid total=0 t
    for pid in "$@"; do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null) || continue
        total=$((total + ${t:-0} * TICK_NS))
    done
    echo "$total"
}
group_ns() { # "a,b,c" (schedstat) or "t:a" (clock ticks)
    # shellcheck disable=SC2086 # the pids are split on purpose
    case "$1" in t:*) cpu_ticks_ns ${1#t:} ;; *) cpu_ns ${1//,/ } ;; esac
}
children() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -v '^$' | tr '\n' ' '; }

cat >"$T/get.lua" <<'LUA'
local token = os.getenv("BENCH_TOKEN")
wrk.headers["Authorization"] = "Bearer " .. token
done = function(summary, latency, requests)
  io.write(string.format("REQS %d NON2XX %d ERRORS %d SECONDS %.3f P50 %.3f P99 %.3f\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
# run_get NAME URL TOKEN GROUP... -> "reqs p50 p99 fake_requests_per_request cpu_us_per_request..."
# (one CPU figure per group of pids: "a,b" by schedstat, "t:a" by clock ticks; the fake's
# request count less the /_stats call itself)
run_get() {
    local name=$1 url=$2 token=$3 g
    shift 3
    local before=() after=()
    local f0 f1
    f0=$(fake_requests)
    for g in "$@"; do before+=("$(group_ns "$g")"); done
    BENCH_TOKEN=$token wrk -t1 -c1 -d"$DURATION" -s "$T/get.lua" "$url" >"$T/wrk-$name.out" 2>&1
    for g in "$@"; do after+=("$(group_ns "$g")"); done
    f1=$(fake_requests)
    local l r bad errs p50 p99
    l=$(grep '^REQS' "$T/wrk-$name.out") || { cat "$T/wrk-$name.out" >&2; die "no figures for $name"; }
    read -r _ r _ bad _ errs _ _ _ p50 _ p99 <<<"$l"
    if [ "$bad" != 0 ] || [ "$errs" != 0 ] || [ "$r" -le 0 ]; then
        cat "$T/wrk-$name.out" >&2
        die "$name: $bad non-2xx answers, $errs socket errors"
    fi
    local out i
    out="$r $p50 $p99 $(awk -v d=$((f1 - f0 - 1)) -v n="$r" 'BEGIN { printf "%.2f", d / n }')"
    for i in "${!before[@]}"; do
        out="$out $(awk -v d=$((after[i] - before[i])) -v n="$r" 'BEGIN { printf "%.1f", d / n / 1000 }')"
    done
    echo "$out"
}

if [ "$DIRECT_ONLY" = 1 ]; then
    # objects of our own, as kserve would create them, straight into the fake
    for i in $(seq "$NDEP"); do
        fake POST "$ISVC" "{\"apiVersion\":\"serving.kserve.io/v1beta1\",\"kind\":\"InferenceService\",\"metadata\":{\"name\":\"bench-$i\",\"namespace\":\"llm\"},\"spec\":{\"predictor\":{\"model\":{\"modelFormat\":{\"name\":\"huggingface\"},\"storageUri\":\"s3://m/bench\"}}}}" \
            >/dev/null || die "cannot create an InferenceService in the fake"
    done
    for _ in $(seq "$POLLS"); do fake GET "$ISVC" >/dev/null; done
    echo "== the fake alone: $NDEP InferenceServices, 1 connection, $DURATION per run"
    for round in $(seq "$ROUNDS"); do
        for what in list get; do
            if [ $what = list ]; then u=$FAKE$ISVC; else u=$FAKE$ISVC/bench-1; fi
            read -r r p50 p99 _ cf <<<"$(run_get "direct-$what-$round" "$u" "$FAKE_TOKEN" "t:$fake_pid")" || exit 1
            printf '   round %d %-4s direct %6d requests  p50 %7.3f ms  p99 %7.3f ms  CPU/request: fake %6.1f us\n' \
                "$round" "$what" "$r" "$p50" "$p99" "$cf"
        done
    done
    exit 0
fi

# --- the stack, with kserve (Serverless) serving dev on the fake
cat >"$T/30-serving.conf" <<CONF
[plugin "kserve-dev"]
module = kserve
url = $FAKE
token_file = $T/k8s.token
namespace = llm
timeout_ms = 5000
retries = 2
deployment_mode = Serverless
[flags "dev"]
serving = kserve-dev
CONF
"$STACK" start "$T/stack" --workers "$WORKERS" --drop-in "$T/30-serving.conf" \
    --set server.access_log=off >"$T/stack.log" 2>&1 || { cat "$T/stack.log" >&2; die "stack start failed"; }
stack_started=1
env_value() { awk -v k="$1" 'index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$T/stack/env"; }
URL=$(env_value LLMOPS_URL)
OP=$(env_value LLMOPS_OPERATOR_TOKEN)
READER=$(env_value LLMOPS_READER_TOKEN)
MASTER=$(tr -dc 0-9 <"$(env_value LLMOPS_PID_FILE)")
LIGHTTPD=$(env_value LIGHTTPD_PID)
JOBS=$(env_value LLMOPS_JOBS_PID)
WORKER_PIDS=$(children "$MASTER")
PGROOT=$T/stack/pg
[ -f "$T/stack/pgroot" ] && PGROOT=$(cat "$T/stack/pgroot")
POSTMASTER=$(head -n 1 "$PGROOT/data/postmaster.pid" 2>/dev/null | tr -dc 0-9)
pg_backends() { # the client backends (llm-opsd's connections: they stay), as "a,b,c"
    local p out=
    for p in $(children "${POSTMASTER:-0}"); do
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q '^postgres: postgres llmops' && out="$out,$p"
    done
    echo "${out#,}"
}
[ -n "$WORKER_PIDS" ] || die "no llm-opsd workers under the master $MASTER"
psql_q() { "$PGBIN/psql" -h "$(env_value PGHOST)" -p "$(env_value PGPORT)" -U postgres -d llmops -X -q -tA -c "$1"; }
api() { # METHOD PATH [BODY] -> body on stdout; a non-2xx answer is printed and fails
    local out code
    out=$(curl -s -w '\n%{http_code}' -X "$1" -H "Authorization: Bearer $OP" \
        -H 'Content-Type: application/json' ${3:+--data "$3"} "$URL$2") || return 1
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    case "$code" in
    2??) [ -n "$out" ] || { echo "serving.sh: $1 $2: HTTP $code with an empty body" >&2; return 1; }
         echo "$out" ;;
    *) echo "serving.sh: $1 $2: HTTP $code $out" >&2; return 1 ;;
    esac
}
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]
for k in sys.argv[1].split("."): d=d[k]
print(d)' "$1"; }
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $READER" "$URL/deployments?env=dev")
[ "$code" = 200 ] || die "GET /llm-ops/v1/deployments?env=dev answers $code: this build has no deployments API"

# 1. create -> ready
echo "== 1. create -> ready: $NDEP deployments, one after the other; the fake is ready at its read $POLLS"
: >"$T/ids"
for i in $(seq "$NDEP"); do
    body="{\"name\":\"bench-$i\",\"model\":{\"uri\":\"s3://models/bench-$i\",\"format\":\"huggingface\"},\"runtime\":\"vllm\",\"cpu\":\"1\",\"memory\":\"2Gi\",\"replicas\":{\"min\":1,\"max\":1}}"
    id=$(api POST "/deployments?env=dev" "$body" | jget id) || die "create bench-$i failed"
    echo "$id bench-$i" >>"$T/ids"
    # nobody reads it meanwhile: only the background process polls the fake
    ok=0
    for _ in $(seq 600); do
        st=$(psql_q "SELECT state FROM deployments WHERE id = '$id'")
        case "$st" in ready) ok=1; break ;; failed) die "bench-$i failed: $(psql_q "SELECT reason FROM deployments WHERE id = '$id'")" ;; esac
        sleep 0.05
    done
    [ $ok = 1 ] || die "bench-$i is not ready after 30 s"
done
psql_q "SELECT d.id, extract(epoch FROM (SELECT min(at) FROM deployment_audit a WHERE a.deployment_id = d.id AND a.action = 'ready') - d.created_at) * 1000 FROM deployments d WHERE d.environment = 'dev' AND d.name LIKE 'bench-%'" |
    tr '|' ' ' >"$T/ready-ms"
[ "$(wc -l <"$T/ready-ms")" = "$NDEP" ] || die "expected $NDEP ready times, got: $(cat "$T/ready-ms")"
ID1=$(awk 'NR == 1 { print $1 }' "$T/ids")
NAME1=$(awk 'NR == 1 { print $2 }' "$T/ids")
fake GET "$ISVC/$NAME1" >/dev/null || die "the fake has no InferenceService $NAME1"

# 2. list and get, through llm-opsd and straight from the fake
echo "== 2. list and get through lighttpd -> llm-opsd -> kserve -> the fake vs the fake directly ($ROUNDS rounds of $DURATION each, 1 connection)"
: >"$T/lat"
OPSD_GROUP=${WORKER_PIDS// /,}
OPSD_GROUP=${OPSD_GROUP%,}
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order="direct via"; else order="via direct"; fi
    for what in list get; do
        for which in $order; do
            if [ "$which" = direct ]; then
                if [ $what = list ]; then u=$FAKE$ISVC; else u=$FAKE$ISVC/$NAME1; fi
                tok=$FAKE_TOKEN
            else
                if [ $what = list ]; then u="$URL/deployments?env=dev"; else u=$URL/deployments/$ID1; fi
                tok=$READER
            fi
            # PostgreSQL's backends (the workers' connections) as they are now
            PG_GROUP=$(pg_backends)
            res=$(run_get "$which-$what-$round" "$u" "$tok" "$OPSD_GROUP" "$LIGHTTPD" "t:$fake_pid" "${JOBS:-0}" "${PG_GROUP%,}") || exit 1
            read -r r p50 p99 fr co cl cf cj cp <<<"$res"
            printf '   round %d %-4s %-6s %6d requests  p50 %7.3f ms  p99 %7.3f ms  fake calls/request %4.2f  CPU/request us: llm-opsd %6.1f  PostgreSQL %6.1f  lighttpd %5.1f  fake %6.1f  background %5.1f\n' \
                "$round" "$what" "$which" "$r" "$p50" "$p99" "$fr" "$co" "$cp" "$cl" "$cf" "$cj"
            echo "$what $which $p50 $p99 $co $cl $cf $cj $r $fr $cp" >>"$T/lat"
        done
    done
done

echo
echo "summary"
cat >"$T/summary.awk" <<'AWK'
{ k = $1 " " $2; n[k]++; p50[k] += $3; p99[k] += $4; co[k] += $5; cl[k] += $6; cf[k] += $7; fr[k] += $10; cp[k] += $11 }
END {
    for (w = 1; w <= 2; w++) {
        what = (w == 1) ? "list" : "get"
        d = what " direct"; v = what " via"
        printf "  %-4s (%d deployments)  direct p50 %.3f ms p99 %.3f ms;  through llm-opsd p50 %.3f ms p99 %.3f ms;  ratio p50 %.2f, p99 %.2f\n",
            what, ndep, p50[d] / n[d], p99[d] / n[d], p50[v] / n[v], p99[v] / n[v],
            (p50[v] / n[v]) / (p50[d] / n[d]), (p99[v] / n[v]) / (p99[d] / n[d])
        printf "        CPU/request us: direct: fake %.1f;  through llm-opsd: llm-opsd %.1f + PostgreSQL %.1f + lighttpd %.1f + fake %.1f = %.1f (%.2f x the direct read); the fake called %.2f times per request\n",
            cf[d] / n[d], co[v] / n[v], cp[v] / n[v], cl[v] / n[v], cf[v] / n[v],
            (co[v] + cp[v] + cl[v] + cf[v]) / n[v], ((co[v] + cp[v] + cl[v] + cf[v]) / n[v]) / (cf[d] / n[d]),
            fr[v] / n[v]
    }
    read_ms = p50["get direct"] / n["get direct"]
    fake_ms = polls * read_ms
    m = 0
    while ((getline line < readyfile) > 0) { split(line, a, " "); t[++m] = a[2] + 0 }
    for (i = 2; i <= m; i++) { x = t[i]; j = i - 1; while (j > 0 && t[j] > x) { t[j + 1] = t[j]; j-- } t[j + 1] = x }
    med = (m % 2) ? t[(m + 1) / 2] : (t[m / 2] + t[m / 2 + 1]) / 2
    printf "  create -> ready (%d deployments): p50 %.0f ms, min %.0f ms, max %.0f ms; the fake's own delay: %d reads x %.3f ms = %.1f ms\n",
        m, med, t[1], t[m], polls, read_ms, fake_ms
    printf "        added by llm-opsd's background process: p50 %.0f ms, max %.0f ms\n", med - fake_ms, t[m] - fake_ms
}
AWK
awk -v polls="$POLLS" -v ndep="$NDEP" -v readyfile="$T/ready-ms" -f "$T/summary.awk" "$T/lat"
