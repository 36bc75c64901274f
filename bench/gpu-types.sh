#!/usr/bin/env bash
# Throughput of GET /llm-ops/v1/gpu-types?env=dev (the cached, authenticated GPU-type read), in
# one run with alternating rounds, of:
#   opsd-lighttpd    llm-opsd behind lighttpd
#   min-lighttpd     a bare libfcgi responder (fcgi-min) behind the same lighttpd, answering
#                    llm-opsd's very bytes: the ratio to it is what llm-opsd's own work costs
#   opsd-nginx       llm-opsd behind nginx, fastcgi_keep_conn off (a connection per request)
#   opsd-nginx-keep  llm-opsd behind the same nginx, the shipped set-up (packaging/nginx:
#                    fastcgi_keep_conn on, upstream keepalive)
#   fastapi-nginx    FastAPI + uvicorn (uvloop, httptools; Debian's packages) behind the same
#                    nginx, upstream keepalive, the same bytes behind the same bearer check
#   fastapi          the same FastAPI with no proxy
# Prints req/s, p99, CPU per request of the server's processes, RSS and PSS per process, and the
# ratios against the targets; see bench/README.md. Exits 0 whatever the figures; 1 only when the
# set-up failed or a run is invalid (a non-2xx answer, no figures).
#
#   bench/gpu-types.sh
#
# Environment (all optional):
#   BENCH_DURATION=10s   length of each measured wrk run
#   BENCH_WARMUP=3s      length of the warm-up run of each target (0 to skip)
#   BENCH_CONNECTIONS=32 wrk -c
#   BENCH_THREADS=2      wrk -t
#   BENCH_ROUNDS=2       measured rounds; each runs every target, the order reversed every other
#   BENCH_TARGETS        the targets to run (default: all six above, in that order)
#   BENCH_WORKERS=2      llm-opsd workers (standalone mode), and uvicorn's --workers
#   BENCH_MIN_PROCS=2    fcgi-min processes
#   BENCH_NGINX_WORKERS=2  nginx worker_processes
#   BENCH_PYTHON=/usr/bin/python3  the Python with Debian's fastapi, uvicorn, uvloop, httptools
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
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-2}
PY=${BENCH_PYTHON:-/usr/bin/python3}
TARGETS=${BENCH_TARGETS:-opsd-lighttpd min-lighttpd opsd-nginx opsd-nginx-keep fastapi-nginx fastapi}
TARGET_RATIO=0.90    # llm-opsd / fcgi-min req/s, behind lighttpd
TARGET_VS_FASTAPI=1.3 # llm-opsd (shipped nginx set-up) / FastAPI behind nginx, req/s
TARGET_CPU_VS_FASTAPI=0.7 # the same, server CPU per request
TARGET_PSS_MIB=3     # PSS of one llm-opsd worker

die() { echo "gpu-types.sh: $*" >&2; exit 1; }

for tool in wrk lighttpd nginx curl awk; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps)"
done
[ -x "$STACK" ] || die "$STACK is missing"
[ -x "$BIN/llm-opsd" ] || die "$BIN/llm-opsd is missing: build first"
[ -x "$BIN/fcgi-min" ] || die "$BIN/fcgi-min is missing: build first (bench/CMakeLists.txt)"
case " $TARGETS " in *" fastapi"*)
    "$PY" -c 'import fastapi, uvicorn, uvloop, httptools' 2>/dev/null ||
        die "$PY lacks fastapi, uvicorn, uvloop or httptools (apt-get install python3-fastapi python3-uvicorn python3-uvloop python3-httptools)"
esac
case " $TARGETS " in *" fastapi"*)
    "$PY" -c 'import fastapi, uvicorn, uvloop, httptools' 2>/dev/null ||
        die "$PY lacks fastapi, uvicorn, uvloop or httptools (apt-get install python3-fastapi python3-uvicorn python3-uvloop python3-httptools)"
esac

T=$(mktemp -d /tmp/llmops-bench-XXXXXX) || die "mktemp failed"
chmod 755 "$T"
stack_started=0
min_pid=
fastapi_pid=
lighttpd_pid_file=$T/lighttpd.pid
nginx_pid_file=$T/nginx.pid

# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -f "$lighttpd_pid_file" ]; then
        kill "$(cat "$lighttpd_pid_file")" 2>/dev/null
    fi
    if [ -f "$nginx_pid_file" ]; then
        kill "$(cat "$nginx_pid_file")" 2>/dev/null
    fi
    if [ -n "$fastapi_pid" ]; then
        kill "$fastapi_pid" 2>/dev/null
        wait "$fastapi_pid" 2>/dev/null
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
http_check "fcgi-min" "$URL_MIN" -H "$AUTH" >/dev/null || exit 1
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL_OPSD")
[ "$code" = 401 ] || die "llm-opsd answered $code without a token: the bench would not measure auth"

# --- FastAPI + uvicorn: the same bytes (body and headers of llm-opsd's answer) behind the
# same bearer check; as many workers as llm-opsd, uvloop and httptools as uvicorn[standard] runs
grep -iE '^(Content-Type|X-Request-Id|ETag|Cache-Control):' "$T/opsd.head" | tr -d '\r' >"$T/opsd.headers"
fa_port=$(free_port)
if [[ " $TARGETS " == *" fastapi"* ]]; then
    (cd "$SRC/bench" && exec env BENCH_BODY="$T/opsd.body" BENCH_HEADERS="$T/opsd.headers" \
        BENCH_TOKEN="$READER" "$PY" -m uvicorn fastapi-gpu-types:app --host 127.0.0.1 \
        --port "$fa_port" --workers "$WORKERS" --loop uvloop --http httptools --no-access-log \
        --backlog 1024 --log-level warning) >"$T/uvicorn.log" 2>&1 &
    fastapi_pid=$!
fi

# --- one nginx in front of llm-opsd (keep-alive off, and the shipped set-up) and of FastAPI
np_off=$(free_port)
np_keep=$(free_port)
np_fa=$(free_port)
mkdir -p "$T/nginx"
sed -e "s|/run/llm-ops/llm-opsd.sock|$OPSD_SOCK|" "$SRC/packaging/nginx/llm-ops-upstream.conf" >"$T/nginx-upstream.conf"
sed -e "s|include fastcgi_params;|include /etc/nginx/fastcgi_params;|" "$SRC/packaging/nginx/llm-ops.conf" >"$T/nginx-keep.conf"
cat >"$T/nginx.conf" <<NGINX
worker_processes $NGINX_WORKERS;
user root;
error_log $T/nginx-error.log;
pid $nginx_pid_file;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $T/nginx/body;
    fastcgi_temp_path $T/nginx/fastcgi;
    proxy_temp_path $T/nginx/proxy;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    include $T/nginx-upstream.conf;
    upstream fastapi {
        server 127.0.0.1:$fa_port;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$np_off;
        location /llm-ops/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass unix:$OPSD_SOCK;
            fastcgi_keep_conn off;
        }
    }
    server {
        listen 127.0.0.1:$np_keep;
        include $T/nginx-keep.conf;
    }
    server {
        listen 127.0.0.1:$np_fa;
        location /llm-ops/ {
            proxy_pass http://fastapi;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
NGINX
nginx -c "$T/nginx.conf" -p "$T/nginx" 2>"$T/nginx-start.log" ||
    { cat "$T/nginx-start.log" >&2; die "nginx did not start"; }

declare -A URL
URL[opsd-lighttpd]=$URL_OPSD
URL[min-lighttpd]=$URL_MIN
URL[opsd-nginx]="http://127.0.0.1:$np_off/llm-ops/v1/gpu-types?env=dev"
URL[opsd-nginx-keep]="http://127.0.0.1:$np_keep/llm-ops/v1/gpu-types?env=dev"
URL[fastapi-nginx]="http://127.0.0.1:$np_fa/llm-ops/v1/gpu-types?env=dev"
URL[fastapi]="http://127.0.0.1:$fa_port/llm-ops/v1/gpu-types?env=dev"
for t in $TARGETS; do
    [ -n "${URL[$t]:-}" ] || die "unknown target $t (BENCH_TARGETS)"
    [ "$t" = min-lighttpd ] && continue
    sz=$(http_check "$t" "${URL[$t]}" -H "$AUTH") || exit 1
    [ "$sz" = "$size_opsd" ] || die "$t answered $sz bytes, llm-opsd $size_opsd: not the same answer"
    code=$(curl -s -o /dev/null -w '%{http_code}' "${URL[$t]}")
    [ "$code" = 401 ] || die "$t answered $code without a token: the bench would not measure auth"
done

# --- measuring
# wrk_run NAME DURATION URL [wrk args]: runs wrk, keeps its output in $T/wrk-NAME.txt and the
# CPU wrk used (clock ticks: its parent subshell's cutime + cstime) in $T/wrk-NAME.cpu
wrk_run() {
    local name=$1 dur=$2 url=$3
    shift 3
    (
        wrk -t"$THREADS" -c"$CONNS" -d"$dur" --latency "$@" "$url" >"$T/wrk-$name.txt" 2>&1 || exit 1
        awk '{ print $16 + $17 }' "/proc/$BASHPID/stat" >"$T/wrk-$name.cpu"
    ) || die "wrk failed: $(cat "$T/wrk-$name.txt")"
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
box_ticks() { # busy clock ticks of the whole machine: user nice system irq softirq steal
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}
OPSD_WORKERS=$(children "$master")
MIN_PROCS_PIDS=$(children "$min_pid")
LIGHTTPD_PID=$(cat "$lighttpd_pid_file")
NGINX_MASTER=$(cat "$nginx_pid_file")
NGINX_PIDS=$(children "$NGINX_MASTER")
FASTAPI_PIDS=
if [ -n "$fastapi_pid" ]; then
    # uvicorn's supervisor and its workers (and any helper multiprocessing starts)
    FASTAPI_PIDS="$fastapi_pid $(children "$fastapi_pid" | tr '\n' ' ')"
fi
if [ -z "$OPSD_WORKERS" ] || [ -z "$MIN_PROCS_PIDS" ] || [ -z "$NGINX_PIDS" ]; then
    die "cannot find the worker processes"
fi
backend_pids() {
    case $1 in
    opsd-*) echo "$OPSD_WORKERS" ;;
    min-*) echo "$MIN_PROCS_PIDS" ;;
    fastapi*) echo "$FASTAPI_PIDS" ;;
    esac
}
front_pids() {
    case $1 in
    *-lighttpd) echo "$LIGHTTPD_PID" ;;
    *-nginx | *-nginx-keep) echo "$NGINX_PIDS" ;;
    esac
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

run_target() { # target round: measured run, checks, records the figures
    local t=$1 round=$2 rps p99 bad sockerr reqs b0 b1 f0 f1 x0 x1 wcpu bpids fpids
    bpids=$(backend_pids "$t")
    fpids=$(front_pids "$t")
    # shellcheck disable=SC2086
    b0=$(cpu_ns $bpids)
    # shellcheck disable=SC2086
    f0=$(cpu_ns $fpids)
    x0=$(box_ticks)
    wrk_run "$t-$round" "$DURATION" "${URL[$t]}" -H "$AUTH"
    x1=$(box_ticks)
    # shellcheck disable=SC2086
    b1=$(cpu_ns $bpids)
    # shellcheck disable=SC2086
    f1=$(cpu_ns $fpids)
    wcpu=$(cat "$T/wrk-$t-$round.cpu")
    read -r rps p99 bad sockerr < <(wrk_figures "$T/wrk-$t-$round.txt")
    reqs=$(awk '/ requests in / { print $1; exit }' "$T/wrk-$t-$round.txt")
    if [ "${rps:-0}" = 0 ] || [ "${reqs:-0}" = 0 ]; then
        die "no figures from wrk: $(cat "$T/wrk-$t-$round.txt")"
    fi
    [ "$bad" = 0 ] || die "$t round $round: wrk saw $bad non-2xx answers: the figures are invalid"
    [ "$sockerr" = 0 ] || echo "warning: $t round $round: wrk saw $sockerr socket errors" >&2
    local bcpu fcpu xcpu
    bcpu=$(awk -v d=$((b1 - b0)) -v n="$reqs" 'BEGIN { printf "%.1f", d / n / 1000 }')
    fcpu=$(awk -v d=$((f1 - f0)) -v n="$reqs" 'BEGIN { printf "%.1f", d / n / 1000 }')
    xcpu=$(awk -v d=$((x1 - x0 - wcpu)) -v n="$reqs" -v u="$TICK_US" 'BEGIN { printf "%.1f", d * u / n }')
    printf '  round %d  %-16s %7d req/s  p99 %7.2f ms  CPU/request us: server %5.1f (backend %5.1f, front %5.1f), box less wrk %5.1f\n' \
        "$round" "$t" "$rps" "$p99" "$(awk -v a="$bcpu" -v b="$fcpu" 'BEGIN { printf "%.1f", a + b }')" \
        "$bcpu" "$fcpu" "$xcpu"
    echo "$t $rps $p99 $bcpu $fcpu $xcpu" >>"$T/figures"
}

echo "GET /llm-ops/v1/gpu-types?env=dev (reader token), $size_opsd-byte body; llm-opsd $WORKERS workers, fcgi-min $MIN_PROCS processes, uvicorn $WORKERS workers"
echo "lighttpd $(lighttpd -v 2>/dev/null | awk '{print $1}' | cut -d/ -f2), nginx $(nginx -v 2>&1 | cut -d/ -f2) ($NGINX_WORKERS workers), FastAPI $("$PY" -c 'import fastapi; print(fastapi.__version__)' 2>/dev/null), uvicorn $("$PY" -c 'import uvicorn; print(uvicorn.__version__)' 2>/dev/null)"
echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency; $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server CPU: the backend's processes and the web server's (schedstat); box less wrk: every CPU's busy time less wrk's (counts anything else running)"

if [ "$WARMUP" != 0 ] && [ "$WARMUP" != 0s ]; then
    for t in $TARGETS; do wrk_run "warm-$t" "$WARMUP" "${URL[$t]}" -H "$AUTH"; done
fi
: >"$T/figures"
reversed=$(echo "$TARGETS" | tr ' ' '\n' | grep -v '^$' | tac | tr '\n' ' ')
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then order=$TARGETS; else order=$reversed; fi
    for t in $order; do run_target "$t" "$round"; done
done

# --- memory, after the load: RSS, and PSS (a page shared by n processes counts 1/n in each)
kib() { awk -v k="$2" '$1 == k ":" { print $2; exit }' "$1" 2>/dev/null; }
mem_line() { # label pid
    local rss hwm pss
    rss=$(kib "/proc/$2/status" VmRSS)
    hwm=$(kib "/proc/$2/status" VmHWM)
    pss=$(kib "/proc/$2/smaps_rollup" Pss)
    printf '  %-20s pid %-7s RSS %6.1f MiB (peak %6.1f)  PSS %6.1f MiB\n' "$1" "$2" \
        "$(awk -v k="${rss:-0}" 'BEGIN { print k / 1024 }')" \
        "$(awk -v k="${hwm:-0}" 'BEGIN { print k / 1024 }')" \
        "$(awk -v k="${pss:-0}" 'BEGIN { print k / 1024 }')"
    echo "$1|${pss:-0}" >>"$T/memory"
}

echo
echo "summary (mean of $ROUNDS rounds)"
awk -v targets="$TARGETS" '
    { n[$1]++; rps[$1] += $2; p99[$1] += $3; b[$1] += $4; f[$1] += $5; x[$1] += $6 }
    END {
        k = split(targets, t, " ")
        for (i = 1; i <= k; i++) {
            m = t[i]
            if (!n[m]) continue
            printf "  %-16s %7.0f req/s  p99 %7.2f ms  CPU/request us: server %5.1f (backend %5.1f, front %5.1f), box less wrk %5.1f\n",
                m, rps[m] / n[m], p99[m] / n[m], (b[m] + f[m]) / n[m], b[m] / n[m], f[m] / n[m], x[m] / n[m]
        }
    }' "$T/figures"
echo
echo "ratios (this run)"
awk -v r_min="$TARGET_RATIO" -v r_fa="$TARGET_VS_FASTAPI" -v r_cpu="$TARGET_CPU_VS_FASTAPI" '
    { n[$1]++; rps[$1] += $2; cpu[$1] += $4 + $5; x[$1] += $6 }
    function verdict(ok) { return ok ? "met" : "NOT met" }
    function line(label, a, b, arr) { printf "  %-62s %.2f\n", label, (arr[a] / n[a]) / (arr[b] / n[b]) }
    END {
        if (n["opsd-lighttpd"] && n["min-lighttpd"]) {
            r = (rps["opsd-lighttpd"] / n["opsd-lighttpd"]) / (rps["min-lighttpd"] / n["min-lighttpd"])
            printf "  %-62s %.2f (target >= %.2f: %s)\n", "llm-opsd / fcgi-min behind lighttpd, req/s", r, r_min, verdict(r >= r_min)
        }
        if (n["opsd-nginx-keep"] && n["fastapi-nginx"]) {
            r = (rps["opsd-nginx-keep"] / n["opsd-nginx-keep"]) / (rps["fastapi-nginx"] / n["fastapi-nginx"])
            printf "  %-62s %.2f (target >= %.2f: %s)\n", "llm-opsd (keep-alive) / FastAPI, both behind nginx, req/s", r, r_fa, verdict(r >= r_fa)
            r = (cpu["opsd-nginx-keep"] / n["opsd-nginx-keep"]) / (cpu["fastapi-nginx"] / n["fastapi-nginx"])
            printf "  %-62s %.2f (target <= %.2f: %s)\n", "  the same, server CPU per request", r, r_cpu, verdict(r <= r_cpu)
            line("  the same, box less wrk per request", "opsd-nginx-keep", "fastapi-nginx", x)
        }
        if (n["opsd-nginx"] && n["fastapi-nginx"])
            line("llm-opsd (keep-alive off) / FastAPI, both behind nginx, req/s", "opsd-nginx", "fastapi-nginx", rps)
        if (n["opsd-nginx-keep"] && n["opsd-nginx"])
            line("llm-opsd behind nginx, keep-alive on / off, req/s", "opsd-nginx-keep", "opsd-nginx", rps)
        if (n["opsd-nginx-keep"] && n["opsd-nginx"])
            line("  the same, server CPU per request", "opsd-nginx-keep", "opsd-nginx", cpu)
        if (n["opsd-nginx-keep"] && n["fastapi"])
            line("llm-opsd (nginx, keep-alive) / FastAPI alone, req/s", "opsd-nginx-keep", "fastapi", rps)
        if (n["opsd-lighttpd"] && n["fastapi-nginx"])
            line("llm-opsd (lighttpd) / FastAPI behind nginx, req/s", "opsd-lighttpd", "fastapi-nginx", rps)
    }' "$T/figures"

echo
echo "memory"
: >"$T/memory"
mem_line "llm-opsd master" "$master"
for pid in $OPSD_WORKERS; do mem_line "llm-opsd worker" "$pid"; done
for pid in $MIN_PROCS_PIDS; do mem_line "fcgi-min process" "$pid"; done
for pid in $FASTAPI_PIDS; do
    if [ "$pid" = "$fastapi_pid" ]; then
        mem_line "uvicorn supervisor" "$pid"
    elif tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'resource_tracker'; then
        mem_line "uvicorn's mp helper" "$pid"
    else
        mem_line "uvicorn worker" "$pid"
    fi
done
mem_line "lighttpd (bench)" "$LIGHTTPD_PID"
mem_line "nginx master" "$NGINX_MASTER"
for pid in $NGINX_PIDS; do mem_line "nginx worker" "$pid"; done
awk -F'|' -v target="$TARGET_PSS_MIB" '
    $1 == "llm-opsd worker" { n++; s += $2; if ($2 > max) max = $2 }
    END {
        if (n) printf "  llm-opsd worker PSS: mean %.1f MiB, largest %.1f MiB (target <= %d MiB: %s)\n",
                      s / n / 1024, max / 1024, target, (max / 1024 <= target) ? "met" : "NOT met"
    }' "$T/memory"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
