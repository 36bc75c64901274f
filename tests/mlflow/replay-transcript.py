#!/usr/bin/env python3
"""replay-transcript.py TRANSCRIPT FAKE — replays a recorded MLflow REST transcript against
tests/fakes/mlflow_fake.py and checks that the fake answers every request the way the real
server did: HTTP status, content type, and the JSON body member by member (the same members in
the same order, the same values) or the same text.

What may differ, because it cannot be the same in a fresh store: run ids (learned from the
fake's answers and substituted into later requests), creation and update times, the names the
server invents for unnamed runs, and the timestamps inside RESOURCE_ALREADY_EXISTS messages.
Requests for what the fake does not serve (the model registry) are skipped and counted.
Exits 0 when every replayed request matched."""

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP_PATHS = ("registered-models", "model-versions")
VOLATILE = {"creation_time", "last_update_time"}
INVENTED_NAME = re.compile(r"^[a-z]+-[a-z]+-\d+$")


def blocks(text):
    """Yields (title, method, url, headers, data, status, ctype, body) per recorded request."""
    title = ""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("### "):
            title = line[4:]
            i += 1
            continue
        if not line.startswith("$ curl "):
            i += 1
            continue
        try:
            argv = shlex.split(line[2:])
        except ValueError:
            argv = []
        j = i + 1
        m = re.match(r"--> HTTP (\d+) content-type=(.*)$", lines[j]) if j < len(lines) else None
        if not m:  # a block recorded in another layout (body first): not replayable
            i += 1
            continue
        body = []
        j += 1
        while j < len(lines) and not lines[j].startswith(("$ ", "### ", "# end")):
            body.append(lines[j])
            j += 1
        i = j
        method, headers, data, url = "GET", {}, None, None
        k = 1
        while k < len(argv):
            a = argv[k]
            if a == "-X":
                method = argv[k + 1]
                k += 2
            elif a == "-H":
                name, _, value = argv[k + 1].partition(":")
                headers[name.strip()] = value.strip()
                k += 2
            elif a == "--data-raw":
                data = argv[k + 1]
                k += 2
            elif a == "-m":
                k += 2
            elif a.startswith("-"):
                k += 1
            else:
                url = a
                k += 1
        yield title, method, url, headers, data, int(m.group(1)), m.group(2), "\n".join(body)


class Replay:
    def __init__(self, port):
        self.port = port
        self.ids = {}  # transcript run id -> the fake's
        self.problems = []
        self.invented = set()  # run names the real server invented

    def subst(self, s):
        for a, b in self.ids.items():
            s = s.replace(a, b)
        return s

    def learn(self, expected, actual):
        """Maps the transcript's run ids onto the fake's, from answers of the same shape."""
        if isinstance(expected, dict) and isinstance(actual, dict):
            for k, v in expected.items():
                if k in ("run_id", "run_uuid") and isinstance(v, str) and isinstance(
                        actual.get(k), str):
                    self.ids.setdefault(v, actual[k])
                if k == "run_name" and isinstance(v, str) and INVENTED_NAME.match(v) and \
                        isinstance(actual.get(k), str) and actual[k] != v:
                    self.invented.add(v)
                    self.ids.setdefault(v, actual[k])
                self.learn(v, actual.get(k))
        elif isinstance(expected, list) and isinstance(actual, list):
            for a, b in zip(expected, actual):
                self.learn(a, b)

    def compare(self, where, expected, actual):
        if isinstance(expected, dict):
            if not isinstance(actual, dict):
                return self.fail(where, "an object", actual)
            if list(expected) != list(actual):
                return self.fail(where, "members %s" % list(expected), list(actual))
            for k in expected:
                self.compare("%s.%s" % (where, k), expected[k], actual[k])
        elif isinstance(expected, list):
            if not isinstance(actual, list) or len(actual) != len(expected):
                return self.fail(where, "a list of %d" % len(expected), actual)
            for n, (a, b) in enumerate(zip(expected, actual)):
                self.compare("%s[%d]" % (where, n), a, b)
        elif where.split(".")[-1] in VOLATILE:
            if type(expected) is not type(actual):
                self.fail(where, type(expected).__name__, actual)
        elif isinstance(expected, str):
            e = self.subst(expected)
            if where.endswith(".message") and "RESOURCE_ALREADY_EXISTS" in self.code:
                e = re.sub(r"\d{13}", "T", e)
                actual = re.sub(r"\d{13}", "T", actual) if isinstance(actual, str) else actual
            if e != actual:
                self.fail(where, repr(e), actual)
        elif type(expected) is not type(actual) or expected != actual:
            self.fail(where, repr(expected), actual)

    def fail(self, where, expected, actual):
        self.problems.append("%s: %s: expected %s, got %r" % (self.title, where, expected,
                                                              actual))

    def run(self, transcript):
        replayed = skipped = 0
        for title, method, url, headers, data, status, ctype, body in blocks(transcript):
            if not url or any(p in url for p in SKIP_PATHS):
                skipped += 1
                continue
            self.title = title
            path = self.subst(re.sub(r"^https?://[^/]+", "", url))
            req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path),
                                         method=method,
                                         data=self.subst(data).encode() if data else None)
            for k, v in headers.items():
                if v:
                    req.add_header(k, v)
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    got_status, got_ctype, got = r.status, r.headers.get("Content-Type"), r.read()
            except urllib.error.HTTPError as e:
                got_status, got_ctype, got = e.code, e.headers.get("Content-Type"), e.read()
            replayed += 1
            got = got.decode()
            if got_status != status:
                self.fail("status", status, got_status)
            if got_ctype != ctype:
                self.fail("content-type", ctype, got_ctype)
            if ctype.startswith("application/json"):
                try:
                    expected, actual = json.loads(body), json.loads(got)
                except ValueError as e:
                    self.fail("body", "JSON (%s)" % e, got)
                    continue
                self.code = body
                self.learn(expected, actual)
                self.compare("body", expected, actual)
            elif body.strip() != got.strip():
                self.fail("body", repr(body.strip()), got.strip())
        return replayed, skipped


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: replay-transcript.py TRANSCRIPT FAKE\n")
        return 2
    transcript = open(sys.argv[1]).read()
    with tempfile.TemporaryDirectory() as d:
        ready = os.path.join(d, "port")
        fake = subprocess.Popen([sys.executable, sys.argv[2], "--port", "0", "--ready-file",
                                 ready, "--max-seconds", "60", "--version", "2.14.3",
                                 "--descending-run-ids"],
                                stdout=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if os.path.exists(ready):
                    break
                time.sleep(0.05)
            port = int(open(ready).read())
            rp = Replay(port)
            replayed, skipped = rp.run(transcript)
        finally:
            fake.terminate()
            fake.wait()
    for p in rp.problems:
        print("MISMATCH " + p)
    print("replay-transcript: %d requests replayed, %d skipped, %d mismatches"
          % (replayed, skipped, len(rp.problems)))
    return 0 if replayed > 50 and not rp.problems else 1


if __name__ == "__main__":
    sys.exit(main())
