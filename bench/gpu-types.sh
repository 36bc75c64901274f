#!/usr/bin/env bash
# Throughput of GET /llm-ops/v1/gpu-types?env=dev against a bare libfcgi responder (fcgi-min),
# both behind the same lighttpd. Prints figures; see bench/README.md. Exits 0 whatever the
# figures; 1 only when the set-up failed or a run is invalid (a non-2xx answer, no figures).
#
#   bench/gpu-types.sh
#
# Environment (all optional):
#   BENCH_DURATION=10s   length of each measured wrk run
#   BENCH_WARMUP=3s      length of the warm-up run of each target (0 to skip)
#   BENCH_CONNECTIONS=32 wrk -c
#   BENCH_THREADS=2      wrk -t
#   BENCH_ROUNDS=2       measured rounds; each runs both targets, the order alternating
#   BENCH_WORKERS=2      llm-opsd workers (standalone mode)
#   BENCH_MIN_PROCS=2    fcgi-min processes
#   BENCH_KEEP=1         keep the temporary directory (logs, configs)
#   LLMOPS_SOURCE_DIR, LLMOPS_BIN_DIR   default: this checkout and its build/bin
set -uo pipefail

SRC=${LLMOPS_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${LLMOPS_BIN_DIR:-$SRC/build/bin}
STACK=$SRC/tests/harness/stack
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-3s}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
ROUNDS=${BENCH_ROUNDS:-2}
WORKERS=${BENCH_WORKERS:-2}
MIN_PROCS=${BENCH_MIN_PROCS:-2}
TARGET_RATIO=0.90

die() { echo "gpu-types.sh: $*" >&2; exit 1; }

for tool in wrk lighttpd curl awk; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps)"
done
[ -x "$STACK" ] || die "$STACK is missing"
[ -x "$BIN/llm-opsd" ] || die "$BIN/llm-opsd is missing: build first"
[ -x "$BIN/fcgi-min" ] || die "$BIN/fcgi-min is missing: build first (bench/CMakeLists.txt)"

T=$(mktemp -d /tmp/llmops-bench-XXXXXX) || die "mktemp failed"
chmod 755 "$T"
stack_started=0
min_pid=
lighttpd_pid_file=$T/lighttpd.pid

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -f "$lighttpd_pid_file" ]; then
        kill "$(cat "$lighttpd_pid_file")" 2>/dev/null
    fi
    if [ -n "$min_pid" ]; then
        kill "$min_pid" 2>/dev/null
        wait "$min_pid" 2>/dev/null
    fi
    if [ "$stack_started" = 1 ]; then
        "$STACK" stop "$T/stack" >/dev/null 2>&1 || echo "gpu-types.sh: stack stop failed" >&2
    fi
    if [ -n "${BENCH_KEEP:-}" ] || [ "$rc" = 1 ]; then # kept after a failure, not a signal
        echo "files kept in $T" >&2
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

env_value() { # KEY: its value in the stack's env file (KEY=VALUE lines; not sourced)
    awk -v k="$1" 'index($0, k "=") == 1 { print substr($0, length(k) + 2); exit }' "$T/stack/env"
}

wait_socket() { # path: until it exists, 10 s at most
    for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done
    return 1
}

# --- the stack: PostgreSQL, schema, seed, tokens, llm-opsd (standalone) behind lighttpd
echo "starting the stack (standalone, $WORKERS workers) in $T/stack ..." >&2
"$STACK" start "$T/stack" --mode standalone --workers "$WORKERS" ${BENCH_STACK_ARGS:-} >"$T/stack-start.log" 2>&1
start_rc=$?
stack_started=1
if [ "$start_rc" != 0 ]; then
    cat "$T/stack-start.log" >&2
    die "stack start failed (exit $start_rc)"
fi
[ -f "$T/stack/env" ] || die "the stack wrote no $T/stack/env"
STACK_URL=$(env_value LLMOPS_URL)
READER=$(env_value LLMOPS_READER_TOKEN)
PID_FILE=$(env_value LLMOPS_PID_FILE)
OPSD_SOCK=$(env_value LLMOPS_SOCKET)
[ -n "$OPSD_SOCK" ] || OPSD_SOCK=$T/stack/llm-opsd.sock
if [ -z "$STACK_URL" ] || [ -z "$READER" ] || [ -z "$PID_FILE" ]; then
    die "the stack's env lacks LLMOPS_URL, LLMOPS_READER_TOKEN or LLMOPS_PID_FILE"
fi
wait_socket "$OPSD_SOCK" || die "no llm-opsd socket at $OPSD_SOCK"
master=$(cat "$PID_FILE" 2>/dev/null)
if [ -z "$master" ] || ! kill -0 "$master" 2>/dev/null; then
    die "llm-opsd is not running (pid file $PID_FILE)"
fi

# --- the baseline: fcgi-min on its own socket, answering the very bytes llm-opsd answers
# (its FastCGI headers and body, taken from one real answer), so only the work differs
AUTH="Authorization: Bearer $READER"
curl -s -D "$T/opsd.head" -o "$T/opsd.body" -H "$AUTH" "$STACK_URL/gpu-types?env=dev" ||
    die "cannot fetch llm-opsd's answer"
{
    printf 'Status: 200 OK\r\n'
    grep -iE '^(Content-Type|X-Request-Id|Content-Length|ETag|Cache-Control):' "$T/opsd.head"
    printf '\r\n'
    cat "$T/opsd.body"
} >"$T/opsd.response"
"$BIN/fcgi-min" "$T/min.sock" "$MIN_PROCS" "$T/opsd.response" 2>"$T/fcgi-min.log" &
min_pid=$!
wait_socket "$T/min.sock" || die "fcgi-min did not create $T/min.sock"

# --- one lighttpd of our own in front of both: the same server, modules and settings, two
# fastcgi.server prefixes. Only the FastCGI backend differs between the two measurements.
port=$(free_port)
mkdir -p "$T/www"
cat >"$T/lighttpd.conf" <<EOF
server.document-root = "$T/www"
server.bind = "127.0.0.1"
server.port = $port
server.modules = ("mod_fastcgi")
server.errorlog = "$T/lighttpd-error.log"
server.pid-file = "$lighttpd_pid_file"
fastcgi.server = (
  "/llm-ops/" => (( "socket" => "$OPSD_SOCK", "check-local" => "disable" )),
  "/fcgi-min" => (( "socket" => "$T/min.sock", "check-local" => "disable" )),
)
EOF
lighttpd -f "$T/lighttpd.conf" 2>"$T/lighttpd-start.log" ||
    { cat "$T/lighttpd-start.log" >&2; die "lighttpd did not start"; }

URL_OPSD="http://127.0.0.1:$port/llm-ops/v1/gpu-types?env=dev"
URL_MIN="http://127.0.0.1:$port/fcgi-min"

http_check() { # label url [curl args]: 200 with a body, else die; prints the body size
    local label=$1 url=$2 code size
    shift 2
    for _ in $(seq 50); do
        read -r code size < <(curl -s -o /dev/null -w '%{http_code} %{size_download}\n' \
            --max-time 5 "$@" "$url")
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    [ "$code" = 200 ] || die "$label: GET $url answered $code, not 200"
    [ "${size:-0}" -gt 0 ] || die "$label: GET $url answered an empty body"
    echo "$size"
}
size_opsd=$(http_check "llm-opsd via the stack's lighttpd" "$STACK_URL/gpu-types?env=dev" -H "$AUTH") || exit 1
size_opsd=$(http_check "llm-opsd" "$URL_OPSD" -H "$AUTH") || exit 1
size_min=$(http_check "fcgi-min" "$URL_MIN" -H "$AUTH") || exit 1
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL_OPSD")
[ "$code" = 401 ] || die "llm-opsd answered $code without a token: the bench would not measure auth"

# --- measuring
# wrk_run NAME DURATION URL [wrk args]: runs wrk, keeps its output in $T/wrk-NAME.txt
wrk_run() {
    local name=$1 dur=$2 url=$3
    shift 3
    wrk -t"$THREADS" -c"$CONNS" -d"$dur" --latency "$@" "$url" >"$T/wrk-$name.txt" 2>&1 ||
        die "wrk failed: $(cat "$T/wrk-$name.txt")"
}
# wrk_figures FILE: "REQS_PER_S P99_MS NON2XX SOCKET_ERRORS"
wrk_figures() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
            if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
            return v + 0
        }
        /^Requests\/sec:/ { rps = $2 }
        $1 == "99%" && !p99 { p99 = ms($2) }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        /Socket errors:/ {
            n = 0
            for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i + 0
            sockerr = n
        }
        END { printf "%.0f %.2f %d %d\n", rps, p99, bad, sockerr }
    ' "$1"
}

children() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -v '^$'; }
cpu_ns() { # pids...: nanoseconds they have run on a CPU (first field of /proc/PID/schedstat)
    local pid total=0 ns
    for pid in "$@"; do
        read -r ns _ <"/proc/$pid/schedstat" 2>/dev/null || continue
        total=$((total + ns))
    done
    echo "$total"
}
OPSD_WORKERS=$(children "$master")
MIN_PROCS_PIDS=$(children "$min_pid")
LIGHTTPD_PID=$(cat "$lighttpd_pid_file")
if [ -z "$OPSD_WORKERS" ] || [ -z "$MIN_PROCS_PIDS" ]; then
    die "cannot find the worker processes"
fi

run_target() { # opsd|min round: measured run, checks, records the figures
    local which=$1 round=$2 rps p99 bad sockerr reqs pids b0 b1 l0 l1
    if [ "$which" = opsd ]; then pids=$OPSD_WORKERS; else pids=$MIN_PROCS_PIDS; fi
    # shellcheck disable=SC2086
    b0=$(cpu_ns $pids)
    l0=$(cpu_ns "$LIGHTTPD_PID")
    if [ "$which" = opsd ]; then
        wrk_run "opsd-$round" "$DURATION" "$URL_OPSD" -H "$AUTH"
    else
        wrk_run "min-$round" "$DURATION" "$URL_MIN" -H "$AUTH"
    fi
    # shellcheck disable=SC2086
    b1=$(cpu_ns $pids)
    l1=$(cpu_ns "$LIGHTTPD_PID")
    read -r rps p99 bad sockerr < <(wrk_figures "$T/wrk-$which-$round.txt")
    reqs=$(awk '/ requests in / { print $1; exit }' "$T/wrk-$which-$round.txt")
    if [ "${rps:-0}" = 0 ] || [ "${reqs:-0}" = 0 ]; then
        die "no figures from wrk: $(cat "$T/wrk-$which-$round.txt")"
    fi
    [ "$bad" = 0 ] || die "$which round $round: wrk saw $bad non-2xx answers: the figures are invalid"
    [ "$sockerr" = 0 ] || echo "warning: $which round $round: wrk saw $sockerr socket errors" >&2
    local bcpu lcpu
    bcpu=$(awk -v d=$((b1 - b0)) -v n="$reqs" 'BEGIN { printf "%.1f", d / n / 1000 }')
    lcpu=$(awk -v d=$((l1 - l0)) -v n="$reqs" 'BEGIN { printf "%.1f", d / n / 1000 }')
    printf '  round %d  %-9s %8d req/s   p99 %7.2f ms   CPU/request: backend %5.1f us, lighttpd %5.1f us\n' \
        "$round" "$([ "$which" = opsd ] && echo llm-opsd || echo fcgi-min)" "$rps" "$p99" "$bcpu" "$lcpu"
    echo "$which $rps $p99 $bcpu $lcpu" >>"$T/figures"
}

echo "llm-opsd:  GET $URL_OPSD (reader token), $size_opsd-byte body, $WORKERS workers"
echo "fcgi-min:  GET $URL_MIN, $size_min-byte body, $MIN_PROCS processes"
echo "lighttpd $(lighttpd -v 2>/dev/null | awk '{print $1}' | cut -d/ -f2) in front of both; wrk -t$THREADS -c$CONNS -d$DURATION --latency; $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$WARMUP" != 0 ] && [ "$WARMUP" != 0s ]; then
    wrk_run warm-opsd "$WARMUP" "$URL_OPSD" -H "$AUTH"
    wrk_run warm-min "$WARMUP" "$URL_MIN"
fi
: >"$T/figures"
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then
        run_target opsd "$round"
        run_target min "$round"
    else
        run_target min "$round"
        run_target opsd "$round"
    fi
done

# --- resident memory, after the load
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
rss_line() { # label pid
    printf '  %-26s pid %-7s VmRSS %6.1f MiB   VmHWM %6.1f MiB\n' "$1" "$2" \
        "$(awk -v k="$(rss_kib "$2")" 'BEGIN { print k / 1024 }')" \
        "$(awk -v k="$(hwm_kib "$2")" 'BEGIN { print k / 1024 }')"
}

echo
echo "summary (mean of $ROUNDS rounds)"
summary=$(awk -v target="$TARGET_RATIO" '
    { n[$1]++; rps[$1] += $2; p99[$1] += $3; cpu[$1] += $4; lcpu[$1] += $5 }
    END {
        o = rps["opsd"] / n["opsd"]; m = rps["min"] / n["min"]
        printf "  llm-opsd  %8.0f req/s   p99 %7.2f ms   CPU/request: backend %5.1f us, lighttpd %5.1f us\n",
               o, p99["opsd"] / n["opsd"], cpu["opsd"] / n["opsd"], lcpu["opsd"] / n["opsd"]
        printf "  fcgi-min  %8.0f req/s   p99 %7.2f ms   CPU/request: backend %5.1f us, lighttpd %5.1f us\n",
               m, p99["min"] / n["min"], cpu["min"] / n["min"], lcpu["min"] / n["min"]
        printf "  llm-opsd spends %.1f us more CPU per request than fcgi-min\n",
               cpu["opsd"] / n["opsd"] - cpu["min"] / n["min"]
        r = o / m
        verdict = (r >= target) ? "met" : "NOT met"
        printf "  ratio llm-opsd/fcgi-min: %.2f (target >= %.2f: %s)\n", r, target, verdict
    }' "$T/figures")
echo "$summary"

echo
echo "resident memory"
rss_line "llm-opsd master" "$master"
for pid in $OPSD_WORKERS; do rss_line "llm-opsd worker" "$pid"; done
for pid in $MIN_PROCS_PIDS; do rss_line "fcgi-min process" "$pid"; done
rss_line "lighttpd (bench)" "$LIGHTTPD_PID"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
