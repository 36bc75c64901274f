#!/usr/bin/env python3
"""mlflow_fake.py — an in-memory MLflow 2.14 tracking server for the mlflow module's tests.

Built from /work/shared/contracts/mlflow-2.14-transcript.txt (what a real 2.14.3 server
answered): string experiment ids ("0" is Default), 32-hex run ids, invented run names, empty
members left out, pretty-printed successes and one-line JSON errors, 400
RESOURCE_ALREADY_EXISTS for a duplicate experiment name (deleted names stay taken),
INVALID_PARAMETER_VALUE shapes, "Changing param values is not allowed", +/-Infinity answered as
+/-DBL_MAX, "NaN" strings, a bare NaN token stored as 0 with timestamp 0, metric logging as the
SQL store does it (a NaN point the run holds, sent again, is refused with 400 BAD_REQUEST and
SQLite's UNIQUE constraint text; see Store.log_metrics), unknown statuses ignored with a 200,
metrics/get-history ignoring max_results and answering {} for a run it does not have (the SQL
store only selects by run and key), page tokens that are base64
{"offset": N} (a full last page still carries one), HTML pages for unknown paths (404), wrong
methods (405) and a JSON array body (500).

Run:
  mlflow_fake.py [--port N] [--ready-file F] [--max-seconds S] [--idle-timeout S]
                 [--token T | --basic-auth USER:PASS] [--version V] [--exit-with-parent]
                 [--descending-run-ids] [--cleanup-dir DIR] [--verbose]
  --port 0 (the default) picks a free port; the port is printed as "PORT <n>" and written to
  --ready-file (atomically) once the server listens. The process exits by itself after
  --max-seconds (default 300), after --idle-timeout seconds without a request (default 120),
  and with --exit-with-parent when the process that started it goes away; when it exits by
  itself it removes --cleanup-dir (a test's directory, left behind by a test that failed).
  With --token or --basic-auth every path but /health needs that Authorization header
  (401 otherwise, as MLflow's basic-auth app answers). --descending-run-ids makes each new run
  id sort below the earlier ones, as the recorded transcript's happen to (for its replay).

Faults (faultserver.py's, plus):
  POST /_faults {"path": P, "responses": [FAULT...]}  FAULT as in faultserver.py, and
                 "lost": true  — do the request (the write happens), then close the connection
                                 without answering
                 "pass": true  — answer as usual (queue it before a fault meant for a later
                                 request to the same path)
  POST /_refuse {"seconds": S}  stop listening (and close open connections) for S seconds
  POST /_config {"version": V}  answer /version with V from now on
  POST /_forget {"run_id": R}   remove a run and all it holds, as `mlflow gc` does to a
                                deleted run (404 when there is none)
  GET  /_state                  experiments and runs as stored (for test assertions)
  GET  /_stats, POST /_reset    as in faultserver.py
"""

import base64
import json
import math
import os
import random
import re
import shutil
import socket
import sys
import threading
import time
import uuid
from collections import OrderedDict
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultserver  # noqa: E402

DBL_MAX = sys.float_info.max
ARTIFACT_ROOT = "/srv/mlflow/artifacts"
MAX_RESULTS_LIMIT = 50000

HTML = ("<!doctype html>\n<html lang=en>\n<title>{code} {title}</title>\n<h1>{title}</h1>\n"
        "<p>{text}</p>\n")
PAGES = {
    404: ("Not Found", "The requested URL was not found on the server. If you entered the URL "
          "manually please check your spelling and try again."),
    405: ("Method Not Allowed", "The method is not allowed for the requested URL."),
    500: ("Internal Server Error", "The server encountered an internal error and was unable to "
          "complete your request. Either the server is overloaded or there is an error in the "
          "application."),
}
HTML_TYPE = "text/html; charset=utf-8"
UNAUTHENTICATED = ("You are not authenticated. Please see "
                   "https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow "
                   "on how to authenticate.")

ADJECTIVES = ["salty", "unleashed", "brawny", "bemused", "calm", "capable", "clean", "dapper",
              "enchanting", "gentle", "honorable", "judicious", "languid", "mysterious"]
NOUNS = ["bug", "sheep", "owl", "hare", "stag", "finch", "moth", "toad", "whale", "yak"]


def now_ms():
    return int(time.time() * 1000)


class Html(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code


class ApiError(Exception):
    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def invalid(message):
    return ApiError("INVALID_PARAMETER_VALUE", message)


def missing(name):
    return invalid("Missing value for required parameter '%s'. See the API docs for more "
                   "information about request parameters." % name)


def bad_value(name, value):
    return invalid("Invalid value %s for parameter '%s' supplied. Hint: Value was of type '%s'. "
                   "See the API docs for more information about request parameters."
                   % (json.dumps(value), name, type(value).__name__))


def not_active(kind, ident, stage):
    return invalid("The %s %s must be in the 'active' state. Current state is %s."
                   % (kind, ident, stage))


# ------------------------------------------------------------------ request fields


def f_str(p, name, required=False):
    v = p.get(name)
    if v is None or v == "":
        if required:
            raise missing(name)
        return None
    if isinstance(v, bool):
        raise bad_value(name, v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return v
    raise bad_value(name, v)


def f_int(p, name, required=False, default=None):
    v = p.get(name)
    if v is None:
        if required:
            raise missing(name)
        return default
    if isinstance(v, bool):
        raise bad_value(name, v)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v == v and v == int(v):
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v):
        return int(v)
    raise bad_value(name, v)


class BareNaN(Exception):
    """A bare NaN/Infinity token: protobuf's ParseDict fails part-way (the transcript's E17)."""


def f_double(p, name, required=True):
    v = p.get(name)
    if v is None:
        if required:
            raise missing(name)
        return None
    if isinstance(v, bool):
        raise bad_value(name, v)
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        raise BareNaN()
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        if v in ("NaN", "Infinity", "-Infinity"):
            return float(v.replace("Infinity", "inf"))
        try:
            return float(v)
        except ValueError:
            pass
    raise bad_value(name, v)


def f_list(p, name):
    v = p.get(name)
    if v is None:
        return []
    if not isinstance(v, list):
        raise bad_value(name, v)
    return v


def check_key(kind, key):
    if not isinstance(key, str) or key == "":
        raise missing("key")
    if len(key) > 250:
        raise invalid("%s key '%s' had length %d, which exceeded length limit of 250"
                      % (kind, key[:250], len(key)))
    if not re.fullmatch(r"[\w\-. /:]*", key):
        raise invalid("Invalid %s name: '%s'. Names may only contain alphanumerics, underscores "
                      "(_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
                      % (kind.lower(), key))


def check_value(kind, key, value, limit):
    if value is None:
        value = ""
    if not isinstance(value, str):
        value = str(value)
    if len(value) > limit:
        raise invalid("%s value '%s' had length %d, which exceeded length limit of %d"
                      % (kind, value[:250], len(value), limit))
    return value


def out_value(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return DBL_MAX if v > 0 else -DBL_MAX
    return float(v)


def page_token(offset):
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def parse_page_token(token):
    if not token:
        return 0
    try:
        decoded = base64.b64decode(token.encode(), validate=True)
    except (ValueError, TypeError):
        raise invalid("Invalid page token, could not base64-decode. Underlying error: "
                      "Incorrect padding")
    try:
        offset = json.loads(decoded)["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError()
    except (ValueError, KeyError, TypeError):
        raise invalid("Invalid page token, decoded value=%r" % decoded)
    return offset


def max_results_of(p, default=1000):
    n = f_int(p, "max_results", default=default)
    if n is None or n <= 0:
        raise invalid("Invalid value for request parameter max_results. It must be a positive "
                      "integer, but got %s" % (n or 0))
    if n > MAX_RESULTS_LIMIT:
        raise invalid("Invalid value for request parameter max_results. It must be at most %d, "
                      "but got value %d" % (MAX_RESULTS_LIMIT, n))
    return n


# ------------------------------------------------------------------ the filter language

TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str1>'(?:''|\\\\|\\'|[^'])*')
  | (?P<str2>"(?:""|\\\\|\\"|[^"])*")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.(?:`(?:``|[^`])*`|"(?:""|[^"])*"|[A-Za-z0-9_.:/\-]+))?)
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE]-?\d+)?|-?\.\d+(?:[eE]-?\d+)?)
  | (?P<cmp>[<>=!]+)
  | (?P<other>.)
""", re.X | re.S)


def tokenize(s):
    out = []
    pos = 0
    while pos < len(s):
        m = TOKEN_RE.match(s, pos)
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group()))
        pos = m.end()
    return out


def unquote_key(k):
    if len(k) >= 2 and k[0] == k[-1] and k[0] in "`\"":
        return k[1:-1]
    return k


ENTITY = {"metric": "metrics", "metrics": "metrics", "param": "params", "params": "params",
          "parameter": "params", "parameters": "params", "tag": "tags", "tags": "tags",
          "attribute": "attributes", "attributes": "attributes", "attr": "attributes",
          "run": "attributes"}
RUN_STRING_ATTRS = {"status", "run_name", "run_id", "user_id", "artifact_uri"}
RUN_NUMERIC_ATTRS = {"start_time", "end_time"}
NUMERIC_CMP = ["<", "=", "<=", ">=", ">", "!="]  # in MLflow's message order
STRING_CMP = ["=", "!=", "LIKE", "ILIKE"]


def cmp_error(op, allowed):
    return invalid("Invalid comparator '%s' not one of '{%s}"
                   % (op, ", ".join("'%s'" % a for a in allowed)))


def split_identifier(text, experiments):
    if "." in text:
        entity, key = text.split(".", 1)
        key = unquote_key(key)
    else:
        entity, key = "attributes", text
    etype = ENTITY.get(entity.lower())
    if etype is None:
        raise invalid("Invalid entity type '%s'. Valid values are %s" % (
            entity, "['tag', 'attribute']" if experiments else
            "['metric', 'parameter', 'tag', 'attribute', 'dataset']"))
    if experiments and etype not in ("tags", "attributes"):
        raise invalid("Invalid entity type '%s'. Valid values are ['tag', 'attribute']" % entity)
    return etype, key


def parse_filter(s, experiments=False):
    """→ [(entity, key, op, value)]. AND only, as MLflow."""
    if not s or not s.strip():
        return []
    toks = tokenize(s)
    clauses = []
    i = 0
    while True:
        if i >= len(toks) or toks[i][0] != "ident":
            raise invalid("Invalid filter '%s'. Could not be parsed." % s)
        etype, key = split_identifier(toks[i][1], experiments)
        i += 1
        if i >= len(toks):
            raise invalid("Invalid filter '%s'. Could not be parsed." % s)
        kind, op = toks[i]
        if kind == "ident" and op.upper() in ("LIKE", "ILIKE"):
            op = op.upper()
        elif kind != "cmp":
            raise invalid("Invalid filter '%s'. Could not be parsed." % s)
        i += 1
        if i >= len(toks):
            raise invalid("Invalid filter '%s'. Could not be parsed." % s)
        vkind, vtext = toks[i]
        i += 1
        numeric = etype == "metrics" or (etype == "attributes" and key in RUN_NUMERIC_ATTRS) or (
            experiments and etype == "attributes" and key in ("creation_time", "last_update_time"))
        if numeric:
            if op not in NUMERIC_CMP:
                raise cmp_error(op, NUMERIC_CMP)
            if vkind != "num":
                raise invalid("Expected numeric value type for metric. Found %s" % vtext)
            value = float(vtext)
        else:
            if etype == "attributes":
                known = {"name"} if experiments else RUN_STRING_ATTRS
                if key not in known:
                    raise invalid("Invalid attribute key '%s' specified. Valid keys are '%s'"
                                  % (key, sorted(known)))
            if op not in STRING_CMP:
                raise cmp_error(op, STRING_CMP)
            if vkind not in ("str1", "str2"):
                raise invalid("Expected a quoted string value for %s. Found '%s'"
                              % (etype, vtext))
            value = vtext[1:-1]  # MLflow strips the quotes and unescapes nothing
        clauses.append((etype, key, op, value))
        if i == len(toks):
            return clauses
        if not (toks[i][0] == "ident" and toks[i][1].upper() == "AND"):
            raise invalid("Invalid clause(s) in filter string: '%s'" % toks[i][1])
        i += 1


def like(pattern, text, icase):
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, text, (re.I if icase else 0) | re.S) is not None


def compare(actual, op, value):
    if actual is None:
        return False
    if op == "LIKE":
        return like(value, actual, False)
    if op == "ILIKE":
        return like(value, actual, True)
    return {"=": actual == value, "!=": actual != value, "<": actual < value,
            "<=": actual <= value, ">": actual > value, ">=": actual >= value}[op]


def parse_order_by(items, experiments=False):
    out = []
    for item in items:
        toks = tokenize(item or "") if isinstance(item, str) else []
        if not (1 <= len(toks) <= 2 and toks[0][0] == "ident" and
                (len(toks) == 1 or toks[1][1].upper() in ("ASC", "DESC"))):
            raise invalid("Invalid order_by clause '%s'. Could not be parsed." % item)
        etype, key = split_identifier(toks[0][1], experiments)
        out.append((etype, key, len(toks) == 2 and toks[1][1].upper() == "DESC"))
    return out


def sort_by(items, keys):
    """keys: [(getter, desc)] — lexicographic; missing values (None) last either way."""
    for getter, desc in reversed(keys):
        present = [x for x in items if getter(x) is not None]
        absent = [x for x in items if getter(x) is None]
        present.sort(key=getter, reverse=desc)
        items = present + absent
    return items


# ------------------------------------------------------------------ the store


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        t = now_ms()
        self.experiments = OrderedDict()
        self.experiments["0"] = {"id": "0", "name": "Default", "lifecycle": "active",
                                 "created": t, "updated": t, "tags": OrderedDict()}
        self.next_id = 1
        self.runs = OrderedDict()
        self.descending_ids = False
        self.run_counter = 0

    def new_run_id(self):
        """32 lowercase hex digits; with descending_ids each sorts below the ones before it
        (the recorded transcript's ids happen to), so ties on start_time order as recorded."""
        if not self.descending_ids:
            return uuid.uuid4().hex
        self.run_counter += 1
        return "%032x" % ((1 << 128) - self.run_counter * 0x1000193 * (1 << 96) // 977
                          - random.randrange(1 << 64))

    # -------------------------------------------------------------- shapes

    @staticmethod
    def exp_json(e):
        d = OrderedDict([("experiment_id", e["id"]), ("name", e["name"]),
                         ("artifact_location", "%s/%s" % (ARTIFACT_ROOT, e["id"])),
                         ("lifecycle_stage", e["lifecycle"]), ("last_update_time", e["updated"]),
                         ("creation_time", e["created"])])
        if e["tags"]:
            d["tags"] = [{"key": k, "value": v} for k, v in e["tags"].items()]
        return d

    @staticmethod
    def info_json(r):
        d = OrderedDict([("run_uuid", r["id"]), ("experiment_id", r["experiment_id"]),
                         ("run_name", r["name"]), ("user_id", r["user_id"]),
                         ("status", r["status"]), ("start_time", r["start_time"])])
        if r["end_time"] is not None:
            d["end_time"] = r["end_time"]
        d["artifact_uri"] = "%s/%s/%s/artifacts" % (ARTIFACT_ROOT, r["experiment_id"], r["id"])
        d["lifecycle_stage"] = r["lifecycle"]
        d["run_id"] = r["id"]
        return d

    @staticmethod
    def rank(p):
        return (p["step"], p["timestamp"], -math.inf if math.isnan(p["value"]) else p["value"])

    @staticmethod
    def latest(r):
        """key -> its latest point (max step, then timestamp, then value), in first-logged order."""
        return r["latest"]

    def run_json(self, r, inputs=True):
        data = OrderedDict()
        latest = self.latest(r)
        if latest:
            data["metrics"] = [self.metric_json(p) for p in latest.values()]
        if r["params"]:
            data["params"] = [{"key": k, "value": v} for k, v in r["params"].items()]
        if r["tags"]:
            data["tags"] = [{"key": k, "value": v} for k, v in r["tags"].items()]
        d = OrderedDict([("info", self.info_json(r)), ("data", data)])
        if inputs:
            d["inputs"] = {}
        return d

    @staticmethod
    def metric_json(p):
        return OrderedDict([("key", p["key"]), ("value", out_value(p["value"])),
                            ("timestamp", p["timestamp"]), ("step", p["step"])])

    # -------------------------------------------------------------- lookups

    def experiment(self, p, name="experiment_id"):
        eid = f_str(p, name, required=True)
        e = self.experiments.get(eid)
        if e is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", "No Experiment with id=%s exists" % eid, 404)
        return e

    def run(self, p):
        rid = f_str(p, "run_id") or f_str(p, "run_uuid")
        if not rid:
            raise missing("run_id")
        r = self.runs.get(rid)
        if r is None:
            raise ApiError("RESOURCE_DOES_NOT_EXIST", "Run with id=%s not found" % rid, 404)
        return r

    def active_run(self, p):
        r = self.run(p)
        if r["lifecycle"] != "active":
            raise not_active("run", r["id"], r["lifecycle"])
        return r

    # -------------------------------------------------------------- experiments

    def experiments_create(self, p):
        name = f_str(p, "name", required=True)
        tags = OrderedDict()
        for t in f_list(p, "tags"):
            check_key("Tag", t.get("key"))
            tags[t["key"]] = check_value("Tag", t["key"], t.get("value"), 5000)
        if any(e["name"] == name for e in self.experiments.values()):
            t = now_ms()
            raise invalid_exists(name, t)
        eid = str(self.next_id)
        self.next_id += 1
        t = now_ms()
        self.experiments[eid] = {"id": eid, "name": name, "lifecycle": "active", "created": t,
                                 "updated": t, "tags": tags}
        return {"experiment_id": eid}

    def experiments_get(self, p):
        return {"experiment": self.exp_json(self.experiment(p))}

    def experiments_get_by_name(self, p):
        name = f_str(p, "experiment_name", required=True)
        for e in self.experiments.values():
            if e["name"] == name:
                return {"experiment": self.exp_json(e)}
        raise ApiError("RESOURCE_DOES_NOT_EXIST",
                       "Could not find experiment with name '%s'" % name, 404)

    def experiments_delete(self, p):
        e = self.experiment(p)
        e["lifecycle"] = "deleted"
        e["updated"] = now_ms()
        for r in self.runs.values():
            if r["experiment_id"] == e["id"]:
                r["lifecycle"] = "deleted"
        return {}

    def experiments_restore(self, p):
        e = self.experiment(p)
        e["lifecycle"] = "active"
        e["updated"] = now_ms()
        return {}

    def experiments_set_tag(self, p):
        e = self.experiment(p)
        key = f_str(p, "key", required=True)
        check_key("Tag", key)
        value = check_value("Tag", key, p.get("value"), 5000)
        if e["lifecycle"] != "active":
            raise not_active("experiment", e["id"], e["lifecycle"])
        e["tags"][key] = value
        return {}

    def experiments_search(self, p, malformed=False):
        n = max_results_of(p, default=0 if malformed else 1000)
        view = f_str(p, "view_type") or "ACTIVE_ONLY"
        stages = {"ACTIVE_ONLY": ("active",), "DELETED_ONLY": ("deleted",),
                  "ALL": ("active", "deleted")}.get(view)
        if stages is None:
            raise bad_value("view_type", view)
        clauses = parse_filter(f_str(p, "filter"), experiments=True)
        order = parse_order_by(f_list(p, "order_by"), True)
        offset = parse_page_token(f_str(p, "page_token"))

        def attr(e, key):
            return {"name": e["name"], "creation_time": e["created"],
                    "last_update_time": e["updated"], "experiment_id": int(e["id"])}.get(key)

        def ok(e):
            for etype, key, op, value in clauses:
                actual = e["tags"].get(key) if etype == "tags" else attr(e, key)
                if not compare(actual, op, value):
                    return False
            return True

        found = [e for e in self.experiments.values() if e["lifecycle"] in stages and ok(e)]
        keys = [((lambda e, t=etype, k=key: e["tags"].get(k) if t == "tags" else attr(e, k)), desc)
                for etype, key, desc in order]
        keys += [((lambda e: e["created"]), True), ((lambda e: int(e["id"])), False)]
        found = sort_by(found, keys)
        page = found[offset:offset + n]
        out = OrderedDict()
        if page:
            out["experiments"] = [self.exp_json(e) for e in page]
        if len(page) == n:
            out["next_page_token"] = page_token(offset + n)
        return out

    # -------------------------------------------------------------- runs

    def runs_create(self, p):
        e = self.experiment(p)
        if e["lifecycle"] != "active":
            raise not_active("experiment", e["id"], e["lifecycle"])
        tags = OrderedDict()
        for t in f_list(p, "tags"):
            check_key("Tag", t.get("key"))
            tags[t["key"]] = check_value("Tag", t["key"], t.get("value"), 5000)
        name = f_str(p, "run_name") or tags.get("mlflow.runName")
        if not name:
            name = "%s-%s-%d" % (random.choice(ADJECTIVES), random.choice(NOUNS),
                                 random.randint(0, 999))
        tags["mlflow.runName"] = name
        rid = self.new_run_id()
        r = {"id": rid, "experiment_id": e["id"], "name": name,
             "user_id": f_str(p, "user_id") or "", "status": "RUNNING",
             "start_time": f_int(p, "start_time", default=0), "end_time": None,
             "lifecycle": "active", "params": OrderedDict(), "tags": tags, "metrics": [],
             "seen": set(), "latest": OrderedDict()}
        self.runs[rid] = r
        return {"run": self.run_json(r, inputs=False)}

    def runs_get(self, p):
        return {"run": self.run_json(self.run(p))}

    def runs_update(self, p):
        r = self.active_run(p)
        status = p.get("status")
        if status in ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"):
            r["status"] = status  # anything else: silently ignored, as MLflow 2.14 does
        end = f_int(p, "end_time")
        if end is not None:
            r["end_time"] = end
        name = f_str(p, "run_name")
        if name:
            r["name"] = name
            r["tags"]["mlflow.runName"] = name
        return {"run_info": self.info_json(r)}

    def runs_delete(self, p):
        self.run(p)["lifecycle"] = "deleted"
        return {}

    def runs_restore(self, p):
        self.run(p)["lifecycle"] = "active"
        return {}

    @staticmethod
    def stored_value(value):
        """What the SQL store writes in metrics.value: 0 for NaN (is_nan set), +/-DBL_MAX for
        +/-Infinity, the number otherwise."""
        if math.isnan(value):
            return 0
        if math.isinf(value):
            return DBL_MAX if value > 0 else -DBL_MAX
        return value

    def primary_key(self, key, value, ts, step):
        """metrics' primary key (key, timestamp, step, run_uuid, value, is_nan), run aside."""
        return (key, ts, step, float(self.stored_value(value)), math.isnan(value))

    def insert_metrics(self, r, points):
        """One INSERT of `points` (and its commit): all or nothing, refused with SQLite's
        UNIQUE error when a row repeats a stored one or another of the same statement."""
        pks = set()
        for key, value, ts, step in points:
            pk = self.primary_key(key, value, ts, step)
            if pk in r["seen"] or pk in pks:
                raise integrity_error(r["id"], points)
            pks.add(pk)
        for key, value, ts, step in points:
            r["seen"].add(self.primary_key(key, value, ts, step))
            point = {"key": key, "value": value, "timestamp": ts, "step": step}
            r["metrics"].append(point)
            best = r["latest"].get(key)
            if best is None or self.rank(point) >= self.rank(best):
                r["latest"][key] = point

    def log_metrics(self, r, points):
        """SqlAlchemyStore._log_metrics of MLflow 2.14, step by step. Exact duplicates within the
        call are dropped first (a Metric set: NaN never equals NaN, so NaN points all stay);
        one INSERT of the rest; when it breaks the primary key, it is rolled back and, for each
        slice of 100 of the points' keys, the run's stored points of those keys are read and
        every point not equal to one of them (NaN never is) is inserted and committed. So a NaN
        point the run already holds, or one sent twice in a call, reaches an INSERT again and
        the call fails with 400 BAD_REQUEST (what an earlier slice committed stays); so does a
        replay whose stored points have keys missing from one of the slices."""
        if not points:
            return
        instances, seen = [], set()
        for key, value, ts, step in points:
            ident = (key, value, ts, step)
            if math.isnan(value) or ident not in seen:
                instances.append((key, value, ts, step))
            if not math.isnan(value):
                seen.add(ident)
        try:
            self.insert_metrics(r, instances)
            return
        except ApiError:
            pass  # rolled back: nothing of this INSERT is stored
        keys = [m[0] for m in instances]
        for i in range(0, len(keys), 100):
            chunk = set(keys[i:i + 100])
            history = {(q["key"], float(self.stored_value(q["value"])), q["timestamp"], q["step"])
                       for q in r["metrics"] if q["key"] in chunk and not math.isnan(q["value"])}
            rest = [m for m in instances if math.isnan(m[1]) or
                    (m[0], float(self.stored_value(m[1])), m[2], m[3]) not in history]
            self.insert_metrics(r, rest)

    def metric_of(self, m):
        check_key("Metric", m.get("key"))
        try:
            value = f_double(m, "value")
        except BareNaN:
            return None
        ts = f_int(m, "timestamp", required=True)
        return m["key"], value, ts, f_int(m, "step", default=0)

    def runs_log_metric(self, p):
        r = self.active_run(p)
        try:
            value = f_double(p, "value")
        except BareNaN:
            self.log_metrics(r, [(f_str(p, "key", required=True), 0.0, 0, 0)])
            return {}
        key = f_str(p, "key", required=True)
        check_key("Metric", key)
        ts = f_int(p, "timestamp", required=True)
        self.log_metrics(r, [(key, value, ts, f_int(p, "step", default=0))])
        return {}

    def check_params(self, r, params):
        changed = [(k, r["params"][k], v) for k, v in params if k in r["params"]
                   and r["params"][k] != v]
        return changed

    def runs_log_parameter(self, p):
        r = self.active_run(p)
        key = f_str(p, "key", required=True)
        check_key("Param", key)
        value = check_value("Param", key, p.get("value"), 6000)
        if key in r["params"] and r["params"][key] != value:
            raise invalid("Changing param values is not allowed. Param with key='%s' was already "
                          "logged with value='%s' for run ID='%s'. Attempted logging new value "
                          "'%s'." % (key, r["params"][key], r["id"], value))
        r["params"][key] = value
        return {}

    def runs_set_tag(self, p):
        r = self.active_run(p)
        key = f_str(p, "key", required=True)
        check_key("Tag", key)
        r["tags"][key] = check_value("Tag", key, p.get("value"), 5000)
        if key == "mlflow.runName":
            r["name"] = r["tags"][key]
        return {}

    def runs_log_batch(self, p):
        metrics, params, tags = f_list(p, "metrics"), f_list(p, "params"), f_list(p, "tags")
        for what, items, limit in (("metrics", metrics, 1000), ("params", params, 100),
                                   ("tags", tags, 100)):
            if len(items) > limit:
                raise invalid("A batch logging request can contain at most %d %s. Got %d %s. "
                              "Please split up %s across multiple requests and try again."
                              % (limit, what, len(items), what, what))
        if len(metrics) + len(params) + len(tags) > 1000:
            raise invalid("A batch logging request can contain at most 1000 total metrics, "
                          "params, and tags. Got %d. Please split up metrics, params, and tags "
                          "across multiple requests and try again."
                          % (len(metrics) + len(params) + len(tags)))
        r = self.active_run(p)
        points = []
        for m in metrics:
            point = self.metric_of(m)
            if point is None:  # a bare NaN: this point becomes 0 at time 0, the rest is lost
                points.append((m.get("key"), 0.0, 0, 0))
                break
            points.append(point)
        plist = []
        for q in params:
            check_key("Param", q.get("key"))
            plist.append((q["key"], check_value("Param", q["key"], q.get("value"), 6000)))
        seen = {}
        for k, v in plist:
            if k in seen and seen[k] != v:
                raise invalid("Duplicate parameter keys have been submitted: ['%s']. Please "
                              "ensure the request contains only one param value per param key."
                              % k)
            seen[k] = v
        changed = self.check_params(r, plist)
        if changed:
            raise invalid("Changing param values is not allowed. Params were already logged='%s' "
                          "for run ID='%s'." % ([{"key": k, "old_value": o, "new_value": n}
                                                for k, o, n in changed], r["id"]))
        tlist = []
        for t in tags:
            check_key("Tag", t.get("key"))
            tlist.append((t["key"], check_value("Tag", t["key"], t.get("value"), 5000)))
        for k, v in plist:  # _log_params commits before the metrics are tried
            r["params"][k] = v
        self.log_metrics(r, points)  # a refusal here leaves the params stored, no tag set
        for k, v in tlist:
            r["tags"][k] = v
            if k == "mlflow.runName":
                r["name"] = v
        return {}

    def runs_search(self, p):
        ids = p.get("experiment_ids")
        if isinstance(ids, str):
            ids = [ids]
        ids = [str(x) for x in (ids or [])]
        n = max_results_of(p)
        view = f_str(p, "run_view_type") or "ACTIVE_ONLY"
        stages = {"ACTIVE_ONLY": ("active",), "DELETED_ONLY": ("deleted",),
                  "ALL": ("active", "deleted")}.get(view)
        if stages is None:
            raise bad_value("run_view_type", view)
        clauses = parse_filter(f_str(p, "filter"))
        order = parse_order_by(f_list(p, "order_by"))
        offset = parse_page_token(f_str(p, "page_token"))

        def value(r, etype, key):
            if etype == "metrics":
                pt = self.latest(r).get(key)
                return None if pt is None else pt["value"]
            if etype == "params":
                return r["params"].get(key)
            if etype == "tags":
                return r["tags"].get(key)
            return {"status": r["status"], "run_name": r["name"], "run_id": r["id"],
                    "user_id": r["user_id"], "start_time": r["start_time"],
                    "end_time": r["end_time"],
                    "artifact_uri": self.info_json(r)["artifact_uri"]}.get(key)

        def ok(r):
            return all(compare(value(r, e, k), op, v) for e, k, op, v in clauses)

        found = [r for r in self.runs.values()
                 if r["experiment_id"] in ids and r["lifecycle"] in stages and ok(r)]
        keys = [((lambda r, e=e, k=k: value(r, e, k)), desc) for e, k, desc in order]
        keys += [((lambda r: r["start_time"]), True), ((lambda r: r["id"]), False)]
        found = sort_by(found, keys)
        page = found[offset:offset + n]
        out = OrderedDict()
        if page:
            out["runs"] = [self.run_json(r) for r in page]
        if len(page) == n:
            out["next_page_token"] = page_token(offset + n)
        return out

    def metrics_get_history(self, p):
        rid = f_str(p, "run_id") or f_str(p, "run_uuid")
        if not rid:
            raise missing("run_id")
        key = f_str(p, "metric_key", required=True)
        # the SQL store only selects metrics by run_uuid and key: a run that does not exist
        # has no points, and the answer is 200 {} as for a key never logged
        r = self.runs.get(rid)
        points = [self.metric_json(q) for q in (r["metrics"] if r else []) if q["key"] == key]
        return {"metrics": points} if points else {}

    def state(self):
        return {
            "experiments": [{"id": e["id"], "name": e["name"], "lifecycle": e["lifecycle"],
                             "tags": e["tags"]} for e in self.experiments.values()],
            "runs": [{"id": r["id"], "experiment_id": r["experiment_id"], "name": r["name"],
                      "status": r["status"], "lifecycle": r["lifecycle"], "tags": r["tags"],
                      "params": r["params"],
                      "metrics": [{"key": q["key"], "value": repr(q["value"]),
                                   "timestamp": q["timestamp"], "step": q["step"]}
                                  for q in r["metrics"]]}
                     for r in self.runs.values()],
        }


def integrity_error(run_id, points):
    """What make_managed_session turns SQLite's IntegrityError into: BAD_REQUEST (HTTP 400),
    the message SQLAlchemy 1.4's text of it (statement and bound parameters included)."""
    rows = [(key, Store.stored_value(value), ts, step, 1 if math.isnan(value) else 0, run_id)
            for key, value, ts, step in points]
    if len(rows) == 1:
        shown = repr(rows[0])
    elif len(rows) <= 10:
        shown = repr(rows)
    else:
        shown = "[%s  ... displaying 10 of %d total bound parameter sets ...  %s]" % (
            ", ".join(repr(x) for x in rows[:8]), len(rows), ", ".join(repr(x) for x in rows[-2:]))
    return ApiError(
        "BAD_REQUEST",
        "(sqlite3.IntegrityError) UNIQUE constraint failed: metrics.key, metrics.timestamp, "
        "metrics.step, metrics.run_uuid, metrics.value, metrics.is_nan\n[SQL: INSERT INTO metrics "
        "(key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)]\n"
        "[parameters: %s]\n(Background on this error at: https://sqlalche.me/e/14/gkpj)" % shown)


def invalid_exists(name, t):
    return ApiError(
        "RESOURCE_ALREADY_EXISTS",
        "Experiment(name=%s) already exists. Error: (raised as a result of Query-invoked "
        "autoflush; consider using a session.no_autoflush block if this flush is occurring "
        "prematurely)\n(sqlite3.IntegrityError) UNIQUE constraint failed: experiments.name\n"
        "[SQL: INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, "
        "last_update_time) VALUES (?, ?, ?, ?, ?)]\n[parameters: ('%s', '', 'active', %d, %d)]\n"
        "(Background on this error at: https://sqlalche.me/e/14/gkpj)" % (name, name, t, t))


GET, POST = ("GET",), ("POST",)
ENDPOINTS = {
    "experiments/create": (POST, Store.experiments_create),
    "experiments/get": (GET, Store.experiments_get),
    "experiments/get-by-name": (GET, Store.experiments_get_by_name),
    "experiments/search": (("GET", "POST"), Store.experiments_search),
    "experiments/delete": (POST, Store.experiments_delete),
    "experiments/restore": (POST, Store.experiments_restore),
    "experiments/set-experiment-tag": (POST, Store.experiments_set_tag),
    "runs/create": (POST, Store.runs_create),
    "runs/get": (GET, Store.runs_get),
    "runs/update": (POST, Store.runs_update),
    "runs/delete": (POST, Store.runs_delete),
    "runs/restore": (POST, Store.runs_restore),
    "runs/log-metric": (POST, Store.runs_log_metric),
    "runs/log-parameter": (POST, Store.runs_log_parameter),
    "runs/set-tag": (POST, Store.runs_set_tag),
    "runs/log-batch": (POST, Store.runs_log_batch),
    "runs/search": (POST, Store.runs_search),
    "metrics/get-history": (GET, Store.metrics_get_history),
}
LIST_PARAMS = {"experiment_ids", "order_by"}


# ------------------------------------------------------------------ HTTP


class App:
    """What outlives one listening socket: the store, the settings, the open connections."""

    def __init__(self, version, auth):
        self.store = Store()
        self.state = faultserver.FaultState()
        self.version = version
        self.auth = auth  # the whole expected Authorization header value, or None
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


class Handler(faultserver.FaultHandler):
    server_version = "gunicorn"
    sys_version = ""

    def setup(self):
        super().setup()
        # headers and body leave in two writes: without this, Nagle and the client's delayed
        # ACK hold every answer back ~40 ms
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
        if path == "/_refuse" and self.command == "POST":
            seconds = float(json.loads(body or b"{}").get("seconds", 1))
            self.send_json(200, {"refusing": seconds})
            self.close_connection = True
            app.refuse(seconds)
            return True
        if path == "/_config" and self.command == "POST":
            cfg = json.loads(body or b"{}")
            if "version" in cfg:
                app.version = str(cfg["version"])
            self.send_json(200, {"version": app.version})
            return True
        if path == "/_forget" and self.command == "POST":  # what `mlflow gc` does to a run
            rid = json.loads(body or b"{}").get("run_id")
            with app.store.lock:
                found = app.store.runs.pop(rid, None) is not None
            self.send_json(200 if found else 404, {"forgotten": found})
            return True
        if path == "/_state" and self.command == "GET":
            with app.store.lock:
                self.send_json(200, app.store.state())
            return True
        return super().control(path, body)

    def apply(self, fault, path, query, body):
        if fault.get("pass"):  # answer as usual: lets a later fault hit a later request
            status, headers, payload = self.route(self.command, path, query, body)
            ctype = headers.pop("Content-Type", "application/json")
            self.send(status, payload.encode() if isinstance(payload, str) else payload, ctype,
                      headers)
            return
        if fault.get("lost"):
            try:
                self.route(self.command, path, query, body)  # the write happens ...
            except Exception:  # noqa: BLE001 (whatever it was, the answer is lost anyway)
                pass
            self.close_connection = True  # ... and its answer never arrives
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        super().apply(fault, path, query, body)

    @staticmethod
    def html(code):
        title, text = PAGES[code]
        return code, {"Content-Type": HTML_TYPE}, HTML.format(code=code, title=title, text=text)

    def route(self, method, path, query, body):
        app = self.server.app
        if path == "/health":
            return 200, {"Content-Type": HTML_TYPE}, "OK"
        if app.auth and self.headers.get("Authorization") != app.auth:
            return 401, {"Content-Type": HTML_TYPE,
                         "WWW-Authenticate": 'Basic realm="mlflow"'}, UNAUTHENTICATED
        if path == "/version":
            if method != "GET":
                return self.html(405)
            return 200, {"Content-Type": HTML_TYPE}, app.version
        name = None
        for prefix in ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/"):
            if path.startswith(prefix):
                name = path[len(prefix):]
        if name not in ENDPOINTS:
            return self.html(404)
        methods, fn = ENDPOINTS[name]
        if method not in methods:
            return self.html(405)
        malformed = False
        if method == "GET":
            q = parse_qs(query, keep_blank_values=True)
            params = {k: (v if k in LIST_PARAMS else v[0]) for k, v in q.items()}
        else:
            if not self.headers.get("Content-Type"):
                return self.error(invalid("Bad Request. Content-Type header is missing."))
            try:
                params = json.loads(body) if body else {}
            except ValueError:
                params, malformed = {}, True  # MLflow reads a malformed body as {}
            if not isinstance(params, dict):
                return self.html(500)
        try:
            with app.store.lock:
                if fn is Store.experiments_search:
                    result = fn(app.store, params, malformed)
                else:
                    result = fn(app.store, params)
        except ApiError as e:
            return self.error(e)
        except Html as e:
            return self.html(e.code)
        except Exception:  # noqa: BLE001 (a Flask view that raises: an HTML 500)
            if self.verbose:
                import traceback
                traceback.print_exc()
            return self.html(500)
        return 200, {}, json.dumps(result, indent=2, allow_nan=False)

    @staticmethod
    def error(e):
        return e.status, {}, json.dumps({"error_code": e.code, "message": e.message})


class Server(faultserver.FaultServer):
    def __init__(self, addr, app):
        self.allow_reuse_address = True
        super().__init__(addr, Handler)
        self.app = app
        self.state = app.state


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    port, ready, max_seconds, idle = 0, None, 300.0, 120.0
    auth, version, with_parent, descending, cleanup = None, "2.14.3", False, False, None
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
            elif a == "--token":
                auth = "Bearer " + args.pop(0)
            elif a == "--basic-auth":
                auth = "Basic " + base64.b64encode(args.pop(0).encode()).decode()
            elif a == "--version":
                version = args.pop(0)
            elif a == "--descending-run-ids":
                descending = True
            elif a == "--cleanup-dir":
                cleanup = args.pop(0)
            elif a == "--exit-with-parent":
                with_parent = True
            elif a == "--verbose":
                Handler.verbose = True
            else:
                raise ValueError(a)
    except (ValueError, IndexError):
        sys.stderr.write("usage: mlflow_fake.py [--port N] [--ready-file F] [--max-seconds S] "
                         "[--idle-timeout S] [--token T | --basic-auth USER:PASS] [--version V] "
                         "[--exit-with-parent] [--descending-run-ids] [--cleanup-dir DIR] "
                         "[--verbose]\n")
        return 2

    app = App(version, auth)
    app.store.descending_ids = descending
    started, parent = time.monotonic(), os.getppid()

    def watchdog():
        while True:
            time.sleep(0.2)
            t = time.monotonic()
            if (t - started > max_seconds or t - app.state.last_activity > idle
                    or (with_parent and os.getppid() != parent)):
                if cleanup:
                    shutil.rmtree(cleanup, ignore_errors=True)
                os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    faultserver.serve_refusable(lambda addr: Server(addr, app), app, port, ready)


if __name__ == "__main__":
    sys.exit(main())
