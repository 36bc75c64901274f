"""Shared pieces of the scale-out tests: HTTP, the stack harness, processes, cleanup.

Python standard library only; loopback only; every process a test starts is registered here
and stopped at the end, on failure, on SIGTERM and after the test's own time limit.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("LLMOPS_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("LLMOPS_BIN_DIR") or os.path.join(SRC, "build", "bin")
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
STACK = os.path.join(SRC, "tests", "harness", "stack")
IS_ROOT = os.geteuid() == 0


class Failed(Exception):
    pass


class TimeLimit(Exception):
    pass


def log(msg):
    print("%8.2f %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


def check(cond, msg):
    if not cond:
        raise Failed(msg)


T0 = time.monotonic()
_cleanups = []


def on_cleanup(fn, *args):
    _cleanups.append((fn, args))


def run_cleanups():
    while _cleanups:
        fn, args = _cleanups.pop()
        try:
            fn(*args)
        except Exception as e:  # cleanup goes on whatever one step does
            print("cleanup: %s%r: %s" % (fn.__name__, args, e), file=sys.stderr)


def main(test, limit_seconds):
    """Runs test() with an alarm; returns the exit status; everything is stopped after."""

    def alarm(sig, frame):
        raise TimeLimit("the test did not finish within %d s" % limit_seconds)

    def term(sig, frame):
        raise Failed("stopped by signal %d" % sig)

    signal.signal(signal.SIGALRM, alarm)
    signal.signal(signal.SIGTERM, term)
    signal.alarm(limit_seconds)
    rc = 0
    try:
        test()
        log("PASS")
    except (Failed, TimeLimit) as e:
        log("FAIL: %s" % e)
        rc = 1
    except Exception:
        import traceback
        traceback.print_exc()
        rc = 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run_cleanups()
    return rc


def make_dir(prefix):
    """A short private directory (socket paths must fit in 107 bytes) the postgres user can
    traverse; removed at the end."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    on_cleanup(shutil.rmtree, d, True)
    return d


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ------------------------------------------------------------------ HTTP


def request(url, method, path, token=None, body=None, timeout=10):
    """(status, parsed JSON or None, headers). Status 0 when no answer came."""
    m = re.match(r"http://([^/:]+):(\d+)(/.*)?$", url)
    host, port, prefix = m.group(1), int(m.group(2)), (m.group(3) or "")
    headers = {}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, prefix + path, body=data, headers=headers)
        r = c.getresponse()
        raw = r.read()
        try:
            j = json.loads(raw) if raw else None
        except ValueError:
            j = None
        return r.status, j, dict(r.getheaders())
    except (OSError, http.client.HTTPException):
        return 0, None, {}
    finally:
        c.close()


def expect(status, want, j, what):
    check(status == want, "%s: HTTP %d, wanted %d: %s" % (what, status, want,
                                                           json.dumps(j)[:400]))


# ------------------------------------------------------------------ the stack harness


def read_env(d):
    env = {}
    with open(os.path.join(d, "env")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            env[k] = v
    return env


def stack_start(d, *opts):
    """tests/harness/stack start D OPTS; stopped (and its state removed) at the end."""
    on_cleanup(stack_stop, d)
    t = time.monotonic()
    r = subprocess.run([STACK, "start", d] + list(opts), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120)
    if r.returncode != 0:
        raise Failed("stack start %s failed:\n%s" % (d, r.stdout[-4000:]))
    log("stack start %s: %.1f s: %s" % (os.path.basename(d), time.monotonic() - t,
                                         r.stdout.strip().splitlines()[-1]))
    return read_env(d)


def stack_stop(d):
    if os.path.isdir(d):
        subprocess.run([STACK, "stop", d, "--clean"], stdout=subprocess.DEVNULL,
                       stderr=sys.stderr, timeout=120)


def ctl(config, *args):
    r = subprocess.run([os.path.join(BIN, "llm-opsctl"), "--config", config] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    if r.returncode != 0:
        raise Failed("llm-opsctl %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout.strip()


def spawn(argv, logfile, **kw):
    """A child in its own process group, stopped at the end (SIGTERM, then SIGKILL)."""
    f = open(logfile, "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                         start_new_session=True, **kw)
    f.close()
    on_cleanup(stop_process, p)
    return p


def stop_process(p):
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(5)


def wait_for(what, seconds, fn, interval=0.05):
    end = time.monotonic() + seconds
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise Failed("%s: not within %.0f s" % (what, seconds))
        time.sleep(interval)


def alive(pid):
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, ValueError):
        return False


def metrics(url):
    """The Prometheus text of a node (its /llm-ops/metrics) as {series: value}."""
    m = re.match(r"http://([^/:]+):(\d+)", url)
    c = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=10)
    try:
        c.request("GET", "/llm-ops/metrics")
        r = c.getresponse()
        text = r.read().decode()
        check(r.status == 200, "GET %s metrics: HTTP %d" % (url, r.status))
    finally:
        c.close()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""
