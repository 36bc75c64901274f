#!/usr/bin/env python3
"""two-nodes: two complete llm-ops nodes on one PostgreSQL, behind one lighttpd.

Node A is tests/harness/stack with its own PostgreSQL; node B is a second stack on A's
database (--conninfo): each a master with 2 workers, its own run directory, metrics file,
jobs process and lighttpd (to talk to one node on purpose). A third lighttpd, the front, has
both nodes' sockets as two fastcgi backends (round-robin). Asserted:

  1. a flag flip, a token revoke (llm-opsctl with A's configuration) and a GPU-type change
     made through A are seen by every worker of B within a second (LISTEN/NOTIFY), and no
     read of B after that shows the old value;
  2. 200 training jobs created through the front while the MLflow fake refuses connections
     are all created (201) while it is down, and after it returns each job has exactly one
     run in MLflow with its param and its points once; runs/create reached MLflow exactly
     200 times; every outbox row is done; both jobs processes delivered some (their
     llmops_outbox_deliveries_total{category="experiment_tracking",operation="create_run",outcome="ok"} add up to 200).
"""
import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scaleout_common import (  # noqa: E402
    BIN, SRC, Failed, check, ctl, expect, log, main, make_dir, metrics, request, spawn,
    stack_start, tail, wait_for, free_port)

JOBS = int(os.environ.get("SCALEOUT_JOBS", "200"))
VISIBLE_S = 1.0  # the promise: a change is seen by every node within a second
CONFIRM_READS = 20  # reads of B after the change is first seen: none may be stale


def children(pid):
    out = set()
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, t)) as f:
            out |= {int(x) for x in f.read().split()}
    return out


def start_fake(d):
    ready = os.path.join(d, "fake.ready")
    spawn([sys.executable, os.path.join(SRC, "tests", "fakes", "mlflow_fake.py"), "--port", "0",
           "--ready-file", ready, "--max-seconds", "600", "--idle-timeout", "300",
           "--exit-with-parent"], os.path.join(d, "fake.log"))

    def port():
        try:
            with open(ready) as f:
                return int(f.read().split()[-1])
        except (OSError, ValueError, IndexError):
            return 0

    p = wait_for("the MLflow fake starts", 15, port)
    return "http://127.0.0.1:%d" % p


def fake(url, method, path, body=None):
    s, j, _ = request(url, method, path, body=body)
    check(s == 200, "fake %s %s: HTTP %d" % (method, path, s))
    return j


def start_front(d, sockets):
    """One lighttpd, both nodes as fastcgi backends."""
    port = free_port()
    backends = ",\n".join('( "socket" => "%s", "check-local" => "disable" )' % s for s in sockets)
    conf = os.path.join(d, "front.conf")
    with open(conf, "w") as f:
        f.write("""server.modules = ( "mod_fastcgi" )
server.document-root = "%(d)s"
server.bind = "127.0.0.1"
server.port = %(port)d
server.errorlog = "%(d)s/front-error.log"
server.max-request-size = 131072
fastcgi.balance = "round-robin"
fastcgi.server = ( "/llm-ops/" => ( %(backends)s ) )
""" % {"d": d, "port": port, "backends": backends})
    spawn(["lighttpd", "-D", "-f", conf], os.path.join(d, "front.log"))
    url = "http://127.0.0.1:%d/llm-ops/v1" % port
    wait_for("the front lighttpd answers /health", 15,
             lambda: request(url, "GET", "/health")[0] == 200, 0.1)
    return url


def seen_within(what, node_url, probe, change):
    """probe() -> True once B shows the change. change() makes it through A. Returns the
    seconds from the end of change() to the first read of B that shows it; then
    CONFIRM_READS more reads must all show it (each worker of B, not only one)."""
    for _ in range(6):  # every worker of B has read (and cached) the old value
        check(not probe(), "%s: B shows the change before it is made" % what)
    change()
    t = time.monotonic()
    n = 0
    while not probe():
        n += 1
        if time.monotonic() - t > 5:
            raise Failed("%s: B does not show it after 5 s (%d reads)" % (what, n))
        time.sleep(0.01)
    dt = time.monotonic() - t
    stale = sum(0 if probe() else 1 for _ in range(CONFIRM_READS))
    log("%s: seen on B %.3f s after the change (%d stale reads before; %d of %d later reads "
        "stale)" % (what, dt, n, stale, CONFIRM_READS))
    check(dt < VISIBLE_S, "%s: B saw it only after %.3f s (promise: %.1f s)" % (what, dt,
                                                                                 VISIBLE_S))
    check(stale == 0, "%s: %d of %d reads of B after the change still showed the old value"
          % (what, stale, CONFIRM_READS))
    return dt


def test():
    d = make_dir("llmops-2n.")
    fake_url = start_fake(d)
    log("MLflow fake at %s" % fake_url)
    dropin = os.path.join(d, "10-mlflow.conf")
    with open(dropin, "w") as f:
        f.write('[plugin "mlflow"]\nmodule = mlflow\nurl = %s\ntimeout_ms = 3000\n'
                'connect_timeout_ms = 500\nretries = 0\n'
                '[flags "stg"]\nexperiment_tracking = mlflow\n'
                'experiment_tracking.fallback = tracking-pg\n' % fake_url)
    common = ["--custom-plugins", "--drop-in", dropin, "--workers", "2",
              "--set", "outbox.base_delay_ms=100", "--set", "outbox.max_delay_ms=1500",
              "--set", "outbox.max_attempts=1000", "--set", "breaker.min_calls=100000"]
    a_dir, b_dir = os.path.join(d, "a"), os.path.join(d, "b")
    a = stack_start(a_dir, *common, "--token-prefix", "node-a")
    conninfo = "host=%s port=%s user=postgres dbname=llmops" % (a["PGHOST"], a["PGPORT"])
    b = stack_start(b_dir, *common, "--token-prefix", "node-b", "--conninfo", conninfo)
    check(a["LLMOPS_JOBS_PID"] and b["LLMOPS_JOBS_PID"] and
          a["LLMOPS_JOBS_PID"] != b["LLMOPS_JOBS_PID"], "two jobs processes")
    front = start_front(d, [a["LLMOPS_SOCKET"], b["LLMOPS_SOCKET"]])
    log("node A %s, node B %s, front %s" % (a["LLMOPS_URL"], b["LLMOPS_URL"], front))
    A, B = a["LLMOPS_URL"], b["LLMOPS_URL"]
    a_op, b_rd = a["LLMOPS_OPERATOR_TOKEN"], b["LLMOPS_READER_TOKEN"]

    # the front reaches both nodes: the pids of /health
    pids = set()
    for _ in range(20):
        s, j, _ = request(front, "GET", "/health")
        expect(s, 200, j, "GET front /health")
        pids.add(j["data"]["pid"])
    workers = {n: children(int(open(os.path.join(dd, "llm-opsd.pid")).read()))
               for n, dd in (("A", a_dir), ("B", b_dir))}
    hit = {n: len(pids & w) for n, w in workers.items()}
    log("the front's /health answered from %d worker pids: %d of node A's, %d of node B's"
        % (len(pids), hit["A"], hit["B"]))
    check(hit["A"] > 0 and hit["B"] > 0, "the front did not reach both nodes: %s" % hit)

    # 1a. a flag flip through A, seen on B
    def flag_on_b():
        s, j, _ = request(B, "GET", "/flags?env=prod", token=b_rd)
        expect(s, 200, j, "GET B /flags")
        f = [x for x in j["data"]["flags"] if x["category"] == "experiment_tracking"][0]
        return f["active"] == "mlflow"

    def flip():
        s, j, _ = request(A, "PUT", "/flags/prod/experiment_tracking", token=a_op,
                          body={"active": "mlflow", "fallback": "tracking-pg",
                                "reason": "two-nodes test"})
        expect(s, 200, j, "PUT A /flags/prod/experiment_tracking")

    t_flag = seen_within("flag flip", B, flag_on_b, flip)

    # 1b. a token revoked through A (llm-opsctl with A's configuration), refused by B
    tok = ctl(a["LLMOPS_CONFIG"], "token", "create", "--name", "two-nodes-t", "--role", "reader")

    def refused_on_b():
        s, j, _ = request(B, "GET", "/gpu-types?env=dev", token=tok)
        check(s in (200, 401), "GET B /gpu-types with the token: HTTP %d" % s)
        return s == 401

    t_token = seen_within("token revoke", B, refused_on_b,
                          lambda: ctl(a["LLMOPS_CONFIG"], "token", "revoke", "two-nodes-t"))

    # 1c. a GPU type's capacity changed through A, read on B
    s, j, _ = request(B, "GET", "/gpu-types/nvidia-t4?env=dev", token=b_rd)
    expect(s, 200, j, "GET B /gpu-types/nvidia-t4")
    new_cap = j["data"]["capacity"] + 7

    def cap_on_b():
        s, j, _ = request(B, "GET", "/gpu-types?env=dev", token=b_rd)
        expect(s, 200, j, "GET B /gpu-types")
        return [g for g in j["data"]["gpu_types"] if g["name"] == "nvidia-t4"][0][
            "capacity"] == new_cap

    def patch():
        s, j, _ = request(A, "PATCH", "/gpu-types/nvidia-t4?env=dev", token=a_op,
                          body={"capacity": new_cap})
        expect(s, 200, j, "PATCH A /gpu-types/nvidia-t4")

    t_gpu = seen_within("GPU-type change", B, cap_on_b, patch)

    # 2. 200 training jobs through the front while MLflow refuses connections
    before = {n: metrics(u) for n, u in (("A", A), ("B", B))}
    refuse_s = 15
    fake(fake_url, "POST", "/_refuse", {"seconds": refuse_s})
    t0 = time.monotonic()
    s, j, _ = request(front, "GET", "/gpu-types?env=stg", token=a["LLMOPS_READER_TOKEN"])
    expect(s, 200, j, "GET /gpu-types?env=stg")
    gpu = j["data"]["gpu_types"][0]["name"]
    ids, served_by = [], {}
    lock = threading.Lock()
    errors = []

    def make(lo, hi, token):
        for i in range(lo, hi):
            s, j, _ = request(front, "POST", "/training-jobs?env=stg", token=token, body={
                "name": "job-%d" % i, "experiment": "two-nodes", "base_model": "m",
                "dataset": "d", "gpu_type": gpu, "gpu_count": 1,
                "hyperparameters": {"i": i}})
            if s != 201:
                errors.append("POST /training-jobs %d: HTTP %d %s" % (i, s, json.dumps(j)[:300]))
                return
            jid = j["data"]["id"]
            s, j2, _ = request(front, "POST", "/training-jobs/%s/log" % jid, token=token, body={
                "metrics": [{"key": "loss", "value": k / 8.0, "step": k,
                             "timestamp_ms": 1700000000000 + k} for k in range(3)]})
            if s != 202:
                errors.append("POST /training-jobs/%s/log: HTTP %d" % (jid, s))
                return
            with lock:
                ids.append((i, jid, j["data"]["tracking"]["state"]))

    threads = [threading.Thread(target=make, args=(k * JOBS // 4, (k + 1) * JOBS // 4,
                                                   a_op if k % 2 == 0 else
                                                   b["LLMOPS_OPERATOR_TOKEN"]))
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = time.monotonic() - t0
    check(not errors, "; ".join(errors[:5]))
    check(len(ids) == JOBS, "%d jobs made, wanted %d" % (len(ids), JOBS))
    log("%d jobs (and %d log calls) created through the front in %.1f s while MLflow is down"
        % (JOBS, JOBS, made))
    check(made < refuse_s - 2, "creating the jobs took %.1f s: MLflow was back before the end"
          % made)
    check(all(st == "pending" for _, _, st in ids), "a job was not pending at creation")
    s, j, _ = request(A, "GET", "/outbox?env=stg&state=pending&limit=1", token=a_op)
    expect(s, 200, j, "GET /outbox")
    pending = j["data"]["counts"]["pending"]
    log("outbox: %d rows pending while MLflow is down" % pending)
    check(pending >= 2 * JOBS, "only %d outbox rows pending, wanted >= %d" % (pending, 2 * JOBS))

    # ... MLflow is back after refuse_s: everything is delivered
    back = t0 + refuse_s
    deadline = back + 90

    def all_ready():
        s, j, _ = request(A, "GET", "/training-jobs?env=stg&limit=1000", token=a_op)
        expect(s, 200, j, "GET /training-jobs")
        states = [x["tracking"]["state"] for x in j["data"]["training_jobs"]]
        if time.monotonic() > deadline:
            raise Failed("after 90 s: %s" % {k: states.count(k) for k in set(states)})
        return len(states) == JOBS and all(x == "ready" for x in states)

    wait_for("every job ready", refuse_s + 95, all_ready, 0.5)
    log("all %d jobs ready %.1f s after MLflow came back" % (JOBS, time.monotonic() - back))
    # no row left, none dead
    s, j, _ = request(A, "GET", "/outbox?env=stg&limit=1", token=a_op)
    expect(s, 200, j, "GET /outbox")
    counts = j["data"]["counts"]
    check(counts.get("pending", 0) == 0 and counts.get("dead", 0) == 0,
          "outbox after delivery: %s" % counts)

    state = fake(fake_url, "GET", "/_state")
    runs_of = {}
    for r in state["runs"]:
        jid = (r.get("tags") or {}).get("llmops.job_id")
        if jid:
            runs_of.setdefault(jid, []).append(r)
    for i, jid, _ in ids:
        rs = runs_of.get(jid, [])
        check(len(rs) == 1, "job %s has %d runs in MLflow" % (jid, len(rs)))
        steps = sorted(m["step"] for m in rs[0].get("metrics", []))
        check(steps == [0, 1, 2], "job %s: points at steps %s, wanted [0, 1, 2]" % (jid, steps))
        check(rs[0].get("params", {}).get("i") == str(i), "job %s: param i = %r" % (
            jid, rs[0].get("params", {}).get("i")))
    stats = fake(fake_url, "GET", "/_stats")
    creates = stats["counts"].get("/api/2.0/mlflow/runs/create", 0)
    batches = stats["counts"].get("/api/2.0/mlflow/runs/log-batch", 0)
    log("MLflow received runs/create %d times, runs/log-batch %d times" % (creates, batches))
    check(creates == JOBS, "runs/create reached MLflow %d times for %d jobs" % (creates, JOBS))

    key = 'llmops_outbox_deliveries_total{category="experiment_tracking",operation="create_run",outcome="ok"}'
    did = {}
    for n, u in (("A", A), ("B", B)):
        m = metrics(u)
        did[n] = int(m.get(key, 0) - before[n].get(key, 0))
        retries = int(m.get(key.replace('"ok"', '"retry"'), 0) -
                      before[n].get(key.replace('"ok"', '"retry"'), 0))
        log("node %s's jobs process delivered %d create_run (and tried %d times while MLflow "
            "was down)" % (n, did[n], retries))
    check(did["A"] + did["B"] == JOBS, "the jobs processes counted %d + %d create_run "
          "deliveries for %d jobs" % (did["A"], did["B"], JOBS))
    check(did["A"] > 0 and did["B"] > 0, "one jobs process delivered nothing: %s" % did)
    for n, dd in (("A", a_dir), ("B", b_dir)):
        for p in ("llm-opsd.log", "jobs.log"):
            t = tail(os.path.join(dd, p), 400)
            check("ERROR" not in t and "AddressSanitizer" not in t and "runtime error" not in t,
                  "node %s %s:\n%s" % (n, p, t[-2000:]))
    log("figures: visible on B after %.3f s (flag), %.3f s (token), %.3f s (GPU type); "
        "%d jobs, delivered A %d + B %d" % (t_flag, t_token, t_gpu, JOBS, did["A"], did["B"]))


if __name__ == "__main__":
    check(os.path.exists(os.path.join(BIN, "llm-opsd")), "no %s/llm-opsd" % BIN)
    sys.exit(main(test, int(os.environ.get("SCALEOUT_LIMIT_S", "240"))))
