#!/usr/bin/env python3
"""alerts: a real Alertmanager delivers to llm-opsd's webhook (POST /llm-ops/v1/alerts).

A private stack (tests/harness/stack --custom-plugins: PostgreSQL, llm-opsd behind lighttpd)
with a second tracking-pg instance, tracking-pg-b, set as the fallback of dev's
experiment_tracking (PUT /flags). A token of the alerts role (llm-opsctl token create --role
alerts) in a credentials file. Alertmanager (Debian's prometheus-alertmanager) on a free
127.0.0.1 port, alone (--cluster.listen-address= empty), its storage in the test's directory,
with two webhook receivers at the lighttpd URL: `llmops` (http_config.authorization with the
credentials file) and `wrong` (a token llm-opsd does not know), group_wait 1 s,
group_interval 2 s, repeat_interval 3 s. Asserted:

  - the alerts token may not read (GET /flags: 403) but may post (checked through Alertmanager);
  - an alert posted to Alertmanager's API (POST /api/v2/alerts) with llmops_env=dev and
    llmops_category=experiment_tracking rolls the flag back to its fallback (GET /flags:
    active tracking-pg-b, no candidate); the flag audit's newest row is a rollback whose actor
    is alertmanager:<alertname> and whose reason names the alert and its summary;
  - Alertmanager repeats the notification (its alertmanager_notifications_total for the
    webhook grows by 2 more after the first), yet the alert is recorded once
    (GET /alerts?fingerprint=: one row, times_received >= 2, result done) and the flag was
    changed once (one rollback row by that actor in the audit);
  - llmops_alerts_received_total{status="firing"} >= 2 and
    llmops_alert_actions_total{action="flag_rollback",result="done"} == 1;
  - the alert resolved (endsAt in the past) reaches llm-opsd as a resolved alert: recorded
    with result ignored, counted as llmops_alerts_received_total{status="resolved"};
  - without Alertmanager: version 3 and a bad alerts[1].startsAt are 400s naming the member;
    a reader is refused (403), an operator may post; seven alerts in one message get their
    own results (no fallback, no llmops_env, an unregistered llmops_deployment, an unknown
    environment: failed; no llmops_* label, resolved: ignored; already on the fallback:
    noop), and the same message again answers repeat with the same results; one new alert
    posted by 8 clients at once, its rollback slowed to 0.5 s by a trigger so that the others
    come while it acts, acts once (one answer done and not a repeat, the others
    repeats that are done or pending, never noop; the record done, times_received 8; one
    flag audit row); an alert whose rollback fails for now (a trigger refuses its audit row) is
    an error, made by the next repeat (done, one audit row, the error counted); with PostgreSQL
    stopped the answer is 503 (nothing recorded: Alertmanager retries), and once it is back
    the alert is recorded;
  - the alertmanager.yml of doc/alerting.md passes amtool check-config;
  - an alert routed to the `wrong` receiver is refused (llmops_http_requests_total of POST
    /llm-ops/v1/alerts with code 4xx grows), is not recorded, and Alertmanager counts the
    failure (alertmanager_notifications_failed_total{integration="webhook"} > 0).

Python standard library; about 30 s; bounded to 180 s; every process it started is stopped.
"""
import datetime
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scaleout"))
from scaleout_common import (  # noqa: E402
    STACK, Failed, check, ctl, expect, free_port, log, main, make_dir, metrics, request, spawn,
    stack_start, tail, wait_for)

ALERTMANAGER = os.environ.get("ALERTMANAGER", "/usr/bin/prometheus-alertmanager")
ALERTNAME = "LlmOpsTrackingErrors"
RACERS = 8


def am_request(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data,
                  headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        raw = r.read()
        return r.status, raw
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        c.close()


def am_metrics(port):
    st, raw = am_request(port, "GET", "/metrics")
    check(st == 200, "Alertmanager /metrics: HTTP %d" % st)
    out = {}
    for line in raw.decode().splitlines():
        if line.startswith("#") or not line:
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def am_counter(m, name, **labels):
    """The sum of the series of name whose labels include labels."""
    total = 0.0
    for k, v in m.items():
        mm = re.match(r"([a-z_:]+)(\{(.*)\})?$", k)
        if not mm or mm.group(1) != name:
            continue
        have = dict(re.findall(r'([a-zA-Z_]+)="([^"]*)"', mm.group(3) or ""))
        if all(have.get(a) == b for a, b in labels.items()):
            total += v
    return total


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test():
    check(os.access(ALERTMANAGER, os.X_OK),
          "%s is missing: install prometheus-alertmanager (scripts/install-deps)" % ALERTMANAGER)
    d = make_dir("llmops-alerts-")
    st_dir = os.path.join(d, "stack")
    os.makedirs(st_dir)
    dropin = os.path.join(d, "10-fallback.conf")
    with open(dropin, "w") as f:
        f.write('[plugin "tracking-pg-b"]\nmodule = tracking-pg\n')
    env = stack_start(st_dir, "--custom-plugins", "--drop-in", dropin, "--no-jobs")
    api, admin, reader = env["LLMOPS_URL"], env["LLMOPS_ADMIN_TOKEN"], env["LLMOPS_READER_TOKEN"]
    url = re.sub(r"/llm-ops/v1$", "", api)  # request() takes paths from the host on
    config = env["LLMOPS_CONFIG"]

    # the flag dev/experiment_tracking: tracking-pg, with tracking-pg-b as its fallback
    st, j, _ = request(url, "PUT", "/llm-ops/v1/flags/dev/experiment_tracking", admin,
                       {"active": "tracking-pg", "fallback": "tracking-pg-b",
                        "reason": "alerts test: a fallback to roll back to"})
    expect(st, 200, j, "PUT the flag with a fallback")

    token = ctl(config, "token", "create", "--name", "alertmanager", "--role", "alerts")
    check(re.fullmatch(r"llmops_[0-9a-f]{64}", token), "token create printed %r" % token)
    cred = os.path.join(d, "am.token")
    with open(cred, "w") as f:
        f.write(token + "\n")
    os.chmod(cred, 0o600)
    wrong = os.path.join(d, "wrong.token")
    with open(wrong, "w") as f:
        f.write("llmops_" + "0" * 64 + "\n")

    # the alerts role may not read
    st, j, _ = request(url, "GET", "/llm-ops/v1/flags?env=dev", token)
    expect(st, 403, j, "GET /flags with the alerts token")
    check(j["data"]["error"]["role"] == "alerts", "403 names the role: %s" % json.dumps(j))

    am_port = free_port()
    am_dir = os.path.join(d, "am")
    os.makedirs(am_dir)
    am_conf = os.path.join(d, "alertmanager.yml")
    hook = api + "/alerts"
    with open(am_conf, "w") as f:
        f.write("""route:
  receiver: llmops
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 3s
  routes:
    - receiver: wrong
      matchers: ['llmops_test="wrong-token"']
receivers:
  - name: llmops
    webhook_configs:
      - url: %s
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: %s
  - name: wrong
    webhook_configs:
      - url: %s
        send_resolved: false
        http_config:
          authorization:
            type: Bearer
            credentials_file: %s
""" % (hook, cred, hook, wrong))
    am = spawn([ALERTMANAGER, "--config.file=" + am_conf, "--storage.path=" + am_dir,
                "--web.listen-address=127.0.0.1:%d" % am_port, "--cluster.listen-address=",
                "--log.level=debug"], os.path.join(d, "alertmanager.log"))
    amlog = os.path.join(d, "alertmanager.log")
    def ready():
        if am.poll() is not None:
            raise Failed("Alertmanager exited:\n" + tail(amlog))
        return am_request(am_port, "GET", "/-/ready")[0] == 200

    wait_for("Alertmanager ready", 20, ready, interval=0.1)
    log("Alertmanager on 127.0.0.1:%d" % am_port)

    starts = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    alert = {"labels": {"alertname": ALERTNAME, "llmops_env": "dev",
                        "llmops_category": "experiment_tracking", "severity": "critical"},
             "annotations": {"summary": "tracking-pg errors above 5 %"},
             "startsAt": iso(starts), "generatorURL": "http://prometheus.invalid/graph"}
    st, raw = am_request(am_port, "POST", "/api/v2/alerts", [alert])
    check(st == 200, "POST /api/v2/alerts: HTTP %d %s" % (st, raw[:300]))
    t0 = time.monotonic()

    def rolled_back():
        st, j, _ = request(url, "GET", "/llm-ops/v1/flags?env=dev", reader)
        if st != 200:
            return None
        f = [x for x in j["data"]["flags"] if x["category"] == "experiment_tracking"][0]
        return f if f["active"] == "tracking-pg-b" else None

    f = wait_for("the flag rolled back by the alert", 30, rolled_back, interval=0.2)
    log("flag rolled back %.1f s after the alert was posted to Alertmanager" %
        (time.monotonic() - t0))
    check(f["fallback"] == "tracking-pg-b" and f["candidate"] is None,
          "flag after the rollback: %s" % json.dumps(f))

    st, j, _ = request(url, "GET", "/llm-ops/v1/flags/audit?env=dev&limit=10", reader)
    expect(st, 200, j, "GET the flag audit")
    top = j["data"]["entries"][0]
    check(top["action"] == "rollback" and top["actor"] == "alertmanager:" + ALERTNAME,
          "newest audit row: %s" % json.dumps(top))
    check(ALERTNAME in top["reason"] and "tracking-pg errors above 5 %" in top["reason"],
          "audit reason names the alert: %r" % top["reason"])
    check(top["before"]["active"] == "tracking-pg" and top["after"]["active"] == "tracking-pg-b",
          "audit before/after: %s" % json.dumps(top))

    # Alertmanager repeats the group: wait for two more notifications of the webhook
    def sent():
        return am_counter(am_metrics(am_port), "alertmanager_notifications_total",
                          integration="webhook")

    first = sent()
    wait_for("Alertmanager repeating the notification", 40, lambda: sent() >= first + 2,
             interval=0.5)

    def record():
        st, j, _ = request(url, "GET", "/llm-ops/v1/alerts?status=firing&limit=100", reader)
        expect(st, 200, j, "GET /alerts")
        return [a for a in j["data"]["alerts"] if a["alertname"] == ALERTNAME]

    rows = wait_for("the repeat recorded", 10,
                    lambda: [r for r in record() if r["times_received"] >= 2], interval=0.2)
    check(len(rows) == 1, "the alert is recorded once: %s" % json.dumps(record()))
    row = rows[0]
    check(row["result"] == "done" and row["received_by"] == "alertmanager",
          "record: %s" % json.dumps(row))
    check(row["actions"][0]["action"] == "flag_rollback" and
          row["actions"][0]["target"] == "dev/experiment_tracking" and
          row["actions"][0]["result"] == "done", "record's action: %s" % json.dumps(row))
    check(row["labels"]["llmops_env"] == "dev" and row["starts_at"] == iso(starts) and
          row["ends_at"] is None,
          "record's labels and start: %s" % json.dumps(row))
    fingerprint = row["fingerprint"]
    log("alert %s received %d times, acted once" % (fingerprint, row["times_received"]))

    st, j, _ = request(url, "GET", "/llm-ops/v1/flags/audit?env=dev&limit=100", reader)
    by_alert = [e for e in j["data"]["entries"] if e["actor"] == "alertmanager:" + ALERTNAME]
    check(len(by_alert) == 1, "one flag change by the alert: %s" % json.dumps(by_alert))

    m = metrics(url)
    firing = m.get('llmops_alerts_received_total{status="firing"}', 0)
    done = m.get('llmops_alert_actions_total{action="flag_rollback",result="done"}', 0)
    check(firing >= 2, "llmops_alerts_received_total firing = %g" % firing)
    check(done == 1, "llmops_alert_actions_total flag_rollback done = %g" % done)

    # resolved: Alertmanager sends it (send_resolved), llm-opsd records and counts it only
    alert["endsAt"] = iso(datetime.datetime.now(datetime.timezone.utc) -
                          datetime.timedelta(seconds=1))
    st, raw = am_request(am_port, "POST", "/api/v2/alerts", [alert])
    check(st == 200, "POST the resolved alert: HTTP %d %s" % (st, raw[:300]))

    def resolved():
        st, j, _ = request(url, "GET", "/llm-ops/v1/alerts?status=resolved&fingerprint=" +
                           fingerprint, reader)
        return j["data"]["alerts"] if st == 200 and j["data"]["alerts"] else None

    res = wait_for("the resolved alert delivered", 20, resolved, interval=0.3)
    check(res[0]["result"] == "ignored" and res[0]["actions"] == [],
          "resolved record: %s" % json.dumps(res[0]))
    check(metrics(url).get('llmops_alerts_received_total{status="resolved"}', 0) >= 1,
          "resolved alerts counted")
    st, j, _ = request(url, "GET", "/llm-ops/v1/flags/audit?env=dev&limit=100", reader)
    check(len([e for e in j["data"]["entries"] if e["actor"].startswith("alertmanager:")]) == 1,
          "the resolved alert changed no flag")

    # a wrong token: refused by llm-opsd (401), counted as a failure by Alertmanager
    key4 = 'llmops_http_requests_total{route="/llm-ops/v1/alerts",method="POST",code="4xx"}'
    before4 = metrics(url).get(key4, 0)
    bad = {"labels": {"alertname": "LlmOpsWrongToken", "llmops_test": "wrong-token",
                      "llmops_env": "dev", "llmops_category": "experiment_tracking"},
           "annotations": {"summary": "sent with a wrong token"}}
    st, raw = am_request(am_port, "POST", "/api/v2/alerts", [bad])
    check(st == 200, "POST the wrong-token alert: HTTP %d" % st)
    wait_for("Alertmanager counting the failed notification", 30,
             lambda: am_counter(am_metrics(am_port), "alertmanager_notifications_failed_total",
                                integration="webhook") > 0, interval=0.5)
    check(metrics(url).get(key4, 0) > before4, "llm-opsd answered 4xx to the wrong token")
    check("401" in open(amlog, errors="replace").read(),
          "Alertmanager's log shows the 401:\n" + tail(amlog))
    st, j, _ = request(url, "GET", "/llm-ops/v1/alerts?limit=1000", reader)
    check(not [a for a in j["data"]["alerts"] if a["alertname"] == "LlmOpsWrongToken"],
          "the wrong-token alert was not recorded")
    log("wrong token: refused with 401, Alertmanager counted %g failed notification(s)" %
        am_counter(am_metrics(am_port), "alertmanager_notifications_failed_total",
                   integration="webhook"))

    direct(url, env, token, st_dir)
    doc_example(d, cred)


def doc_example(d, cred):
    """The alertmanager.yml of doc/alerting.md is one amtool check-config accepts."""
    src = os.environ.get("LLMOPS_SOURCE_DIR") or os.path.join(HERE, "..", "..")
    with open(os.path.join(src, "doc", "alerting.md")) as f:
        blocks = re.findall(r"```yaml\n(.*?)```", f.read(), re.S)
    conf = [b for b in blocks if "receivers:" in b]
    check(len(conf) == 1, "doc/alerting.md has one alertmanager.yml block")
    path = os.path.join(d, "doc-alertmanager.yml")
    with open(path, "w") as f:
        f.write(conf[0].replace("/etc/prometheus/llm-ops-alerts.token", cred))
    amtool = os.path.join(os.path.dirname(ALERTMANAGER), "amtool")
    r = subprocess.run([amtool, "check-config", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=30)
    check(r.returncode == 0 and "SUCCESS" in r.stdout and "2 receivers" in r.stdout,
          "amtool check-config of doc/alerting.md's example: %s" % r.stdout)
    log("doc/alerting.md's alertmanager.yml passes amtool check-config")


def message(alerts, status="firing"):
    return {"version": "4", "groupKey": "{}:{alertname=\"direct\"}", "truncatedAlerts": 0,
            "status": status, "receiver": "llmops", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://am.invalid", "alerts": alerts}


def one(fp, labels, status="firing"):
    return {"status": status, "labels": labels, "annotations": {"summary": "direct " + fp},
            "startsAt": "2026-12-03T11:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "", "fingerprint": fp}


def psql(env, sql):
    r = subprocess.run(["psql", "-h", env["PGHOST"], "-p", env["PGPORT"], "-U", "postgres",
                        "-d", "llmops", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    check(r.returncode == 0, "psql: %s" % r.stdout)


def direct(url, env, token, st_dir):
    """The webhook without Alertmanager: refusals, per-alert results, roles, the database
    down (503 only when nothing could be recorded)."""
    path = "/llm-ops/v1/alerts"
    st, j, _ = request(url, "POST", path, token, dict(message([]), version="3"))
    expect(st, 400, j, "version 3")
    check(j["data"]["error"]["field"] == "version" and "'3'" in j["message"],
          "version 3 refused naming it: %s" % json.dumps(j))
    bad_msg = message([one("aa01", {"alertname": "x"}), dict(one("aa02", {}), startsAt="now")])
    st, j, _ = request(url, "POST", path, token, bad_msg)
    expect(st, 400, j, "a bad startsAt")
    check(j["data"]["error"]["field"] == "alerts[1].startsAt", "field: %s" % json.dumps(j))
    st, j, _ = request(url, "POST", path, env["LLMOPS_READER_TOKEN"], message([]))
    expect(st, 403, j, "a reader posting alerts")

    alerts = [
        one("bb01", {"alertname": "NoFallback", "llmops_env": "dev", "llmops_category": "serving"}),
        one("bb02", {"alertname": "NoEnv", "llmops_category": "experiment_tracking"}),
        one("bb03", {"alertname": "Canary", "llmops_env": "dev", "llmops_deployment": "chat"}),
        one("bb04", {"alertname": "Unrelated", "severity": "info"}),
        one("bb05", {"alertname": "BadEnv", "llmops_env": "qa",
                     "llmops_category": "experiment_tracking"}),
        one("bb06", {"alertname": "Again", "llmops_env": "dev",
                     "llmops_category": "experiment_tracking"}),
        one("bb07", {"alertname": "Gone"}, status="resolved"),
    ]
    st, j, _ = request(url, "POST", path, env["LLMOPS_OPERATOR_TOKEN"], message(alerts))
    expect(st, 200, j, "an operator posting seven alerts")
    got = {a["fingerprint"]: a for a in j["data"]["alerts"]}
    want = {"bb01": "failed", "bb02": "failed", "bb03": "failed", "bb04": "ignored",
            "bb05": "failed", "bb06": "noop", "bb07": "ignored"}
    for fp, res in want.items():
        check(got[fp]["result"] == res and got[fp]["repeat"] is False,
              "%s: %s, wanted %s" % (fp, json.dumps(got[fp]), res))
    check("no fallback" in got["bb01"]["actions"][0]["message"], json.dumps(got["bb01"]))
    check("llmops_env" in got["bb02"]["actions"][0]["message"], json.dumps(got["bb02"]))
    check(got["bb03"]["actions"][0]["action"] == "deployment_rollback" and
          "llmops_deployment" in got["bb03"]["actions"][0]["message"], json.dumps(got["bb03"]))
    check("'qa'" in got["bb05"]["actions"][0]["message"], json.dumps(got["bb05"]))
    st, j, _ = request(url, "POST", path, token, message(alerts))
    expect(st, 200, j, "the same seven again")
    check(all(a["repeat"] for a in j["data"]["alerts"]) and
          [a["result"] for a in j["data"]["alerts"]] == [want[a["fingerprint"]]
                                                          for a in j["data"]["alerts"]],
          "a repeat answers what was done: %s" % json.dumps(j["data"]["alerts"]))

    # the same new alert delivered concurrently (Alertmanagers of a cluster both sending, or
    # a retry crossing the first delivery): one delivery acts, the others see it acting
    st, j, _ = request(url, "PUT", "/llm-ops/v1/flags/stg/experiment_tracking",
                       env["LLMOPS_ADMIN_TOKEN"],
                       {"active": "tracking-pg", "fallback": "tracking-pg-b", "reason": "race"})
    expect(st, 200, j, "PUT stg's flag with a fallback")
    race = message([one("dd01", {"alertname": "Race", "llmops_env": "stg",
                                 "llmops_category": "experiment_tracking"})])
    # the first delivery's rollback takes 0.5 s (its audit row waits), so the others surely
    # come while it acts
    psql(env, "CREATE FUNCTION alerts_test_slow() RETURNS trigger LANGUAGE plpgsql AS $$"
              " BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$;"
              " CREATE TRIGGER alerts_test_slow BEFORE INSERT ON flag_audit FOR EACH ROW"
              " WHEN (NEW.actor = 'alertmanager:Race') EXECUTE FUNCTION alerts_test_slow()")
    answers = []
    barrier = threading.Barrier(RACERS)

    def racer():
        barrier.wait()
        answers.append(request(url, "POST", path, token, race))

    threads = [threading.Thread(target=racer) for _ in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    check(len(answers) == RACERS and all(a[0] == 200 for a in answers),
          "concurrent posts: %s" % [a[0] for a in answers])
    psql(env, "DROP TRIGGER alerts_test_slow ON flag_audit; DROP FUNCTION alerts_test_slow()")
    outs = [a[1]["data"]["alerts"][0] for a in answers]
    firsts = [o for o in outs if not o["repeat"]]
    check(len(firsts) == 1 and firsts[0]["result"] == "done",
          "one delivery acted: %s" % json.dumps(outs))
    check(all(o["result"] in ("done", "pending") for o in outs),
          "no delivery reports another outcome: %s" % json.dumps(outs))
    st, j, _ = request(url, "GET", path + "?fingerprint=dd01", env["LLMOPS_READER_TOKEN"])
    rec = j["data"]["alerts"]
    check(len(rec) == 1 and rec[0]["result"] == "done" and rec[0]["times_received"] == RACERS,
          "the raced alert's record: %s" % json.dumps(rec))
    st, j, _ = request(url, "GET", "/llm-ops/v1/flags/audit?env=stg&limit=100",
                       env["LLMOPS_READER_TOKEN"])
    check(len([e for e in j["data"]["entries"] if e["actor"] == "alertmanager:Race"]) == 1,
          "one flag change by the raced alert")
    log("%d concurrent deliveries of one alert: one acted, %d saw it acting" %
        (RACERS, RACERS - 1))

    # an action that fails for now (the flag audit refuses the row: a trigger stands in for a
    # database failure during the change) is an error, made again at the next repeat
    psql(env, "CREATE FUNCTION alerts_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$"
              " BEGIN RAISE EXCEPTION 'refused by the test'; END $$;"
              " CREATE TRIGGER alerts_test_refuse BEFORE INSERT ON flag_audit FOR EACH ROW"
              " WHEN (NEW.actor = 'alertmanager:Flaky') EXECUTE FUNCTION alerts_test_refuse()")
    st, j, _ = request(url, "PUT", "/llm-ops/v1/flags/prod/experiment_tracking",
                       env["LLMOPS_ADMIN_TOKEN"],
                       {"active": "tracking-pg", "fallback": "tracking-pg-b", "reason": "flaky"})
    expect(st, 200, j, "PUT prod's flag with a fallback")
    flaky = message([one("ee01", {"alertname": "Flaky", "llmops_env": "prod",
                                  "llmops_category": "experiment_tracking"})])
    st, j, _ = request(url, "POST", path, token, flaky)
    expect(st, 200, j, "the flaky alert, first delivery")
    o = j["data"]["alerts"][0]
    check(o["result"] == "error" and not o["repeat"], "first delivery: %s" % json.dumps(o))
    psql(env, "DROP TRIGGER alerts_test_refuse ON flag_audit; DROP FUNCTION alerts_test_refuse()")
    st, j, _ = request(url, "POST", path, token, flaky)
    o = j["data"]["alerts"][0]
    check(st == 200 and o["result"] == "done" and o["repeat"],
          "the repeat makes what failed: %s" % json.dumps(o))
    st, j, _ = request(url, "POST", path, token, flaky)
    o = j["data"]["alerts"][0]
    check(o["result"] == "done" and o["repeat"] and o["actions"][0]["result"] == "done",
          "and a third delivery does nothing: %s" % json.dumps(o))
    st, j, _ = request(url, "GET", "/llm-ops/v1/flags/audit?env=prod&limit=100",
                       env["LLMOPS_READER_TOKEN"])
    check(len([e for e in j["data"]["entries"] if e["actor"] == "alertmanager:Flaky"]) == 1,
          "one flag change by the flaky alert")
    m = metrics(url)
    check(m.get('llmops_alert_actions_total{action="flag_rollback",result="error"}', 0) == 1,
          "the error counted")

    # the record, last received first; a page is the head of the whole list
    rt = env["LLMOPS_READER_TOKEN"]
    st, j, _ = request(url, "GET", path + "?limit=1000", rt)
    expect(st, 200, j, "GET /alerts")
    full = j["data"]["alerts"]
    check(len(full) >= 9 and set(full[0]) == {
        "id", "fingerprint", "alertname", "status", "starts_at", "ends_at", "receiver",
        "group_key", "labels", "annotations", "generator_url", "received_by", "result",
        "actions", "times_received", "first_received_at", "last_received_at"},
        "GET /alerts members: %s" % json.dumps(full[:1]))
    check([a["last_received_at"] for a in full] ==
          sorted((a["last_received_at"] for a in full), reverse=True), "last received first")
    st, j, _ = request(url, "GET", path + "?limit=3", rt)
    check([a["id"] for a in j["data"]["alerts"]] == [a["id"] for a in full[:3]],
          "limit=3 is the head of the list")
    st, j, _ = request(url, "GET", path + "?status=dead", rt)
    check(st == 400 and j["data"]["error"]["field"] == "status", "status=dead: %d" % st)
    st, j, _ = request(url, "GET", path, token)
    expect(st, 403, j, "the alerts token reading /alerts")

    # PostgreSQL down: nothing can be recorded, so a 5xx makes Alertmanager retry
    r = subprocess.run([STACK, "pg-stop", st_dir], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    check(r.returncode == 0, "stack pg-stop: " + r.stdout[-500:])
    fresh = message([one("cc01", {"alertname": "Later", "llmops_env": "dev",
                                  "llmops_category": "experiment_tracking"})])
    st, j, _ = request(url, "POST", path, env["LLMOPS_OPERATOR_TOKEN"], fresh)
    check(st == 503 and j["data"]["error"]["code"] == "DATABASE_UNAVAILABLE",
          "POST with the database down: %d %s" % (st, json.dumps(j)))
    r = subprocess.run([STACK, "pg-start", st_dir], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=60)
    check(r.returncode == 0, "stack pg-start: " + r.stdout[-500:])
    st, j = wait_for("POST after PostgreSQL is back", 20, lambda: (lambda x: x[:2] if x[0] == 200
                     else None)(request(url, "POST", path, env["LLMOPS_OPERATOR_TOKEN"], fresh)),
                     interval=0.3)
    check(j["data"]["alerts"][0]["result"] == "noop" and not j["data"]["alerts"][0]["repeat"],
          "the retried alert is recorded once PostgreSQL is back: %s" % json.dumps(j))
    log("direct posts: refusals, seven results, repeats, 503 with the database down")


if __name__ == "__main__":
    sys.exit(main(test, 180))
