#!/usr/bin/env python3
"""faultserver.py — a small HTTP/1.1 server that misbehaves on request, for client tests.

Run:   faultserver.py [PORT] [--idle-timeout S] [--tls-cert PEM --tls-key PEM] [--bind ADDR]
                      [--verbose]
       PORT 0 (the default) picks a free port; the chosen one is printed as "PORT <n>".
       --bind listens on ADDR instead of 127.0.0.1 (127.0.0.2 is another host on loopback:
       redirect tests use it).
       The server exits by itself after S seconds without a request (default 120).

Control routes (never counted, never faulted):
  POST /_faults  {"path": "/x", "responses": [FAULT, ...]}  queue answers for /x (in order;
                 once the queue is empty /x gets the default answer again)
  POST /_reset   forget queued faults, counts and headers
  GET  /_stats   {"connections": N, "counts": {path: n}, "headers": {path: {name: value}},
                  "methods": {path: method}, "queued": {path: n}}

Sink (counted, headers recorded, never faulted):
  ANY  /_sink/...  reads the request body in 1 MiB pieces without keeping it and answers
                 {"bytes": n, "md5": hex, "sha256": hex, "method": m} (multi-GB uploads)

FAULT (every key optional):
  status        HTTP status (200)
  body          a JSON value (sent as application/json) or a string (text/plain)
  html          true: an HTML error page as text/html instead of `body`
  headers       {"Name": "value"} added to the answer
  retry_after   seconds → "Retry-After: N"
  retry_after_date  seconds from now → "Retry-After: <HTTP date>"
  delay_ms      wait this long before answering
  drop          true: read the request, then close the connection without answering
  body_bytes    answer with N bytes of 'x' (streamed in 1 MiB pieces)
  chunked       with body_bytes: Transfer-Encoding: chunked instead of Content-Length

Anything else answers 200 {"ok": true, "path": ..., "method": ..., "query": ..., "body": echo}.
Paths are matched without their query string.

Other fakes reuse this: subclass FaultHandler and override `route()`, then call `serve()`.
"""

import email.utils
import hashlib
import json
import os
import socket
import ssl
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FaultState", "FaultHandler", "FaultServer", "serve", "main"]


class FaultState:
    """Queued faults and what was seen, shared by every handler thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()
        self.last_activity = time.monotonic()

    def reset(self):
        with self.lock:
            self.faults = {}
            self.counts = {}
            self.headers = {}
            self.methods = {}
            self.connections = getattr(self, "connections", 0)

    def touch(self):
        self.last_activity = time.monotonic()

    def queue(self, path, responses):
        with self.lock:
            self.faults.setdefault(path, deque()).extend(responses)

    def record(self, path, method, headers):
        """Counts a request and returns the next queued fault for its path, or None."""
        with self.lock:
            self.counts[path] = self.counts.get(path, 0) + 1
            self.headers[path] = {k: v for k, v in headers.items()}
            self.methods[path] = method
            q = self.faults.get(path)
            return q.popleft() if q else None

    def stats(self):
        with self.lock:
            return {
                "connections": self.connections,
                "counts": dict(self.counts),
                "headers": dict(self.headers),
                "methods": dict(self.methods),
                "queued": {p: len(q) for p, q in self.faults.items() if q},
            }


HTML_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\n"
    "<body><h1>{code} {reason}</h1><p>The upstream proxy could not serve this request.</p>"
    "</body></html>\n"
)


class FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultserver/1"
    verbose = False

    # ---------------------------------------------------------------- plumbing

    def setup(self):
        super().setup()
        st = self.server.state
        with st.lock:
            st.connections += 1
        st.touch()

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if self.verbose:
            sys.stderr.write("faultserver: " + (format % args) + "\n")

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, body=b"", content_type="application/json", headers=None):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_json(self, status, value, headers=None):
        self.send(status, json.dumps(value).encode(), "application/json", headers)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True

    def sink(self, path):
        """Hashes the body piece by piece: the fake holds no upload in memory either."""
        self.server.state.record(path, self.command, self.headers)
        md5, sha = hashlib.md5(), hashlib.sha256()
        n = 0
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            data = self.read_body()
            md5.update(data)
            sha.update(data)
            n = len(data)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                piece = self.rfile.read(min(left, 1 << 20))
                if not piece:
                    break
                md5.update(piece)
                sha.update(piece)
                n += len(piece)
                left -= len(piece)
                self.server.state.touch()
        self.send_json(200, {"bytes": n, "md5": md5.hexdigest(), "sha256": sha.hexdigest(),
                             "method": self.command})

    def do_any(self):
        self.server.state.touch()
        path, _, query = self.path.partition("?")
        if path.startswith("/_sink/"):
            self.sink(path)
            return
        body = self.read_body()
        if path.startswith("/_"):
            if self.control(path, body):
                return
        fault = self.server.state.record(path, self.command, self.headers)
        if fault is not None:
            self.apply(fault, path, query, body)
            return
        answer = self.route(self.command, path, query, body)
        if answer is None:
            answer = self.default_answer(path, query, body)
        status, headers, payload = answer
        ctype = headers.pop("Content-Type", "application/json") if headers else "application/json"
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload)
        if isinstance(payload, str):
            payload = payload.encode()
        self.send(status, payload, ctype, headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_any

    # ---------------------------------------------------------------- overridable

    def route(self, method, path, query, body):
        """Subclasses answer their own API here: return (status, headers dict, body) where
        body is bytes, str or a JSON value — or None for the default echo."""
        return None

    def default_answer(self, path, query, body):
        try:
            echo = json.loads(body) if body else None
        except ValueError:
            echo = body.decode("utf-8", "replace")
        return 200, {}, {"ok": True, "path": path, "method": self.command, "query": query,
                         "body": echo}

    # ---------------------------------------------------------------- control and faults

    def control(self, path, body):
        st = self.server.state
        if path == "/_faults" and self.command == "POST":
            try:
                spec = json.loads(body)
                st.queue(spec["path"], spec["responses"])
            except (ValueError, KeyError, TypeError) as e:
                self.send_json(400, {"error": "bad fault script: %s" % e})
                return True
            self.send_json(200, {"queued": len(spec["responses"])})
            return True
        if path == "/_stats" and self.command == "GET":
            self.send_json(200, st.stats())
            return True
        if path == "/_reset" and self.command == "POST":
            st.reset()
            self.send_json(200, {"reset": True})
            return True
        return False

    def apply(self, fault, path, query, body):
        if fault.get("delay_ms"):
            time.sleep(fault["delay_ms"] / 1000.0)
        if fault.get("drop"):
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        status = int(fault.get("status", 200))
        headers = dict(fault.get("headers") or {})
        if "retry_after" in fault:
            headers["Retry-After"] = str(fault["retry_after"])
        if "retry_after_date" in fault:
            headers["Retry-After"] = email.utils.formatdate(
                time.time() + float(fault["retry_after_date"]), usegmt=True)
        if "body_bytes" in fault:
            self.stream(status, int(fault["body_bytes"]), bool(fault.get("chunked")), headers)
            return
        if fault.get("html"):
            reason = self.responses.get(status, ("Error",))[0]
            page = HTML_PAGE.format(code=status, reason=reason).encode()
            self.send(status, page, "text/html; charset=utf-8", headers)
            return
        if "body" in fault:
            b = fault["body"]
            if isinstance(b, str):
                self.send(status, b.encode(), "text/plain; charset=utf-8", headers)
            else:
                self.send_json(status, b, headers)
            return
        self.send_json(status, {"status": status, "path": path}, headers)

    def stream(self, status, n, chunked, headers):
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        for k, v in headers.items():
            self.send_header(k, str(v))
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command == "HEAD":
            return
        piece = b"x" * (1 << 20)
        try:
            while n > 0:
                k = min(n, len(piece))
                if chunked:
                    self.wfile.write(b"%x\r\n" % k + piece[:k] + b"\r\n")
                else:
                    self.wfile.write(piece[:k])
                n -= k
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, addr, handler=FaultHandler, tls=None):
        super().__init__(addr, handler)
        self.state = FaultState()
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            self.socket = ctx.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request, client_address):
        pass  # a client that went away (drop, timeouts, TLS refusals) is expected here


def _watchdog(server, idle):
    while True:
        time.sleep(min(1.0, idle / 4.0))
        if time.monotonic() - server.state.last_activity > idle:
            os._exit(0)


def serve(port=0, idle_timeout=120.0, handler=FaultHandler, tls=None, announce=sys.stdout,
          bind="127.0.0.1"):
    """Serves forever on bind:port; prints "PORT <n>" once listening. Exits the process
    after idle_timeout seconds without activity."""
    server = FaultServer((bind, port), handler, tls)
    if announce:
        announce.write("PORT %d\n" % server.server_address[1])
        announce.flush()
    threading.Thread(target=_watchdog, args=(server, idle_timeout), daemon=True).start()
    server.serve_forever(poll_interval=0.2)



def serve_refusable(make_server, app, port=0, ready=None):
    """Serves app for ever on 127.0.0.1:port through make_server(addr), announcing the port
    ("PORT N" on stdout, and in the file `ready`, written whole). A fault that closes the
    server for a while (app.server shut down, app.refuse_until in the future) is honoured:
    the port is bound again once the refusal ends. The tool fakes share this loop."""
    first = True
    while True:
        for attempt in range(50):
            try:
                server = make_server(("127.0.0.1", port))
                break
            except OSError:
                if first or attempt == 49:
                    raise
                time.sleep(0.1)
        app.server = server
        if first:
            port = server.server_address[1]
            sys.stdout.write("PORT %d\n" % port)
            sys.stdout.flush()
            if ready:
                tmp = ready + ".tmp"
                with open(tmp, "w") as f:
                    f.write("%d\n" % port)
                os.rename(tmp, ready)
            first = False
        server.serve_forever(poll_interval=0.05)
        server.server_close()
        while time.monotonic() < app.refuse_until:
            time.sleep(0.05)


def main(argv=None, handler=FaultHandler):
    args = list(sys.argv[1:] if argv is None else argv)
    port, idle, cert, key, bind = 0, 120.0, None, None, "127.0.0.1"
    while args:
        a = args.pop(0)
        if a == "--idle-timeout":
            idle = float(args.pop(0))
        elif a == "--tls-cert":
            cert = args.pop(0)
        elif a == "--tls-key":
            key = args.pop(0)
        elif a == "--bind":
            bind = args.pop(0)
        elif a == "--verbose":
            handler.verbose = True
        elif a.isdigit():
            port = int(a)
        else:
            sys.stderr.write("usage: %s [PORT] [--idle-timeout S] [--tls-cert PEM --tls-key PEM]"
                             " [--bind ADDR] [--verbose]\n" % os.path.basename(sys.argv[0]))
            return 2
    serve(port, idle, handler, (cert, key) if cert else None, bind=bind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
