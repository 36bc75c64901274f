#!/usr/bin/env python3
"""rayserve_fake.py — Ray Serve's REST API on the Ray dashboard (port 8265), in memory, for the
Ray Serve module's tests; Python 3 standard library only.

Built from /work/shared/contracts/kubernetes-kserve-argo-rayserve.md section 4 and Ray's
dashboard serve module: `PUT /api/serve/applications/` takes a ServeDeploySchema (declarative:
applications left out are deleted), answers 200 with an empty body, or 400 with the text of
pydantic's ValidationError repr; `GET /api/serve/applications/` answers ServeInstanceDetails
(applications keyed by name; before the first PUT and after a DELETE the empty schema dict:
{"deploy_mode":"MULTI_APP","controller_info":{},"proxies":{},"applications":{},
"target_capacity":null}); `DELETE /api/serve/applications/` shuts Serve down;
`GET /api/version` the dashboard's version. Unknown paths get aiohttp's "404: Not Found".

Run:
  rayserve_fake.py [--port N] [--ready-file F] [--max-seconds S] [--idle-timeout S]
                   [--exit-with-parent] [--polls N] [--outcome O] [--verbose]

The simulated Serve controller: an application that is new or whose config changed is
DEPLOYING (deployments UPDATING, replicas STARTING) and after N polls (GETs of
/api/serve/applications/; default --polls 2) reaches its outcome:
  running        RUNNING, deployments HEALTHY, replicas RUNNING (the default --outcome)
  deploy_failed  DEPLOY_FAILED with a traceback message, deployments DEPLOY_FAILED
  unhealthy      RUNNING first, then UNHEALTHY (deployments UNHEALTHY, HEALTH_CHECK_FAILED)
  stuck          DEPLOYING for ever
An application removed from the config is DELETING for N polls, then gone. Per application:
runtime_env.env_vars FAKE_LLMOPS_OUTCOME / FAKE_LLMOPS_POLLS / FAKE_LLMOPS_MESSAGE, or
POST /_app {"name": A, "outcome": O, "polls": N, "message": M} (without "name": the defaults).

Faults (faultserver.py's, plus "lost": true and "pass": true as in k8s_fake.py),
POST /_refuse {"seconds": S}, GET /_state (the configs as received), /_stats, /_reset.
"""

import json
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultserver  # noqa: E402

RAY_VERSION = "2.40.0"
APPS = "/api/serve/applications/"
PROXY_LOCATIONS = ("Disabled", "HeadOnly", "EveryNode")
OUTCOMES = ("running", "deploy_failed", "unhealthy", "stuck")
DEPLOYMENT_DEFAULTS = {"max_ongoing_requests": 5, "max_queued_requests": -1,
                       "user_config": None, "autoscaling_config": None,
                       "graceful_shutdown_wait_loop_s": 2.0, "graceful_shutdown_timeout_s": 20.0,
                       "health_check_period_s": 10.0, "health_check_timeout_s": 30.0}


def hexid(n):
    return "".join(random.choice("0123456789abcdef") for _ in range(n))


class Invalid(Exception):
    """pydantic v1 errors, answered as repr(ValidationError)."""

    def __init__(self, errors):
        super().__init__()
        self.errors = errors

    def text(self):
        return "ValidationError(model='ServeDeploySchema', errors=%r)" % (self.errors,)


def _err(loc, msg, etype):
    return {"loc": tuple(loc), "msg": msg, "type": etype}


def _check_int(v, loc, errs, minimum=None, allow_auto=False, positive=False):
    if allow_auto and v == "auto":
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (
            isinstance(v, float) and v != int(v)):
        errs.append(_err(loc, "value is not a valid integer", "type_error.integer"))
        return
    if positive and v <= 0:
        errs.append(_err(loc, "ensure this value is greater than 0",
                         "value_error.number.not_gt"))
    elif minimum is not None and v < minimum:
        errs.append(_err(loc, "ensure this value is greater than or equal to %d" % minimum,
                         "value_error.number.not_ge"))


def validate_config(cfg):
    """ServeDeploySchema's checks, as pydantic v1 reports them."""
    errs = []
    if not isinstance(cfg, dict):
        raise Invalid([_err(["__root__"], "ServeDeploySchema expected dict not %s"
                            % type(cfg).__name__, "type_error")])
    if "proxy_location" in cfg and cfg["proxy_location"] not in PROXY_LOCATIONS:
        errs.append(_err(["proxy_location"], "value is not a valid enumeration member; permitted:"
                         " 'Disabled', 'HeadOnly', 'EveryNode'", "type_error.enum"))
    http = cfg.get("http_options", {})
    if not isinstance(http, dict):
        errs.append(_err(["http_options"], "value is not a valid dict", "type_error.dict"))
    elif "port" in http:
        _check_int(http["port"], ["http_options", "port"], errs)
    apps = cfg.get("applications")
    if apps is None:
        errs.append(_err(["applications"], "field required", "value_error.missing"))
        raise Invalid(errs)
    if not isinstance(apps, list):
        errs.append(_err(["applications"], "value is not a valid list", "type_error.list"))
        raise Invalid(errs)
    names, prefixes = {}, {}
    for i, app in enumerate(apps):
        loc = ["applications", i]
        if not isinstance(app, dict):
            errs.append(_err(loc, "value is not a valid dict", "type_error.dict"))
            continue
        ip = app.get("import_path")
        if ip is None:
            errs.append(_err(loc + ["import_path"], "field required", "value_error.missing"))
        elif not isinstance(ip, str):
            errs.append(_err(loc + ["import_path"], "str type expected", "type_error.str"))
        elif ":" in ip:
            if ip.count(":") > 1:
                errs.append(_err(loc + ["import_path"], 'Got invalid import path "%s". An import '
                                 'path may have at most one colon.' % ip, "value_error"))
            elif ip.startswith(":") or ip.endswith(":"):
                errs.append(_err(loc + ["import_path"], 'Got invalid import path "%s". An import '
                                 'path may not start or end with a colon.' % ip, "value_error"))
        elif "." not in ip or ip.startswith(".") or ip.endswith("."):
            errs.append(_err(loc + ["import_path"], 'Got invalid import path "%s". An import path '
                             'must contain at least on dot or colon separating the module (and '
                             'potentially submodules) from the deployment graph. E.g.: '
                             '"module.deployment_graph".' % ip, "value_error"))
        name = app.get("name", "default")
        if not isinstance(name, str):
            errs.append(_err(loc + ["name"], "str type expected", "type_error.str"))
        rp = app.get("route_prefix", "/")
        if rp is not None:
            if not isinstance(rp, str) or not rp.startswith("/"):
                errs.append(_err(loc + ["route_prefix"], 'The route_prefix must start with a '
                                 'forward slash ("/")', "value_error"))
            elif rp != "/" and rp.endswith("/"):
                errs.append(_err(loc + ["route_prefix"], 'The route_prefix cannot end with a '
                                 'forward slash ("/")', "value_error"))
            elif "{" in rp or "}" in rp:
                errs.append(_err(loc + ["route_prefix"], "route_prefix may not contain wildcards",
                                 "value_error"))
        for key in ("runtime_env", "args"):
            if key in app and not isinstance(app[key], dict):
                errs.append(_err(loc + [key], "value is not a valid dict", "type_error.dict"))
        deps = app.get("deployments", [])
        if not isinstance(deps, list):
            errs.append(_err(loc + ["deployments"], "value is not a valid list",
                             "type_error.list"))
            deps = []
        dnames = set()
        for j, d in enumerate(deps):
            dl = loc + ["deployments", j]
            if not isinstance(d, dict):
                errs.append(_err(dl, "value is not a valid dict", "type_error.dict"))
                continue
            if "name" not in d:
                errs.append(_err(dl + ["name"], "field required", "value_error.missing"))
            elif d["name"] in dnames:
                errs.append(_err(loc + ["deployments"], "Found multiple configs for deployment "
                                 "'%s'. Please remove all duplicates." % d["name"],
                                 "value_error"))
            dnames.add(d.get("name"))
            if "num_replicas" in d and d["num_replicas"] is not None:
                _check_int(d["num_replicas"], dl + ["num_replicas"], errs, allow_auto=True,
                           positive=True)
            if "max_ongoing_requests" in d:
                _check_int(d["max_ongoing_requests"], dl + ["max_ongoing_requests"], errs,
                           positive=True)
            ac = d.get("autoscaling_config")
            if ac is not None:
                if not isinstance(ac, dict):
                    errs.append(_err(dl + ["autoscaling_config"], "value is not a valid dict",
                                     "type_error.dict"))
                else:
                    mn, mx = ac.get("min_replicas", 1), ac.get("max_replicas", 1)
                    if isinstance(mn, int) and isinstance(mx, int) and mn > mx:
                        errs.append(_err(dl + ["autoscaling_config", "__root__"],
                                         "max_replicas (%d) must be greater than or equal to "
                                         "min_replicas (%d)!" % (mx, mn), "value_error"))
            rao = d.get("ray_actor_options")
            if rao is not None:
                if not isinstance(rao, dict):
                    errs.append(_err(dl + ["ray_actor_options"], "value is not a valid dict",
                                     "type_error.dict"))
                else:
                    for k in ("num_cpus", "num_gpus", "memory"):
                        v = rao.get(k)
                        if v is not None and (isinstance(v, bool) or not isinstance(
                                v, (int, float)) or v < 0):
                            errs.append(_err(dl + ["ray_actor_options", k],
                                             "ensure this value is greater than or equal to 0",
                                             "value_error.number.not_ge"))
        if isinstance(name, str):
            if name in names:
                errs.append(_err(["applications"], "Found multiple configs for application "
                                 "'%s'. Please remove all duplicates." % name, "value_error"))
            names[name] = i
        if isinstance(rp, str) and rp in prefixes:
            errs.append(_err(["applications"], 'Found duplicate applications for route prefix '
                             '"%s". Please ensure each application\'s route_prefix is unique.'
                             % rp, "value_error"))
        if isinstance(rp, str):
            prefixes[rp] = i
    if errs:
        raise Invalid(errs)


class Serve:
    """Serve's state: the applications, their configs and where each one is going."""

    def __init__(self):
        self.lock = threading.RLock()
        self.running = False
        self.defaults = {"outcome": "running", "polls": 2, "message": None}
        self.script = {}
        self.apps = {}  # name -> {"config", "status", "polls", "plan", "deployed_at", ...}
        self.proxy_location = "EveryNode"
        self.http_options = {}
        self.node_id = hexid(56)
        self.controller = {"node_id": self.node_id, "node_ip": "10.0.0.2",
                           "node_instance_id": "", "actor_id": hexid(32),
                           "actor_name": "SERVE_CONTROLLER_ACTOR", "worker_id": hexid(56),
                           "log_file_path": "/serve/controller_%d.log" % random.randint(100, 999)}

    def plan(self, name, cfg):
        p = dict(self.defaults)
        env = ((cfg.get("runtime_env") or {}).get("env_vars") or {})
        if "FAKE_LLMOPS_OUTCOME" in env:
            p["outcome"] = env["FAKE_LLMOPS_OUTCOME"]
        if "FAKE_LLMOPS_POLLS" in env:
            try:
                p["polls"] = int(env["FAKE_LLMOPS_POLLS"])
            except ValueError:
                pass
        if "FAKE_LLMOPS_MESSAGE" in env:
            p["message"] = env["FAKE_LLMOPS_MESSAGE"]
        p.update(self.script.get(name, {}))
        return p

    def put(self, cfg):
        with self.lock:
            self.running = True
            self.proxy_location = cfg.get("proxy_location", self.proxy_location)
            http = dict({"host": "0.0.0.0", "port": 8000, "root_path": "",
                         "request_timeout_s": None, "keep_alive_timeout_s": 90},
                        **(cfg.get("http_options") or {}))
            if not self.http_options:
                self.http_options = http  # Serve ignores HTTP options once it runs
            wanted = {}
            for app in cfg["applications"]:
                wanted[app.get("name", "default")] = app
            for name, app in self.apps.items():
                if name not in wanted and app["status"] != "DELETING":
                    app.update(status="DELETING", polls=0, message="Deleting application.")
            now = time.time()
            for name, acfg in wanted.items():
                cur = self.apps.get(name)
                if cur is not None and cur["config"] == acfg and cur["status"] != "DELETING":
                    continue
                self.apps[name] = {"config": acfg, "status": "DEPLOYING", "polls": 0,
                                   "plan": self.plan(name, acfg), "deployed_at": now,
                                   "message": "", "replica_ids": {}}

    def poll(self):
        with self.lock:
            for name in list(self.apps):
                app = self.apps[name]
                app["polls"] += 1
                plan = app["plan"]
                if app["status"] == "DELETING":
                    if app["polls"] >= plan["polls"]:
                        del self.apps[name]
                    continue
                if app["status"] == "DEPLOYING" and plan["outcome"] != "stuck" and \
                        app["polls"] >= plan["polls"]:
                    if plan["outcome"] == "deploy_failed":
                        app["status"] = "DEPLOY_FAILED"
                        app["message"] = plan.get("message") or (
                            "Deploying app '%s' failed with exception:\nTraceback (most recent "
                            "call last):\n  File \"/home/ray/anaconda3/lib/python3.11/site-"
                            "packages/ray/serve/_private/application_state.py\", line 994, in "
                            "build_serve_application\n    app = call_user_app_builder_with_"
                            "args_if_necessary(import_attr(import_path), args)\n"
                            "ModuleNotFoundError: No module named '%s'\n"
                            % (name, app["config"]["import_path"].split(":")[0].split(".")[0]))
                    else:
                        app["status"] = "RUNNING"
                        app["running_polls"] = app["polls"]
                elif app["status"] == "RUNNING" and plan["outcome"] == "unhealthy" and \
                        app["polls"] > app.get("running_polls", 0):
                    app["status"] = "UNHEALTHY"
                    app["message"] = plan.get("message") or (
                        "The deployments ['%s'] are UNHEALTHY." % self.dep_names(app)[0])

    @staticmethod
    def dep_names(app):
        cfg = app["config"]
        deps = [d["name"] for d in cfg.get("deployments") or []]
        if not deps:
            attr = cfg["import_path"].replace(":", ".").split(".")[-1]
            deps = [attr[:1].upper() + attr[1:]]
        return deps

    def replicas(self, app, dname, n, state):
        ids = app["replica_ids"].setdefault(dname, [])
        while len(ids) < n:
            ids.append(hexid(8))
        out = []
        for rid in ids[:n]:
            out.append({"node_id": self.node_id, "node_ip": "10.0.0.2", "node_instance_id": "",
                        "actor_id": hexid(32), "actor_name": "SERVE_REPLICA::%s#%s#%s"
                        % (app["config"].get("name", "default"), dname, rid),
                        "worker_id": hexid(56), "log_file_path": "/serve/replica_%s_%s.log"
                        % (dname, rid), "replica_id": rid, "state": state,
                        "pid": random.randint(1000, 60000), "start_time_s": app["deployed_at"]})
        return out

    def app_details(self, name, app):
        cfg = app["config"]
        st = app["status"]
        overrides = {d["name"]: d for d in cfg.get("deployments") or []}
        deps = {}
        for dn in self.dep_names(app):
            o = overrides.get(dn, {})
            n = o.get("num_replicas", 1)
            auto = o.get("autoscaling_config")
            if n == "auto" or auto:
                auto = dict({"min_replicas": 1, "initial_replicas": None, "max_replicas": 100,
                             "target_ongoing_requests": 2.0, "metrics_interval_s": 10.0,
                             "look_back_period_s": 30.0, "smoothing_factor": 1.0,
                             "upscale_delay_s": 30.0, "downscale_delay_s": 600.0},
                            **(auto or {}))
                n = auto["min_replicas"]
            rao = dict({"num_cpus": 1.0}, **(o.get("ray_actor_options") or {}))
            dc = dict(DEPLOYMENT_DEFAULTS, name=dn, num_replicas=None if auto else n,
                      ray_actor_options=rao, autoscaling_config=auto)
            for k in ("max_ongoing_requests", "user_config"):
                if k in o:
                    dc[k] = o[k]
            dstatus, trigger, msg, rstate = {
                "DEPLOYING": ("UPDATING", "CONFIG_UPDATE_STARTED", "", "STARTING"),
                "RUNNING": ("HEALTHY", "CONFIG_UPDATE_COMPLETED", "", "RUNNING"),
                "DEPLOY_FAILED": ("DEPLOY_FAILED", "REPLICA_STARTUP_FAILED",
                                  "The deployment failed to start %d times in a row. This may "
                                  "be due to a problem with its constructor or initial health "
                                  "check failing." % 3, None),
                "UNHEALTHY": ("UNHEALTHY", "HEALTH_CHECK_FAILED",
                              "The deployment failed health checks.", "RECOVERING"),
                "DELETING": ("HEALTHY", "DELETING", "", "STOPPING"),
            }[st]
            res = {"CPU": rao.get("num_cpus", 1.0)}
            if rao.get("num_gpus"):
                res["GPU"] = rao["num_gpus"]
            deps[dn] = {"name": dn, "status": dstatus, "status_trigger": trigger,
                        "message": msg, "deployment_config": dc, "target_num_replicas": n,
                        "required_resources": res,
                        "replicas": self.replicas(app, dn, n, rstate) if rstate else []}
        return {"name": name, "route_prefix": cfg.get("route_prefix", "/"), "docs_path": None,
                "status": st, "message": app["message"],
                "last_deployed_time_s": app["deployed_at"], "deployed_app_config": cfg,
                "source": "declarative", "deployments": deps,
                "external_scaler_enabled": False, "deployment_topology": None}

    def details(self):
        with self.lock:
            if not self.running:
                return {"deploy_mode": "MULTI_APP", "controller_info": {}, "proxies": {},
                        "applications": {}, "target_capacity": None}
            return {"controller_info": self.controller, "proxy_location": self.proxy_location,
                    "http_options": self.http_options,
                    "grpc_options": {"port": 9000, "grpc_servicer_functions": [],
                                     "request_timeout_s": None},
                    "proxies": {self.node_id: {
                        "node_id": self.node_id, "node_ip": "10.0.0.2", "node_instance_id": "",
                        "actor_id": self.controller["actor_id"][::-1],
                        "actor_name": "SERVE_CONTROLLER_ACTOR:SERVE_PROXY_ACTOR-" + self.node_id,
                        "worker_id": hexid(56), "log_file_path": "/serve/proxy_10.0.0.2.log",
                        "status": "HEALTHY"}} if self.proxy_location != "Disabled" else {},
                    "deploy_mode": "MULTI_APP",
                    "applications": {n: self.app_details(n, a) for n, a in self.apps.items()},
                    "target_capacity": None, "target_groups": []}

    def shutdown(self):
        with self.lock:
            self.running = False
            self.apps = {}
            self.http_options = {}


class Handler(faultserver.FaultHandler):
    server_version = "Python/3.11 aiohttp/3.9.5"
    sys_version = ""

    def version_string(self):
        return self.server_version

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.app.lock:
            self.server.app.conns.add(self.connection)

    def finish(self):
        with self.server.app.lock:
            self.server.app.conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def control(self, path, body):
        app = self.server.app
        serve = app.serve
        try:
            spec = json.loads(body) if body else {}
        except ValueError as e:
            self.send_json(400, {"error": "bad control body: %s" % e})
            return True
        if path == "/_refuse" and self.command == "POST":
            seconds = float(spec.get("seconds", 1))
            self.send_json(200, {"refusing": seconds})
            self.close_connection = True
            app.refuse(seconds)
            return True
        if path == "/_app" and self.command == "POST":
            keys = {k: spec[k] for k in ("outcome", "polls", "message") if k in spec}
            if "outcome" in keys and keys["outcome"] not in OUTCOMES:
                self.send_json(400, {"error": "outcome is one of %s" % ", ".join(OUTCOMES)})
                return True
            with serve.lock:
                if spec.get("name"):
                    serve.script.setdefault(spec["name"], {}).update(keys)
                else:
                    serve.defaults.update(keys)
            self.send_json(200, {"defaults": serve.defaults})
            return True
        if path == "/_state" and self.command == "GET":
            with serve.lock:
                self.send_json(200, {"running": serve.running, "apps": {
                    n: {"config": a["config"], "status": a["status"], "polls": a["polls"]}
                    for n, a in serve.apps.items()}})
            return True
        return super().control(path, body)

    def apply(self, fault, path, query, body):
        if fault.get("pass"):
            if fault.get("delay_ms"):
                time.sleep(fault["delay_ms"] / 1000.0)
            status, headers, payload = self.route(self.command, path, query, body)
            ctype = headers.pop("Content-Type", "application/json")
            self.send(status, payload.encode() if isinstance(payload, str) else payload, ctype,
                      headers)
            return
        if fault.get("lost"):
            try:
                self.route(self.command, path, query, body)
            except Exception:  # noqa: BLE001 (the answer is lost anyway)
                pass
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        super().apply(fault, path, query, body)

    def route(self, method, path, query, body):
        serve = self.server.app.serve
        text = {"Content-Type": "text/plain; charset=utf-8"}
        if path in (APPS, APPS.rstrip("/")):
            if method == "GET":
                api_type = dict(p.partition("=")[::2] for p in query.split("&") if p).get(
                    "api_type")
                if api_type and api_type.lower() not in ("imperative", "declarative"):
                    return 400, text, ("Invalid 'api_type' value: '%s'. Must be one of: "
                                       "imperative, declarative" % api_type)
                serve.poll()
                details = serve.details()
                if api_type and api_type.lower() == "imperative":
                    details["applications"] = {}
                return 200, {}, json.dumps(details)
            if method == "PUT":
                try:
                    cfg = json.loads(body.decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as e:
                    return 500, text, "500 Internal Server Error\n\nServer got itself in " \
                                      "trouble: %s" % e
                try:
                    validate_config(cfg)
                except Invalid as e:
                    return 400, text, e.text()
                serve.put(cfg)
                return 200, {"Content-Type": "application/octet-stream"}, b""
            if method == "DELETE":
                serve.shutdown()
                return 200, {"Content-Type": "application/octet-stream"}, b""
            return 405, text, "405: Method Not Allowed"
        if path == "/api/version" and method == "GET":
            return 200, {}, json.dumps({"version": "4", "ray_version": RAY_VERSION,
                                        "ray_commit": hexid(40),
                                        "session_name": "session_2026-12-03_08-00-00_000000_1"})
        return 404, text, "404: Not Found"


class App:
    def __init__(self):
        self.serve = Serve()
        self.state = faultserver.FaultState()
        self.server = None
        self.refuse_until = 0.0
        self.conns = set()
        self.lock = threading.Lock()

    def refuse(self, seconds):
        self.refuse_until = time.monotonic() + seconds
        server = self.server

        def stop():
            server.shutdown()
            with self.lock:
                conns = list(self.conns)
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=stop, daemon=True).start()


class Server(faultserver.FaultServer):
    def __init__(self, addr, app):
        self.allow_reuse_address = True
        super().__init__(addr, Handler)
        self.app = app
        self.state = app.state


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    port, ready, max_seconds, idle, with_parent = 0, None, 600.0, 120.0, False
    app = App()
    try:
        while args:
            a = args.pop(0)
            if a == "--port":
                port = int(args.pop(0))
            elif a == "--ready-file":
                ready = args.pop(0)
            elif a == "--max-seconds":
                max_seconds = float(args.pop(0))
            elif a == "--idle-timeout":
                idle = float(args.pop(0))
            elif a == "--exit-with-parent":
                with_parent = True
            elif a == "--polls":
                app.serve.defaults["polls"] = int(args.pop(0))
            elif a == "--outcome":
                o = args.pop(0)
                if o not in OUTCOMES:
                    raise ValueError(o)
                app.serve.defaults["outcome"] = o
            elif a == "--verbose":
                Handler.verbose = True
            else:
                raise ValueError(a)
    except (ValueError, IndexError):
        sys.stderr.write("usage: rayserve_fake.py [--port N] [--ready-file F] [--max-seconds S] "
                         "[--idle-timeout S] [--exit-with-parent] [--polls N] "
                         "[--outcome running|deploy_failed|unhealthy|stuck] [--verbose]\n")
        return 2
    started, parent = time.monotonic(), os.getppid()

    def watchdog():
        while True:
            time.sleep(0.2)
            t = time.monotonic()
            if (t - started > max_seconds or t - app.state.last_activity > idle
                    or (with_parent and os.getppid() != parent)):
                os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    faultserver.serve_refusable(lambda addr: Server(addr, app), app, port, ready)


if __name__ == "__main__":
    sys.exit(main())
