"""The pieces of the serving end-to-end test and benchmark: the Kubernetes fake, a real
Alertmanager, and a stack whose environments are served by the kserve and serving-k8s modules.

Python standard library only; loopback only; every process started here is registered with
scaleout_common's cleanups and stopped at the end (on failure, on SIGTERM, at the time limit).
"""

import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "scaleout"))
from scaleout_common import (  # noqa: E402,F401 (re-exported for the test)
    BIN, SRC, STACK, Failed, check, expect, free_port, log, main, make_dir, metrics, request, spawn,
    stack_start, tail, wait_for)

FAKES = os.path.join(SRC, "tests", "fakes")
ALERTMANAGER = os.environ.get("LLMOPS_ALERTMANAGER", "/usr/bin/prometheus-alertmanager")
NAMESPACE = "llm"


def _ready_port(path):
    try:
        with open(path) as f:
            return int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return 0


class K8sFake:
    """tests/fakes/k8s_fake.py on a free port, plain http, with a bearer token."""

    def __init__(self, d, polls=2, max_seconds=600, extra=()):
        self.dir = d
        self.token = "e2e-k8s-token-%d" % os.getpid()
        self.token_file = os.path.join(d, "k8s.token")
        with open(self.token_file, "w") as f:
            f.write(self.token + "\n")
        ready = os.path.join(d, "k8s.port")
        self.log = os.path.join(d, "k8s-fake.log")
        self.proc = spawn([sys.executable, os.path.join(FAKES, "k8s_fake.py"), "--port", "0",
                           "--ready-file", ready, "--token", self.token, "--any-namespace",
                           "--polls", str(polls), "--max-seconds", str(max_seconds),
                           "--exit-with-parent"] + list(extra), self.log)
        port = wait_for("the Kubernetes fake starts", 20, lambda: _ready_port(ready), 0.05)
        self.url = "http://127.0.0.1:%d" % port

    def call(self, method, path, body=None):
        s, j, _ = request(self.url, method, path, token=self.token, body=body)
        return s, j

    def state(self):
        s, j = self.call("GET", "/_state")
        check(s == 200, "the Kubernetes fake's /_state: HTTP %d" % s)
        return j

    def objects(self, what):
        """The stored objects of `what` ("serving.kserve.io/inferenceservices",
        "apps/deployments", "core/services"...) in our namespace, by name."""
        out = {}
        st = self.state()
        for key, objs in st.items():
            if key == what or key.endswith("/" + what) or key.split("/")[-1] == what:
                for nsname, o in objs.items():
                    ns, _, name = nsname.partition("/")
                    if ns == NAMESPACE:
                        out[name] = o
        return out


class Alertmanager:
    """A real Alertmanager (Debian's prometheus-alertmanager), alone (no cluster), on a free
    127.0.0.1 port, its storage in the test's directory, delivering every alert to one
    webhook with a bearer token, quickly and repeatedly (group_wait 1 s, group_interval 2 s,
    repeat_interval 3 s)."""

    def __init__(self, d, webhook_url, token):
        if not os.access(ALERTMANAGER, os.X_OK):
            raise Failed("%s is missing: apt-get install prometheus-alertmanager "
                         "(scripts/install-deps)" % ALERTMANAGER)
        self.dir = os.path.join(d, "alertmanager")
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        conf = os.path.join(self.dir, "alertmanager.yml")
        with open(conf, "w") as f:
            f.write("""# Written by tests/e2e-serving: every alert to llm-ops, repeated quickly.
route:
  receiver: llm-ops
  group_by: [alertname, llmops_env, llmops_deployment]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 3s
receivers:
  - name: llm-ops
    webhook_configs:
      - url: %s
        send_resolved: false
        max_alerts: 0
        http_config:
          authorization:
            type: Bearer
            credentials: %s
""" % (json.dumps(webhook_url), json.dumps(token)))
        amtool = os.path.join(os.path.dirname(ALERTMANAGER), "amtool")
        if os.access(amtool, os.X_OK):  # the same package ships it
            r = subprocess.run([amtool, "check-config", conf], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=30)
            check(r.returncode == 0, "amtool check-config %s: %s" % (conf, r.stdout))
        self.log = os.path.join(self.dir, "alertmanager.log")
        for _ in range(3):  # a free port can be taken between the choice and the bind
            self.port = free_port()
            self.url = "http://127.0.0.1:%d" % self.port
            self.proc = spawn([ALERTMANAGER, "--config.file=" + conf,
                               "--storage.path=" + os.path.join(self.dir, "data"),
                               "--web.listen-address=127.0.0.1:%d" % self.port,
                               "--cluster.listen-address=", "--log.level=debug"], self.log)
            end = time.monotonic() + 20
            while time.monotonic() < end and self.proc.poll() is None:
                if request(self.url, "GET", "/-/ready")[0] == 200:
                    return
                time.sleep(0.1)
            if self.proc.poll() is None:
                break
        raise Failed("Alertmanager did not become ready on %s:\n%s" % (self.url,
                                                                        tail(self.log)))

    def fire(self, labels, minutes=10):
        now = time.time()
        alert = {"labels": labels,
                 "annotations": {"summary": "e2e-serving: the canary misbehaves"},
                 "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 1)),
                 "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + minutes * 60)),
                 "generatorURL": "http://127.0.0.1/e2e-serving"}
        s, j, _ = request(self.url, "POST", "/api/v2/alerts", body=[alert])
        check(s == 200, "Alertmanager POST /api/v2/alerts: HTTP %d %s" % (s, j))

    def metrics(self):
        """Its /metrics, the series we look at: {name{labels}: value}."""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
        finally:
            c.close()
        out = {}
        for line in text.splitlines():
            if line.startswith("alertmanager_notification"):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    def webhook_counts(self):
        """(notifications sent to the webhook, failed ones) so far."""
        m = self.metrics()
        sent = sum(v for k, v in m.items()
                   if k.startswith("alertmanager_notifications_total") and
                   'integration="webhook"' in k)
        failed = sum(v for k, v in m.items()
                     if k.startswith("alertmanager_notifications_failed_total") and
                     'integration="webhook"' in k)
        return int(sent), int(failed)


def crd_dir():
    """Where the fake reads its CRDs by default, found as k8s_fake.py finds them:
    $LLMOPS_CRD_DIR, else ../shared/contracts/crds next to the repository, else
    /work/shared/contracts/crds."""
    d = os.environ.get("LLMOPS_CRD_DIR")
    if not d:
        d = os.path.join(os.path.dirname(SRC), "shared", "contracts", "crds")
        if not os.path.isdir(d):
            d = "/work/shared/contracts/crds"
    return d


def serving_dropin(d, fake, kserve_env="dev", k8s_env="stg"):
    """A conf.d drop-in: kserve (Serverless) serves kserve_env, serving-k8s serves k8s_env,
    both on the fake."""
    path = os.path.join(d, "30-serving.conf")
    common = ("url = %s\ntoken_file = %s\nnamespace = %s\ntimeout_ms = 5000\nretries = 2\n"
              % (fake.url, fake.token_file, NAMESPACE))
    with open(path, "w") as f:
        f.write('[plugin "kserve-%s"]\nmodule = kserve\n%sdeployment_mode = Serverless\n\n'
                % (kserve_env, common))
        f.write('[plugin "sk-%s"]\nmodule = serving-k8s\n%simage = ghcr.io/example/'
                'model-server:1\nruntime = vllm\nport = 8080\n\n' % (k8s_env, common))
        f.write('[flags "%s"]\nserving = kserve-%s\n\n' % (kserve_env, kserve_env))
        f.write('[flags "%s"]\nserving = sk-%s\n' % (k8s_env, k8s_env))
    return path
