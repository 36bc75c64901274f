"""harness.py — starts tests/fakes/k8s_fake.py (or rayserve_fake.py) for a test: a private
temporary directory, a self-signed certificate for 127.0.0.1 (client-go sends a bearer token
only over TLS), the fake on a free loopback port, and a kubeconfig file pointing at it.
Everything is stopped and removed when the `with` block ends (and the fake exits by itself
with its parent, or after --max-seconds, if the test is killed)."""

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FAKES = os.path.join(REPO, "tests", "fakes")
TOKEN = "k8s-fake-test-token"


def _wait_file(path, proc, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        if proc.poll() is not None:
            raise RuntimeError("the fake exited with %s before listening" % proc.returncode)
        time.sleep(0.05)
    raise RuntimeError("the fake did not listen within %s s" % seconds)


class Fake:
    def __init__(self, script="k8s_fake.py", tls=True, token=TOKEN, args=(), max_seconds=240):
        self.script, self.tls, self.token = script, tls, token
        self.args, self.max_seconds = list(args), max_seconds
        self.dir = None
        self.proc = None
        self.log = None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="k8s-fake.")
        cmd = [sys.executable, os.path.join(FAKES, self.script), "--port", "0",
               "--ready-file", os.path.join(self.dir, "port"), "--exit-with-parent",
               "--max-seconds", str(self.max_seconds)]
        if self.script == "k8s_fake.py" and self.token:
            cmd += ["--token", self.token]
        if self.tls:
            self.cert = os.path.join(self.dir, "cert.pem")
            key = os.path.join(self.dir, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", key, "-out", self.cert, "-days", "2", "-subj",
                            "/CN=k8s-fake", "-addext",
                            "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cmd += ["--tls-cert", self.cert, "--tls-key", key]
        self.log = open(os.path.join(self.dir, "fake.log"), "w")
        self.proc = subprocess.Popen(cmd + self.args, stdout=subprocess.DEVNULL, stderr=self.log)
        try:
            self.port = _wait_file(os.path.join(self.dir, "port"), self.proc, 30)
        except Exception:
            self.__exit__(None, None, None)
            raise
        scheme = "https" if self.tls else "http"
        self.url = "%s://127.0.0.1:%d" % (scheme, self.port)
        self.control_url = self.url
        if self.tls:
            self.kubeconfig = os.path.join(self.dir, "kubeconfig")
            with open(self.cert, "rb") as f:
                ca = base64.b64encode(f.read()).decode()
            with open(self.kubeconfig, "w") as f:
                f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n"
                        "    server: %s\n    certificate-authority-data: %s\n"
                        "contexts:\n- name: fake\n  context:\n    cluster: fake\n"
                        "    user: tester\n    namespace: default\ncurrent-context: fake\n"
                        "preferences: {}\nusers:\n- name: tester\n  user:\n    token: %s\n"
                        % (self.url, ca, self.token))
        return self

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
            if exc and exc[0] is not None:
                with open(self.log.name) as f:
                    sys.stderr.write(f.read()[-4000:])
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def request(self, method, path, body=None, headers=None, token=True):
        """(status, headers, body bytes) of one request to the fake."""
        import ssl
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.cert)
        data = None
        hs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hs.setdefault("Content-Type", "application/json")
        if token and self.token:
            hs.setdefault("Authorization", "Bearer " + self.token)
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hs)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, method, path, body=None, headers=None, token=True):
        status, hs, data = self.request(method, path, body, headers, token)
        return status, hs, (json.loads(data) if data else None)
