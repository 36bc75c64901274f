#!/usr/bin/env python3
"""pg-failover: a PostgreSQL primary fails over to its synchronous standby under write load.

Two private clusters on unix sockets in the test's directory: a primary (initdb) with
synchronous_standby_names naming the standby, and the standby (pg_basebackup -R, streaming,
application_name node<x>). One llm-ops node (tests/harness/stack --conninfo) with

    conninfo = host=DIR/a/sock,DIR/b/sock port=PA,PB user=postgres dbname=llmops
               target_session_attrs=read-write

Each trial: writers POST GPU types and training jobs (tracking-pg, delivered by the jobs
process) and a poller GETs /health every 50 ms; the primary is stopped (pg_ctl stop: -m fast in
odd trials, -m immediate, a crash, in even ones), a second later the standby is promoted
(pg_ctl promote). Asserted, per trial:

  - /health answered 503 after the stop and 200 again after the promotion, by itself (no
    restart: the master's, workers' and jobs process's pids are the same), and nothing but
    200 or 503;
  - writes were answered 2xx before the stop and after the promotion; every answer was 2xx or
    503 DATABASE_UNAVAILABLE;
  - every GPU type answered 201 is in the new primary (read with psql) and in the API's list;
  - the workers LISTEN on the new primary: a GPU type changed there with psql is seen through
    the API within a second, by every later read;
  - every training job answered 201 becomes ready (the jobs process delivers on the new
    primary).

Then the old primary is rebuilt as the synchronous standby of the new one, and the next trial
fails over the other way (SCALEOUT_TRIALS, default 4).
"""
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scaleout_common import (  # noqa: E402
    BIN, IS_ROOT, PGBIN, Failed, check, expect, log, main, make_dir, metrics, on_cleanup,
    request, stack_start, tail, wait_for, free_port, alive)

TRIALS = int(os.environ.get("SCALEOUT_TRIALS", "4"))
WRITERS = 2
OUTAGE_S = 1.0  # between the primary's stop and the standby's promotion
LOAD_BEFORE_S = 2.0
LOAD_AFTER_S = 2.0


def as_pg(argv):
    return (["runuser", "-u", "postgres", "--"] if IS_ROOT else []) + argv


class Cluster:
    def __init__(self, root, name):
        self.name = name
        self.dir = os.path.join(root, name)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.logf = os.path.join(self.dir, "log", "postgresql.log")
        self.port = free_port()
        self.app = "node" + name

    def mkdirs(self):
        for p in (self.dir, self.sock, os.path.dirname(self.logf)):
            os.makedirs(p, exist_ok=True)
            if IS_ROOT:
                shutil.chown(p, "postgres")
        os.chmod(self.dir, 0o755)

    def run(self, argv, timeout=60):
        r = subprocess.run(as_pg(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            raise Failed("%s: %s: exit %d:\n%s\n%s" % (self.name, " ".join(argv[:2]),
                                                       r.returncode, r.stdout[-2000:],
                                                       tail(self.logf)))
        return r.stdout

    def initdb(self):
        self.mkdirs()
        self.run([PGBIN + "/initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync"])

    def basebackup_from(self, primary):
        """A streaming standby of primary: pg_basebackup -R, its own application_name."""
        if os.path.isdir(self.data):
            shutil.rmtree(self.data)
        self.mkdirs()
        self.run([PGBIN + "/pg_basebackup", "-D", self.data, "-h", primary.sock, "-p",
                  str(primary.port), "-U", "postgres", "-X", "stream", "-R", "-c", "fast",
                  "--no-sync"])
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
            f.write("primary_conninfo = 'host=%s port=%d user=postgres application_name=%s'\n"
                    % (primary.sock, primary.port, self.app))

    def start(self):
        on_cleanup(self.stop_quietly)
        self.run([PGBIN + "/pg_ctl", "-D", self.data, "-l", self.logf, "-w", "-t", "30", "-o",
                  "-k %s -p %d -c listen_addresses='' -c fsync=off" % (self.sock, self.port),
                  "start"])

    def stop(self, mode):
        self.run([PGBIN + "/pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop"])

    def stop_quietly(self):
        subprocess.run(as_pg([PGBIN + "/pg_ctl", "-D", self.data, "-m", "immediate", "-w",
                              "-t", "30", "stop"]), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)

    def promote(self):
        self.run([PGBIN + "/pg_ctl", "-D", self.data, "-w", "-t", "30", "promote"])

    def psql(self, sql, db="llmops"):
        r = subprocess.run([PGBIN + "/psql", "-h", self.sock, "-p", str(self.port), "-U",
                            "postgres", "-d", db, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1",
                            "-c", sql], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise Failed("%s: psql %s: %s" % (self.name, sql, r.stderr))
        return r.stdout.strip()

    def make_synchronous_standby(self, standby):
        """standby (started, streaming from self) becomes self's synchronous standby."""
        self.psql("ALTER SYSTEM SET synchronous_standby_names = '%s'" % standby.app, "postgres")
        self.psql("ALTER SYSTEM SET synchronous_commit = 'on'", "postgres")
        self.psql("SELECT pg_reload_conf()", "postgres")
        wait_for("%s streams from %s as the synchronous standby" % (standby.name, self.name), 30,
                 lambda: self.psql("SELECT sync_state FROM pg_stat_replication WHERE "
                                   "application_name = '%s'" % standby.app, "postgres")
                 == "sync", 0.1)


GPU = {"vendor": "nvidia", "model": "T", "memory_gib": 16, "resource_name": "nvidia.com/gpu",
       "node_selector": {"key": "k", "value": "v"}, "capacity": 4}


class Load:
    """Writers and a /health poller, each answer recorded with its time."""

    def __init__(self, url, token, trial):
        self.url, self.token, self.trial = url, token, trial
        self.stop = threading.Event()
        self.writes = []  # (t_start, t_end, kind, key, status, error code)
        self.health = []  # (t, status)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.gpu_writer, args=(k,))
                        for k in range(WRITERS)]
        self.threads.append(threading.Thread(target=self.job_writer))
        self.threads.append(threading.Thread(target=self.poller))

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def record(self, t0, kind, key, s, j):
        code = None
        if j and j.get("status") == "error":
            code = (j.get("data") or {}).get("error", {}).get("code")
        with self.lock:
            self.writes.append((t0, time.monotonic(), kind, key, s, code))

    def gpu_writer(self, k):
        n = 0
        while not self.stop.is_set():
            name = "fo-%d-%d-%d" % (self.trial, k, n)
            n += 1
            t0 = time.monotonic()
            s, j, _ = request(self.url, "POST", "/gpu-types?env=prod", token=self.token,
                              body=dict(GPU, name=name))
            self.record(t0, "gpu", name, s, j)
            time.sleep(0.01)

    def job_writer(self):
        n = 0
        while not self.stop.is_set():
            t0 = time.monotonic()
            s, j, _ = request(self.url, "POST", "/training-jobs?env=dev", token=self.token, body={
                "name": "fo-%d-%d" % (self.trial, n), "experiment": "failover",
                "base_model": "m", "dataset": "d", "gpu_type": "nvidia-t4", "gpu_count": 1,
                "hyperparameters": {"n": n}})
            n += 1
            key = j["data"]["id"] if s == 201 else None
            self.record(t0, "job", key, s, j)
            time.sleep(0.05)

    def poller(self):
        while not self.stop.is_set():
            s, _, _ = request(self.url, "GET", "/health", timeout=5)
            with self.lock:
                self.health.append((time.monotonic(), s))
            time.sleep(0.05)


def pids_of(env):
    master = int(open(env["LLMOPS_PID_FILE"]).read())
    workers = set()
    for t in os.listdir("/proc/%d/task" % master):
        with open("/proc/%d/task/%s/children" % (master, t)) as f:
            workers |= {int(x) for x in f.read().split()}
    return master, workers, int(env["LLMOPS_JOBS_PID"])


def trial(n, env, primary, standby):
    url, token = env["LLMOPS_URL"], env["LLMOPS_OPERATOR_TOKEN"]
    # odd trials stop the primary cleanly (fast: it ships all its WAL before it exits), even
    # ones crash it (immediate: only the synchronous standby keeps acknowledged writes safe)
    mode = "fast" if n % 2 else "immediate"
    check(primary.psql("SELECT sync_state FROM pg_stat_replication WHERE application_name = "
                       "'%s'" % standby.app) == "sync" and
          primary.psql("SHOW synchronous_commit") == "on",
          "trial %d: %s is not the synchronous standby of %s" % (n, standby.name, primary.name))
    pids = pids_of(env)
    load = Load(url, token, n)
    load.start()
    try:
        time.sleep(LOAD_BEFORE_S)
        t_stop = time.monotonic()
        primary.stop(mode)
        t_stopped = time.monotonic()
        time.sleep(OUTAGE_S)
        t_promote = time.monotonic()
        standby.promote()
        t_promoted = time.monotonic()
        wait_for("/health is 200 again after the promotion", 30,
                 lambda: any(t > t_promoted and s == 200 for t, s in list(load.health)), 0.05)
        t_back = min(t for t, s in load.health if t > t_promoted and s == 200)
        time.sleep(LOAD_AFTER_S)
    finally:
        load.finish()
    h = load.health
    codes = sorted({s for _, s in h})
    down = [t for t, s in h if t > t_stop and s == 503]
    log("trial %d: %s stopped (-m %s) in %.2f s, %s promoted in %.2f s; /health: %d polls, "
        "%d answered 503, 200 again %.2f s after the promotion ended (%.2f s after the stop); "
        "codes %s" % (n, primary.name, mode, t_stopped - t_stop, standby.name,
                      t_promoted - t_promote, len(h), len(down), t_back - t_promoted,
                      t_back - t_stop, codes))
    check(down, "trial %d: /health never answered 503 after the primary stopped" % n)
    check(h[-1][1] == 200, "trial %d: the last /health answered %d" % (n, h[-1][1]))
    check(set(codes) <= {200, 503}, "trial %d: /health answered %s" % (n, codes))

    w = load.writes
    ok = [x for x in w if x[4] in (200, 201)]
    bad = [x for x in w if x[4] not in (200, 201)]
    before = [x for x in ok if x[1] < t_stop]
    after = [x for x in ok if x[0] > t_promoted]
    other = [x for x in bad if not (x[4] == 503 and x[5] == "DATABASE_UNAVAILABLE")]
    log("trial %d: %d writes: %d answered 2xx (%d before the stop, %d started after the "
        "promotion), %d answered 503" % (n, len(w), len(ok), len(before), len(after), len(bad)))
    check(before and after, "trial %d: writes answered 2xx before the stop (%d) and after the "
          "promotion (%d)" % (n, len(before), len(after)))
    check(not other, "trial %d: answers neither 2xx nor 503 DATABASE_UNAVAILABLE: %s"
          % (n, [(x[2], x[4], x[5]) for x in other[:5]]))

    # no restart: the same processes
    check(pids_of(env) == pids, "trial %d: llm-opsd's processes changed: %s -> %s"
          % (n, pids, pids_of(env)))
    check(alive(pids[2]), "trial %d: the jobs process died" % n)

    # every GPU type answered 201 is on the new primary, and listed by the API
    acked = {x[3] for x in ok if x[2] == "gpu"}
    stored = set(standby.psql("SELECT name FROM gpu_types WHERE environment = 'prod' AND name "
                              "LIKE 'fo-%d-%%'" % n).split())
    missing = acked - stored
    s, j, _ = request(url, "GET", "/gpu-types?env=prod", token=token)
    expect(s, 200, j, "GET /gpu-types")
    listed = {g["name"] for g in j["data"]["gpu_types"]}
    unanswered = {x[3] for x in bad if x[2] == "gpu"} & stored
    log("trial %d: %d GPU types acknowledged, %d stored on %s (%d of them answered 503: "
        "committed, answer lost), %d acknowledged but missing"
        % (n, len(acked), len(stored), standby.name, len(unanswered), len(missing)))
    check(not missing, "trial %d: acknowledged GPU types missing after failover: %s"
          % (n, sorted(missing)[:10]))
    check(acked <= listed, "trial %d: acknowledged GPU types not listed by the API: %s"
          % (n, sorted(acked - listed)[:10]))

    # the workers LISTEN again on the new primary: a change made there directly (psql) to dev
    # (the writers wrote to prod, so dev's list stays short) is seen by every worker within a
    # second, and not only once (a worker that did not LISTEN again would serve its cached
    # list until its next reconnect)
    def capacity():
        s, j, _ = request(url, "GET", "/gpu-types?env=dev", token=token)
        expect(s, 200, j, "GET /gpu-types")
        return [g for g in j["data"]["gpu_types"] if g["name"] == "nvidia-t4"][0]["capacity"]

    old = capacity()
    check(all(capacity() == old for _ in range(10)), "the capacity changed by itself")
    standby.psql("UPDATE gpu_types SET capacity = %d WHERE environment = 'dev' AND name = "
                 "'nvidia-t4'" % (old + 1))
    t0 = time.monotonic()
    wait_for("trial %d: a change on the new primary seen through the API" % n, 5,
             lambda: capacity() == old + 1, 0.01)
    seen = time.monotonic() - t0
    stale = sum(1 for _ in range(20) if capacity() != old + 1)
    log("trial %d: a GPU type changed with psql on %s seen through the API after %.3f s, "
        "%d of 20 later reads stale" % (n, standby.name, seen, stale))
    check(seen < 1.0 and stale == 0, "trial %d: the workers do not hear the new primary's "
          "notifications (seen after %.3f s, %d stale reads)" % (n, seen, stale))

    # every training job answered 201 is delivered by the jobs process on the new primary
    jobs = [x[3] for x in ok if x[2] == "job"]
    check(jobs, "trial %d: no training job was created" % n)

    def ready():
        for jid in jobs:
            s, j, _ = request(url, "GET", "/training-jobs/%s" % jid, token=token)
            if s != 200 or j["data"]["tracking"]["state"] != "ready":
                return False
        return True

    t0 = time.monotonic()
    wait_for("trial %d: every acknowledged training job ready" % n, 30, ready, 0.3)
    log("trial %d: %d training jobs acknowledged, all ready (%.1f s after the check began)"
        % (n, len(jobs), time.monotonic() - t0))
    return {"stop": mode, "writes": len(w), "ok": len(ok), "503": len(bad), "gpu_acked": len(acked),
            "jobs": len(jobs), "back_s": round(t_back - t_promoted, 3),
            "outage_s": round(t_back - t_stop, 3)}


def test():
    d = make_dir("llmops-fo.")
    a, b = Cluster(d, "a"), Cluster(d, "b")
    a.initdb()
    a.start()
    a.psql("CREATE DATABASE llmops", "postgres")
    b.basebackup_from(a)
    b.start()
    a.make_synchronous_standby(b)
    log("primary a (port %d), synchronous standby b (port %d)" % (a.port, b.port))
    conninfo = ("host=%s,%s port=%d,%d user=postgres dbname=llmops "
                "target_session_attrs=read-write" % (a.sock, b.sock, a.port, b.port))
    env = stack_start(os.path.join(d, "node"), "--custom-plugins", "--workers", "2",
                      "--conninfo", conninfo,
                      "--set", "outbox.base_delay_ms=100", "--set", "outbox.max_delay_ms=1000",
                      "--set", "outbox.max_attempts=1000")
    check(b.psql("SELECT count(*) FROM gpu_types") != "0", "the standby has not the seed")
    primary, standby = a, b
    figures = []
    for n in range(1, TRIALS + 1):
        figures.append(trial(n, env, primary, standby))
        if n < TRIALS:
            t = time.monotonic()
            primary.basebackup_from(standby)
            primary.start()
            standby.make_synchronous_standby(primary)
            log("%s rebuilt as the synchronous standby of %s in %.1f s"
                % (primary.name, standby.name, time.monotonic() - t))
            primary, standby = standby, primary
    m = metrics(env["LLMOPS_URL"])
    rec = int(m.get("llmops_database_reconnects_total", 0))
    log("llmops_database_reconnects_total %d" % rec)
    # each worker and the jobs process lose their connection once a trial and reconnect
    check(rec >= 3 * TRIALS, "%d reconnects counted for 2 workers and a jobs process over %d "
          "failovers" % (rec, TRIALS))
    for p in ("llm-opsd.log", "jobs.log"):
        t = tail(os.path.join(d, "node", p), 2000)
        check("AddressSanitizer" not in t and "runtime error" not in t, "%s:\n%s" % (p, t[-2000:]))
    log("figures: %d trials; %s" % (len(figures), json.dumps(figures)))


if __name__ == "__main__":
    check(os.path.exists(os.path.join(BIN, "llm-opsd")), "no %s/llm-opsd" % BIN)
    sys.exit(main(test, int(os.environ.get("SCALEOUT_LIMIT_S", "240"))))
