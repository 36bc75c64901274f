#!/usr/bin/env python3
"""e2e-serving: deployments end to end through lighttpd, on a real PostgreSQL, with a real
Alertmanager.

One private stack (tests/harness/stack: PostgreSQL, llm-opsd master + 2 workers, the
background process, lighttpd in front); tests/fakes/k8s_fake.py as the cluster (objects ready
after 2 polls); environment dev served by the kserve module (Serverless: exact canary
percentages), stg by the platform's own serving-k8s. dev's GPU type nvidia-t4 (capacity 8,
from etc/gpu-types.json) is asked for. Asserted, every call through lighttpd:

  A. kserve: create -> 201 progressing -> polled to ready (url, the GPU resource and node
     selector in the InferenceService) -> canary 10 % -> traffic 90/10 -> PATCH 25 % ->
     75/25 -> promote -> canary null, the new model stable at 100 %; the audit lists create,
     canary, traffic, promote in that order, each with the operator token's name as actor.
  B. kserve: create -> ready -> canary 10 % -> a real Alertmanager (prometheus-alertmanager,
     alone on a free port, storage in the test's directory) is fed a firing alert through
     POST /api/v2/alerts (llmops_env=dev, llmops_deployment=NAME) and delivers it to
     POST /llm-ops/v1/alerts through lighttpd with a bearer token -> traffic 100/0, canary
     null, one rollback in the audit that names the alert; Alertmanager repeats the
     notification (repeat_interval 3 s) at least twice more, every delivery answered 2xx,
     and there is still exactly one rollback. When the route or the alert's target is
     missing, it fails saying which piece (never passes without a rollback).
  C. serving-k8s: create -> ready (url; a Deployment and a Service in the fake) -> DELETE 204
     -> gone from the list and from the fake.

Bounded (E2E_SERVING_LIMIT, default 240 s); every process it starts is stopped at the end.
LLMOPS_BIN_DIR picks the binaries (build-asan/bin for the sanitizer run: any sanitizer report
in the stack's logs fails the test).
"""
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serving_stack as S  # noqa: E402
from serving_stack import Failed, check, log  # noqa: E402

LIMIT = int(os.environ.get("E2E_SERVING_LIMIT", "240"))
READY_S = 30  # create -> ready through the background process (the fake: 2 polls)
SUFFIX = "%x" % (os.getpid() & 0xffff)
MODEL_V1 = {"uri": "s3://models/llama-3-8b-instruct", "format": "huggingface"}
MODEL_V2 = {"uri": "s3://models/llama-3-8b-instruct-v2", "format": "huggingface"}


class Api:
    def __init__(self, env):
        self.url = env["LLMOPS_URL"]
        self.op = env["LLMOPS_OPERATOR_TOKEN"]
        self.rd = env["LLMOPS_READER_TOKEN"]
        self.admin = env["LLMOPS_ADMIN_TOKEN"]

    def call(self, method, path, body=None, token=None, want=None):
        s, j, h = S.request(self.url, method, path, token=token or self.op, body=body,
                            timeout=30)
        if 200 <= s < 300 and s != 204 and not isinstance(j, dict):
            raise Failed("%s %s: HTTP %d without a JSON envelope (Content-Length %s)"
                         % (method, path, s, h.get("Content-Length")))
        if want is not None:
            S.expect(s, want, j, "%s %s" % (method, path))
        return s, j

    def data(self, method, path, body=None, token=None, want=200):
        _, j = self.call(method, path, body, token, want)
        return (j or {}).get("data")

    def get(self, dep_id):
        return self.data("GET", "/deployments/%s" % dep_id, token=self.rd)

    def wait(self, dep_id, what, pred, seconds=READY_S):
        """Polls GET /deployments/{id} (as a client would) until pred(obj); returns obj."""
        last = [None]

        def probe():
            last[0] = self.get(dep_id)
            return last[0] if pred(last[0]) else None

        try:
            return S.wait_for("%s %s" % (dep_id, what), seconds, probe, 0.2)
        except Failed as e:
            raise Failed("%s; last answer: %s" % (e, json.dumps(last[0])[:1500]))

    def audit(self, dep_id):
        d = self.data("GET", "/deployments/%s/audit" % dep_id, token=self.rd)
        check(isinstance(d, dict) and isinstance(d.get("audit"), list),
              "GET /deployments/%s/audit: no audit list: %s" % (dep_id, d))
        return d["audit"]


def traffic(obj):
    t = obj.get("traffic") or {}
    return (t.get("stable"), t.get("canary"))


def create(api, env, name, **extra):
    body = {"name": name, "model": MODEL_V1, "runtime": "vllm", "cpu": "2", "memory": "8Gi",
            "replicas": {"min": 1, "max": 1}, "env": {"LOG_LEVEL": "info"},
            "args": ["--max-model-len", "4096"]}
    body.update(extra)
    t0 = time.monotonic()
    s, j = api.call("POST", "/deployments?env=%s" % env, body)
    S.expect(s, 201, j, "POST /deployments?env=%s (%s)" % (env, name))
    d = j["data"]
    check(re.match(r"^dep_[0-9a-f]{24}$", d.get("id") or ""), "a deployment id: %s" % d)
    check(d.get("state") == "progressing", "201 answers state progressing at once, not %r"
          % d.get("state"))
    check(d.get("name") == name and d.get("environment") == env, "name and environment: %s"
          % d)
    log("created %s %s in %s (%s): %.2f s" % (name, d["id"], env, d.get("instance"),
                                             time.monotonic() - t0))
    return d


def wait_ready(api, d):
    t0 = time.monotonic()
    r = api.wait(d["id"], "state ready",
                 lambda o: o.get("state") in ("ready", "failed"))
    check(r["state"] == "ready", "%s became %s: %s" % (d["name"], r["state"], r.get("reason")))
    check(isinstance(r.get("url"), str) and r["url"].startswith("http"),
          "a ready deployment has its url: %s" % r.get("url"))
    log("%s ready after %.2f s of polling: %s" % (d["name"], time.monotonic() - t0, r["url"]))
    return r


def canary_to(api, dep_id, pct):
    return api.wait(dep_id, "traffic %d/%d, canary ready" % (100 - pct, pct),
                    lambda o: (o.get("canary") or {}).get("state") == "ready" and
                    traffic(o) == (100 - pct, pct) and
                    (o.get("canary") or {}).get("traffic_percent") == pct)


def start_canary(api, dep_id, pct):
    s, j = api.call("POST", "/deployments/%s/canary" % dep_id,
                    {"model": MODEL_V2, "traffic_percent": pct})
    S.expect(s, 201, j, "POST /deployments/%s/canary" % dep_id)
    c = j["data"].get("canary")
    check(isinstance(c, dict) and c.get("traffic_percent") == pct and
          (c.get("model") or {}).get("uri") == MODEL_V2["uri"],
          "the canary in the answer: %s" % c)
    return canary_to(api, dep_id, pct)


def actions(audit):
    return [e.get("action") for e in audit]


def in_order(have, want):
    """Whether want is a subsequence of have."""
    it = iter(have)
    return all(any(h == w for h in it) for w in want)


def inference_service(fake, name):
    objs = fake.objects("inferenceservices")
    check(name in objs, "the fake holds no InferenceService %s (it has: %s)"
          % (name, sorted(objs)))
    return objs[name]


# ---------------------------------------------------------------------------- scenario A


def scenario_a(api, fake):
    name = "chat-a-" + SUFFIX
    d = create(api, "dev", name, gpu_type="nvidia-t4", gpu_count=1,
               replicas={"min": 1, "max": 2},
               autoscaling={"metric": "concurrency", "target": 10})
    check(d.get("instance") == "kserve-dev", "dev's flag names kserve-dev: %s" % d.get("instance"))
    gpu = d.get("gpu") or {}
    check(gpu.get("resource_name") == "nvidia.com/gpu" and
          gpu.get("node_selector") == {"nvidia.com/gpu.product": "Tesla-T4"},
          "nvidia-t4 resolved to its resource name and node selector: %s" % gpu)
    r = wait_ready(api, d)
    check(traffic(r) == (100, 0) and r.get("canary") is None,
          "ready, no canary: traffic %s, canary %s" % (traffic(r), r.get("canary")))
    # what the module asked of the cluster
    spec = inference_service(fake, name)["spec"]["predictor"]
    res = json.dumps(spec)
    check('"nvidia.com/gpu": "1"' in res or '"nvidia.com/gpu": 1' in res,
          "the InferenceService asks for one nvidia.com/gpu: %s" % res[:800])
    check("Tesla-T4" in res, "the InferenceService's node selector: %s" % res[:800])
    check(MODEL_V1["uri"] in res, "the InferenceService's storageUri: %s" % res[:800])

    lst = api.data("GET", "/deployments?env=dev", token=api.rd)
    check(any(x.get("id") == d["id"] for x in lst.get("deployments", [])),
          "the list of dev holds %s" % d["id"])

    # canary 10 %
    c = start_canary(api, d["id"], 10)
    log("canary at 10 %%: traffic %s" % (traffic(c),))
    spec = inference_service(fake, name)["spec"]["predictor"]
    check(spec.get("canaryTrafficPercent") == 10 and MODEL_V2["uri"] in json.dumps(spec),
          "the InferenceService: canaryTrafficPercent 10 and the new model: %s"
          % json.dumps(spec)[:800])
    check(c.get("model", {}).get("uri") == MODEL_V1["uri"],
          "the stable model is still the old one: %s" % c.get("model"))
    # PATCH 25 %
    s, j = api.call("PATCH", "/deployments/%s/canary" % d["id"], {"traffic_percent": 25})
    S.expect(s, 200, j, "PATCH /deployments/%s/canary" % d["id"])
    c = canary_to(api, d["id"], 25)
    log("canary at 25 %%: traffic %s" % (traffic(c),))
    check(inference_service(fake, name)["spec"]["predictor"].get("canaryTrafficPercent") == 25,
          "the InferenceService's canaryTrafficPercent is 25")
    # promote
    s, j = api.call("POST", "/deployments/%s/promote" % d["id"])
    S.expect(s, 200, j, "POST /deployments/%s/promote" % d["id"])
    p = api.wait(d["id"], "promoted: canary null, traffic 100/0, the new model",
                 lambda o: o.get("canary") is None and traffic(o) == (100, 0) and
                 (o.get("model") or {}).get("uri") == MODEL_V2["uri"] and
                 o.get("state") == "ready")
    log("promoted: model %s, traffic %s" % (p["model"]["uri"], traffic(p)))
    pct = inference_service(fake, name)["spec"]["predictor"].get("canaryTrafficPercent", 100)
    check(pct == 100, "after promote the InferenceService sends 100 %% to the new model, not %r"
          % pct)

    audit = api.audit(d["id"])
    acts = actions(audit)
    log("audit of %s: %s" % (name, acts))
    check(in_order(acts, ["create", "canary", "traffic", "promote"]),
          "the audit lists create, canary, traffic, promote in order: %s" % acts)
    for e in audit:
        check(e.get("at") and e.get("actor"), "every audit entry has at and actor: %s" % e)
        if e.get("action") in ("create", "canary", "traffic", "promote"):
            check(e["actor"] == "stack-operator",
                  "%s was made with the operator token (stack-operator), the audit says %r"
                  % (e["action"], e["actor"]))
    tr = [e for e in audit if e.get("action") == "traffic"]
    check(json.dumps(tr[-1].get("after")).find("25") >= 0,
          "the traffic entry's after holds the 25 %%: %s" % tr[-1])
    return d["id"]


# ---------------------------------------------------------------------------- scenario B


def alerts_route(api):
    """None when POST /alerts is routed; otherwise what is missing."""
    s, j = api.call("POST", "/alerts", {"version": "4", "status": "firing", "alerts": [],
                                        "groupLabels": {}, "commonLabels": {},
                                        "commonAnnotations": {}, "externalURL": "",
                                        "receiver": "e2e", "groupKey": "{}:{}",
                                        "truncatedAlerts": 0})
    msg = (j or {}).get("message", "")
    if s == 404 and "no route" in msg:
        return ("POST /llm-ops/v1/alerts is not routed (%s): the alerts branch (Alertmanager "
                "webhook) is not in this build" % msg)
    return None


def alert_token(env):
    """The token Alertmanager sends: one of the alerts role (it may only post alerts), else
    (a build without that role) the operator's."""
    conf = env["LLMOPS_CONFIG"]
    for role in ("alerts",):
        r = subprocess.run([os.path.join(S.BIN, "llm-opsctl"), "--config", conf, "token",
                            "create", "--name", "e2e-alertmanager", "--role", role],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=30)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip().splitlines()[-1], "e2e-alertmanager (role %s)" % role
    return env["LLMOPS_OPERATOR_TOKEN"], "stack-operator"


def alert_record(api, alertname):
    """The newest record of GET /alerts for that alert name (None when there is none)."""
    s, j = api.call("GET", "/alerts?status=firing", token=api.rd)
    if s != 200:
        return None
    recs = [a for a in (j.get("data") or {}).get("alerts") or []
            if a.get("alertname") == alertname]
    return recs[0] if recs else None


def alert_actions_metric(api):
    """llmops_alert_actions_total{action="deployment_rollback",...} by result."""
    m = S.metrics(api.url)
    out = {}
    for k, v in m.items():
        if k.startswith("llmops_alert_actions_total{") and 'action="deployment_rollback"' in k:
            r = re.search(r'result="([a-z]+)"', k)
            out[r.group(1) if r else "?"] = out.get(r.group(1) if r else "?", 0) + v
    return out


def rollbacks(audit):
    return [e for e in audit if e.get("action") == "rollback"]


def scenario_b(api, env, d_dir, fake):
    name = "chat-b-" + SUFFIX
    d = create(api, "dev", name, gpu_type="nvidia-t4", gpu_count=1)
    wait_ready(api, d)
    c = start_canary(api, d["id"], 10)
    log("%s canary at 10 %%: traffic %s" % (name, traffic(c)))
    missing = alerts_route(api)
    check(missing is None, missing)

    token, who = alert_token(env)
    am = S.Alertmanager(d_dir, api.url + "/alerts", token)
    log("Alertmanager %s, delivering to %s/alerts as %s" % (am.url, api.url, who))
    alertname = "LlmOpsCanaryErrorRate"
    t0 = time.monotonic()
    am.fire({"alertname": alertname, "severity": "critical", "llmops_env": "dev",
             "llmops_deployment": name})

    def rolled_back():
        o = api.get(d["id"])
        return o if o.get("canary") is None and traffic(o) == (100, 0) else None

    end = time.monotonic() + 30
    o = rec = None
    while time.monotonic() < end:
        o = rolled_back()
        if o:
            break
        rec = alert_record(api, alertname)
        if rec and rec.get("result") == "failed":
            break  # llm-opsd refused it for good: it will not act on a repeat either
        time.sleep(0.25)
    sent, failed = am.webhook_counts()
    if not o:
        last = api.get(d["id"])
        errs = [ln for ln in S.tail(am.log, 200).splitlines() if "Notify for alerts failed" in ln]
        if sent == 0 and failed == 0:
            raise Failed("Alertmanager sent no notification in 30 s (log: %s)" % S.tail(am.log))
        if failed > 0 and failed >= sent:
            raise Failed("every delivery to llm-opsd failed (%d of %d); Alertmanager's last "
                         "error: %s" % (failed, sent, errs[-1] if errs else "?"))
        rec = alert_record(api, alertname)
        acts = [(a.get("action"), a.get("result"), a.get("message"))
                for a in (rec or {}).get("actions") or []]
        if rec and not any(a == "deployment_rollback" and r in ("done", "noop")
                           for a, r, _ in acts):
            missing = any("llmops_deployment" in (m or "") for _, _, m in acts) or \
                not any(a == "deployment_rollback" for a, _, _ in acts)
            raise Failed("Alertmanager delivered %d notifications to POST /llm-ops/v1/alerts "
                         "(%d failed) and llm-opsd recorded the alert as %r, actions %s%s; "
                         "the canary of %s is still there (traffic %s)"
                         % (sent, failed, rec.get("result"), acts,
                            ": the alert target for llmops_deployment is not registered (the "
                            "lead wires serving_rollback_by_name into the alerts' target "
                            "table)" if missing else "", name, traffic(last)))
        raise Failed("Alertmanager delivered %d notifications (%d failed) but the canary of %s "
                     "was not rolled back within 30 s (traffic %s, canary %s); the alert's "
                     "record: %s" % (sent, failed, name, traffic(last),
                                     json.dumps(last.get("canary"))[:300],
                                     json.dumps(rec)[:800]))
    took = time.monotonic() - t0
    log("rolled back %.2f s after the alert was fed (Alertmanager: %d sent, %d failed)"
        % (took, sent, failed))
    check(failed == 0, "Alertmanager saw %d failed deliveries before the rollback" % failed)
    # The row gives up its canary when a rollback claims it, before the tool is asked; the
    # audit row is written once the tool has rolled back (kserve: two patches), so the
    # cluster is read only after it.
    S.wait_for("the rollback's audit row", 30, lambda: rollbacks(api.audit(d["id"])), 0.1)
    o = api.wait(d["id"], "ready again on the stable model after the rollback",
                 lambda x: x.get("state") in ("ready", "failed") and x.get("canary") is None)
    check(o.get("state") == "ready" and (o.get("model") or {}).get("uri") == MODEL_V1["uri"] and
          traffic(o) == (100, 0),
          "after the rollback the stable model serves: %s %s %s" % (o.get("state"),
                                                                   o.get("model"), traffic(o)))
    spec = inference_service(fake, name)["spec"]["predictor"]
    check(spec.get("canaryTrafficPercent", 100) == 100 and MODEL_V1["uri"] in json.dumps(spec) and
          MODEL_V2["uri"] not in json.dumps(spec),
          "after the rollback the InferenceService holds the stable model alone: %s"
          % json.dumps(spec)[:800])
    # Alertmanager repeats itself: two more notifications (repeat_interval 3 s), all 2xx
    base = sent
    S.wait_for("Alertmanager repeats the notification twice", 20,
               lambda: am.webhook_counts()[0] >= base + 2, 0.25)
    sent, failed = am.webhook_counts()
    check(failed == 0, "a repeated notification was refused (%d of %d failed): %s"
          % (failed, sent, [ln for ln in S.tail(am.log, 100).splitlines()
                            if "failed" in ln][-1:]))
    audit = api.audit(d["id"])
    rb = rollbacks(audit)
    log("after %d notifications: audit %s" % (sent, actions(audit)))
    check(len(rb) == 1, "exactly one rollback after %d notifications, the audit has %d: %s"
          % (sent, len(rb), rb))
    check(rb[0].get("actor") == "alertmanager:" + alertname,
          "the rollback's actor is the alert (alertmanager:%s): %s" % (alertname, rb[0]))
    check(alertname in (rb[0].get("reason") or ""),
          "the rollback's reason names the alert: %s" % rb[0])
    rec = alert_record(api, alertname)
    check(rec and rec.get("result") == "done" and
          [a.get("action") for a in rec.get("actions") or []] == ["deployment_rollback"],
          "the alert's record (GET /alerts): done, one deployment_rollback: %s" % rec)
    check(rec.get("times_received", 0) >= 3 and rec.get("received_by") == "e2e-alertmanager",
          "llm-opsd received the alert at least 3 times, from the alerts token: %s" % rec)
    counted = alert_actions_metric(api)
    check(counted.get("done") == 1,
          "llmops_alert_actions_total{action=\"deployment_rollback\",result=\"done\"} is 1: %s"
          % counted)
    key = 'llmops_canary_transitions_total{environment="dev",action="rollback",trigger="alert"}'
    m = S.metrics(api.url)
    check(m.get(key) == 1, "%s is 1 after %d notifications: %s"
          % (key, sent, {k: v for k, v in m.items() if "canary_transitions" in k}))
    o = api.get(d["id"])
    check(o.get("canary") is None and traffic(o) == (100, 0),
          "still rolled back after the repeats: %s %s" % (traffic(o), o.get("canary")))
    # idempotent: a rollback by hand now has nothing to roll back
    s, j = api.call("POST", "/deployments/%s/rollback" % d["id"], {"reason": "e2e: again"})
    S.expect(s, 409, j, "POST /deployments/%s/rollback without a canary" % d["id"])
    return d["id"], sent


# ---------------------------------------------------------------------------- scenario C


def scenario_c(api, fake):
    name = "chat-c-" + SUFFIX
    d = create(api, "stg", name)
    check(d.get("instance") == "sk-stg", "stg's flag names sk-stg: %s" % d.get("instance"))
    wait_ready(api, d)
    deps, svcs = fake.objects("deployments"), fake.objects("services")
    check(any(n.startswith(name) for n in deps), "serving-k8s made a Deployment for %s: %s"
          % (name, sorted(deps)))
    check(any(n.startswith(name) for n in svcs), "serving-k8s made a Service for %s: %s"
          % (name, sorted(svcs)))
    s, j = api.call("DELETE", "/deployments/%s" % d["id"])
    S.expect(s, 204, j, "DELETE /deployments/%s" % d["id"])
    S.wait_for("the fake no longer holds %s's Deployment" % name, 15,
               lambda: not any(n.startswith(name) for n in fake.objects("deployments")), 0.2)
    lst = api.data("GET", "/deployments?env=stg", token=api.rd)
    check(not any(x.get("id") == d["id"] for x in lst.get("deployments", [])),
          "a deleted deployment is gone from the list")
    s, j = api.call("GET", "/deployments/%s" % d["id"], token=api.rd)
    check(s == 404 or (s == 200 and j["data"].get("state") in ("deleting", "deleted")),
          "GET of a deleted deployment: HTTP %d %s" % (s, json.dumps(j)[:300]))
    aud = actions(api.audit(d["id"]))
    check(in_order(aud, ["create", "delete"]), "the audit lists create, delete: %s" % aud)
    log("serving-k8s: %s created, ready, deleted (audit %s)" % (name, aud))


NOCRD = "kserve-nocrd"
NOCRD_WHY = "serving.kserve.io/v1beta1 is not installed in the cluster"


def scenario_d(api, env):
    """A kserve instance on a cluster without KServe's CRD (the fake serving only Argo's):
    the admin reads why in GET /integrations and in llm-opsctl doctor, in the same words."""
    s, j = api.call("GET", "/integrations", token=api.rd)
    check(s == 200, "GET /integrations: HTTP %d %s" % (s, j))
    items = j["data"] if isinstance(j["data"], list) else j["data"].get("integrations", [])
    mine = [i for i in items if i.get("name") == NOCRD]
    check(len(mine) == 1, "GET /integrations lists %s once: %s" % (NOCRD, json.dumps(items)[:800]))
    text = json.dumps(mine[0])
    check(NOCRD_WHY in text, "GET /integrations says why %s is not running: %s" % (NOCRD, text))
    r = subprocess.run([os.path.join(S.BIN, "llm-opsctl"), "--config", env["LLMOPS_CONFIG"],
                        "doctor"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=60)
    check(r.returncode != 0, "llm-opsctl doctor exits non-zero with %s down:\n%s" % (NOCRD,
                                                                                    r.stdout))
    line = [x for x in r.stdout.splitlines() if NOCRD in x]
    check(line and any(NOCRD_WHY in x for x in r.stdout.splitlines()),
          "llm-opsctl doctor names %s and why:\n%s" % (NOCRD, r.stdout))


def sanitizer_reports(d):
    """Sanitizer reports in the stack's logs (the ASan+UBSan run)."""
    out = []
    for root, _, files in os.walk(d):
        for f in files:
            if f.endswith(".log"):
                text = S.tail(os.path.join(root, f), 100000)
                if re.search(r"ERROR: [A-Za-z]+Sanitizer|runtime error:", text):
                    out.append(os.path.join(root, f))
    return out


def test():
    d = S.make_dir("llmops-e2es.")
    fake = S.K8sFake(d, polls=2)
    log("Kubernetes fake at %s" % fake.url)
    # a second cluster that has Argo's CRD but not KServe's (scenario D)
    nocrd_dir = os.path.join(d, "nocrd")
    os.makedirs(nocrd_dir)
    bare = S.K8sFake(nocrd_dir, extra=["--crd", os.path.join(S.crd_dir(),
                                                            "argoproj.io_workflows.minimal.yaml")])
    dropin = S.serving_dropin(d, fake)
    with open(dropin, "a") as f:
        f.write('\n[plugin "%s"]\nmodule = kserve\nurl = %s\ntoken_file = %s\nnamespace = %s\n'
                'timeout_ms = 5000\nretries = 0\n' % (NOCRD, bare.url, bare.token_file,
                                                       S.NAMESPACE))
    env = S.stack_start(os.path.join(d, "st"), "--drop-in", dropin, "--workers", "2")
    api = Api(env)
    s, j = api.call("GET", "/deployments?env=dev", token=api.rd)
    check(s != 404 or "no route" not in json.dumps(j),
          "GET /llm-ops/v1/deployments is not routed: the deploy branch (deployments API) is "
          "not in this build")
    results = {}
    scenarios = [("A", "kserve create, canary 10/25 %, promote", lambda: scenario_a(api, fake)),
                 ("C", "serving-k8s create, ready, delete", lambda: scenario_c(api, fake)),
                 ("B", "canary rolled back by an Alertmanager alert",
                  lambda: scenario_b(api, env, d, fake)),
                 ("D", "a missing CRD named in /integrations and doctor",
                  lambda: scenario_d(api, env))]
    for key, what, fn in scenarios:
        # each scenario on its own deployments: one failing does not hide the others
        t0 = time.monotonic()
        try:
            fn()
            results[key] = "passed (%.1f s)" % (time.monotonic() - t0)
        except Failed as e:
            results[key] = "FAILED: %s" % e
        except Exception as e:  # a bug of the test or an answer of an unexpected shape
            import traceback
            traceback.print_exc()
            results[key] = "FAILED: %s: %s" % (type(e).__name__, e)
        log("scenario %s (%s): %s" % (key, what, results[key]))
    # stopped first, so what the sanitizers report at exit (LeakSanitizer) is in the logs too
    subprocess.run([S.STACK, "stop", os.path.join(d, "st")], stdout=subprocess.DEVNULL,
                   stderr=subprocess.STDOUT, timeout=120)
    bad = sanitizer_reports(d)
    for f in bad:
        log("sanitizer report in %s:\n%s" % (f, S.tail(f, 40)))
    failed = [k for k, v in results.items() if not v.startswith("passed")]
    if failed:
        for f in ("llm-opsd.log", "jobs.log"):
            p = os.path.join(d, "st", f)
            if os.path.exists(p):
                log("== %s (last lines)\n%s" % (p, S.tail(p, 25)))
    summary = "; ".join("%s %s" % (k, results[k]) for k, _, _ in scenarios)
    check(not bad, "sanitizer reports in %s" % bad)
    check(not failed, "scenario(s) %s failed: %s" % (" ".join(failed), summary))
    log("all scenarios passed: %s" % summary)

if __name__ == "__main__":
    sys.exit(S.main(test, LIMIT))
