#!/usr/bin/env python3
"""k8s_fake.py — an in-memory Kubernetes API server (v1.32 shapes) for the serving modules'
tests, Python 3 standard library only. See tests/fakes/README.md for what is faithful and
what is simplified.

Built from /work/shared/contracts/kubernetes-kserve-argo-rayserve.md and the CRDs in
/work/shared/contracts/crds/ (schema validation, pruning with a `Warning: 299` header,
defaulting), checked with kubectl and @kubernetes/client-node (tests/k8s).

Serves:
  /healthz /livez /readyz /version                     (no token needed)
  /api /apis /api/v1 /apis/{g} /apis/{g}/{v}           discovery (APIVersions, APIGroupList,
                                                       APIGroup, APIResourceList); aggregated
                                                       discovery is not offered: its Accept
                                                       gets the plain documents, as kubectl's
                                                       fallback expects
  /openapi/v3, /openapi/v3/{gv}                        the operations and their parameters
                                                       (no schemas): kubectl sees PATCH takes
                                                       fieldValidation and validates server-side
  /openapi/v2                                          an empty document (JSON or protobuf):
                                                       kubectl before 1.25 validates nothing
  namespaces, pods (+ /log, /status), services, apps/v1 deployments (+ /status, /scale),
  autoscaling/v2 horizontalpodautoscalers, batch/v1 jobs, and the CRDs' kinds
  (serving.kserve.io/v1beta1 inferenceservices, argoproj.io/v1alpha1 workflows):
  GET (item, list with labelSelector/fieldSelector/limit/continue, watch, Table), POST, PUT,
  PATCH (merge, json, strategic for built-ins, apply), DELETE (item, collection); dryRun=All;
  fieldValidation=Ignore|Warn|Strict. Bodies are JSON (or YAML), or the protobuf kubectl's
  typed clients send for namespaces, deployments, services and jobs; answers are JSON.

Run:
  k8s_fake.py [--port N] [--ready-file F] [--token T] [--crd FILE]... [--any-namespace]
              [--max-seconds S] [--idle-timeout S] [--exit-with-parent]
              [--tls-cert PEM --tls-key PEM] [--polls N] [--outcome ready|failed|stuck]
              [--verbose]
  --crd defaults to every *.yaml in ../shared/contracts/crds (relative to the repository's
  parent, i.e. /work/shared/contracts/crds) or $LLMOPS_CRD_DIR. Without --token no
  Authorization is asked for. The port is printed as "PORT <n>" and written to --ready-file.

The simulated controller: every object of a kind with a status (deployments, pods, jobs,
horizontalpodautoscalers, inferenceservices, workflows) starts in progress and, after N polls
(GETs of the object itself or of a list holding it; default --polls 2), becomes ready, failed
or stays stuck (--outcome, default ready). Per object, annotations decide:
  fake.llm-ops/outcome: ready|failed|stuck    fake.llm-ops/polls: "N"
  fake.llm-ops/message: "..."                 (the failure message)
and POST /_controller {"namespace","plural","name","outcome","polls","message","url"} scripts
one object (or, without "name", sets the defaults); "url" replaces an InferenceService's
status.url (e.g. this fake's own /_predict/NAME, a model server that answers POSTs with
{"predictions", "path", "echo": the body} and the status the body's "fake_status" asks for). A spec change (a new generation) starts the
rollout again. Pod logs: POST /_logs {"namespace","pod","container","lines":[...]}, or the
annotation fake.llm-ops/logs (lines separated by \\n); otherwise a few generated lines.

Faults (faultserver.py's, plus):
  POST /_faults {"path": P, "responses": [FAULT...]}  FAULT as in faultserver.py; a FAULT with
                 a status and no body answers a Status object of that code (429
                 TooManyRequests, 500 InternalError, 503 ServiceUnavailable, 504 Timeout...)
                 "lost": true   do the request (the write happens), then close without answering
                 "pass": true   answer as usual (to aim a fault at a later request)
  POST /_refuse {"seconds": S}  stop listening (and drop open connections) for S seconds
  GET  /_state                  every stored object, by "group/plural" then "ns/name"
  POST /_config {"table": false} answer the Table Accept with the plain object or list (a
                                server may; kubectl then prints its own columns)
  POST /_store  {object}        put an object as stored (no validation; for test setup)
  GET  /_stats, POST /_reset    as in faultserver.py
"""

import base64
import copy
import glob
import json
import os
import random
import re
import socket
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs, unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import crd_schema  # noqa: E402
import faultserver  # noqa: E402

K8S_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.4",
               "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
               "gitTreeState": "clean", "buildDate": "2025-04-22T16:02:27Z",
               "goVersion": "go1.23.6", "compiler": "gc", "platform": "linux/amd64"}

ANN = "fake.llm-ops/"
OPENAPI_V2_PB = "application/octet-stream"  # what kube-openapi answers to the protobuf Accept
NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's SimpleNameGenerator alphabet
DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MSG_1123_SUB = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character "
                "(e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
MSG_1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
            "with an alphabetic character, and end with an alphanumeric character (e.g. "
            "'my-name',  or 'abc-123', regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')")
MSG_1123_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                  "characters or '-', and must start and end with an alphanumeric character "
                  "(e.g. 'my-name',  or '123-abc', regex used for validation is "
                  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
NAME_COLUMN = {"name": "Name", "type": "string", "format": "name", "priority": 0,
               "description": "Name must be unique within a namespace. Is required when "
               "creating resources, although some resources may allow a client to request the "
               "generation of an appropriate name automatically. Name is primarily intended "
               "for creation idempotence and configuration definition. Cannot be updated. More "
               "info: https://kubernetes.io/docs/concepts/overview/working-with-objects/"
               "names#names"}
AGE_DESC = ("CreationTimestamp is a timestamp representing the server time when this object "
            "was created.")
PATCH_TYPES_CR = ["application/json-patch+json", "application/merge-patch+json",
                  "application/apply-patch+yaml"]
PATCH_TYPES_BUILTIN = PATCH_TYPES_CR[:2] + ["application/strategic-merge-patch+json",
                                            "application/apply-patch+yaml"]
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def now_iso(t=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def parse_iso(s):
    try:
        return time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except (TypeError, ValueError):
        return None


def human_duration(seconds):
    """apimachinery's duration.HumanDuration, as kubectl's AGE column prints it."""
    s = int(max(0, seconds))
    if s < 120:
        return "%ds" % s
    m = s // 60
    if m < 10:
        return "%dm%ds" % (m, s % 60) if s % 60 else "%dm" % m
    if m < 180:
        return "%dm" % m
    h = s // 3600
    if h < 8:
        return "%dh%dm" % (h, m % 60) if m % 60 else "%dh" % h
    if h < 48:
        return "%dh" % h
    if h < 24 * 8:
        return "%dd%dh" % (h // 24, h % 24) if h % 24 else "%dd" % (h // 24)
    if h < 24 * 365 * 2:
        return "%dd" % (h // 24)
    return "%dy" % (h // (24 * 365))


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details, self.headers = details, headers or []

    def status(self):
        s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": self.message, "reason": self.reason}
        if self.details is not None:
            s["details"] = self.details
        s["code"] = self.code
        return s


class PageNotFound(Exception):
    """A path outside every API group: the apiserver's plain '404 page not found'."""


# ------------------------------------------------------------------------------ resource kinds

class Kind:
    def __init__(self, group, version, plural, kind, singular, short=(), namespaced=True,
                 crd=None, status=True, extra_sub=(), categories=(), generation=True):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.singular, self.short, self.namespaced = singular, list(short), namespaced
        self.crd, self.status_sub, self.extra_sub = crd, status, list(extra_sub)
        self.categories, self.generation = list(categories), generation
        self.list_kind = crd.list_kind if crd else kind + "List"

    @property
    def gv(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def qualified(self):  # "inferenceservices.serving.kserve.io", "pods"
        return "%s.%s" % (self.plural, self.group) if self.group else self.plural

    @property
    def kind_qualified(self):  # "InferenceService.serving.kserve.io", "Service"
        return "%s.%s" % (self.kind, self.group) if self.group else self.kind

    def details(self, name, kind=None):
        d = {"name": name}
        if self.group:
            d["group"] = self.group
        d["kind"] = kind or self.plural
        return d

    def not_found(self, name):
        return ApiError(404, "NotFound", '%s "%s" not found' % (self.qualified, name),
                        self.details(name))

    def has_status(self):
        return self.status_sub


def builtin_kinds():
    return [
        Kind("", "v1", "namespaces", "Namespace", "namespace", ["ns"], namespaced=False,
             generation=False),
        Kind("", "v1", "pods", "Pod", "pod", ["po"], extra_sub=["log"], categories=["all"],
             generation=False),
        Kind("", "v1", "services", "Service", "service", ["svc"], categories=["all"],
             generation=False),
        Kind("apps", "v1", "deployments", "Deployment", "deployment", ["deploy"],
             extra_sub=["scale"], categories=["all"]),
        Kind("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
             "horizontalpodautoscaler", ["hpa"], categories=["all"], generation=False),
        Kind("batch", "v1", "jobs", "Job", "job", [], categories=["all"]),
    ]


def crd_kinds(crds):
    out = []
    for crd in crds.values():
        for v in crd.versions:
            out.append(Kind(crd.group, v, crd.plural, crd.kind, crd.singular, crd.short_names,
                            crd.namespaced, crd=crd, status=crd.has_status_subresource(v),
                            categories=crd.categories))
    return out


# ------------------------------------------------------------------------------ patches

def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
              "env": "name", "volumes": "name", "volumeMounts": "mountPath",
              "imagePullSecrets": "name", "conditions": "type", "tolerations": None,
              "ports": None, "envFrom": None, "args": None, "command": None,
              "hostAliases": "ip", "readinessGates": None}
PORT_KEYS = ("containerPort", "port")


def strategic_merge(target, patch, field=None):
    """Strategic merge patch for the built-in kinds' common lists (by merge key), else RFC
    7386; `$patch: delete|replace` and `$retainKeys` are honoured, `$setElementOrder` ignored."""
    if isinstance(patch, dict):
        if patch.get("$patch") == "delete":
            return None
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        out = copy.deepcopy(target) if isinstance(target, dict) else {}
        retain = patch.get("$retainKeys")
        for k, v in patch.items():
            if k.startswith("$setElementOrder/") or k in ("$retainKeys", "$patch"):
                continue
            if k.startswith("$deleteFromPrimitiveList/"):
                name = k.split("/", 1)[1]
                if isinstance(out.get(name), list):
                    out[name] = [x for x in out[name] if x not in v]
                continue
            if v is None:
                out.pop(k, None)
            elif isinstance(v, list) and isinstance(out.get(k), list):
                out[k] = strategic_list(out[k], v, k)
            else:
                merged = strategic_merge(out.get(k), v, k)
                if merged is None:
                    out.pop(k, None)
                else:
                    out[k] = merged
        if isinstance(retain, list):
            out = {k: v for k, v in out.items() if k in retain or k.startswith("$")}
        return out
    return copy.deepcopy(patch)


def strategic_list(old, new, field):
    key = MERGE_KEYS.get(field, "")
    if field == "ports" and new and isinstance(new[0], dict):
        key = next((k for k in PORT_KEYS if k in new[0]), None)
    if not key or not all(isinstance(x, dict) for x in old + new):
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in new):
            return [x for x in new if not (isinstance(x, dict) and "$patch" in x)]
        return copy.deepcopy(new)
    out = copy.deepcopy(old)
    for item in new:
        if item.get("$patch") == "replace":
            return [x for x in new if "$patch" not in x]
        idx = next((i for i, o in enumerate(out) if o.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
        elif idx is None:
            out.append(copy.deepcopy(item))
        else:
            out[idx] = strategic_merge(out[idx], item)
    return out


def _pointer(doc, ptr):
    if ptr == "":
        return None, None
    if not ptr.startswith("/"):
        raise ValueError("invalid JSON pointer %r" % ptr)
    parts = [p.replace("~1", "/").replace("~0", "~") for p in ptr[1:].split("/")]
    cur = doc
    for p in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[int(p)]
        elif isinstance(cur, dict):
            cur = cur[p]
        else:
            raise KeyError(p)
    return cur, parts[-1]


def json_patch(doc, ops):
    """RFC 6902."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise ValueError("a JSON patch is a list of operations")
    for op in ops:
        kind, path = op.get("op"), op.get("path")
        if kind not in ("add", "remove", "replace", "move", "copy", "test") or path is None:
            raise ValueError("invalid operation %s" % json.dumps(op))
        if kind in ("move", "copy"):
            parent, key = _pointer(doc, op["from"])
            src = parent[int(key)] if isinstance(parent, list) else parent[key]
            value = copy.deepcopy(src)
            if kind == "move":
                if isinstance(parent, list):
                    del parent[int(key)]
                else:
                    del parent[key]
            kind = "add"
        else:
            value = op.get("value")
        parent, key = _pointer(doc, path)
        if parent is None:
            if kind == "test":
                if doc != value:
                    raise ValueError("testing value %s failed" % path)
                continue
            doc = copy.deepcopy(value)
            continue
        if kind == "test":
            cur = parent[int(key)] if isinstance(parent, list) else parent.get(key)
            if cur != value:
                raise ValueError("testing value %s failed" % path)
        elif isinstance(parent, list):
            if kind == "add":
                parent.insert(len(parent) if key == "-" else int(key), copy.deepcopy(value))
            elif kind == "remove":
                del parent[int(key)]
            else:
                parent[int(key)] = copy.deepcopy(value)
        else:
            if kind in ("remove", "replace") and key not in parent:
                raise ValueError("%s operation does not apply: doc is missing path: %s"
                                 % (kind, path))
            if kind == "remove":
                del parent[key]
            else:
                parent[key] = copy.deepcopy(value)
    return doc


# ------------------------------------------------------------------------------ protobuf bodies

PROTO_TYPE = "application/vnd.kubernetes.protobuf"
PROTO_MAGIC = b"k8s\x00"


def pb_fields(data):
    """Protocol Buffers wire format: [(field number, wire type, value)]."""
    out, i, n = [], 0, len(data)

    def varint():
        nonlocal i
        shift = v = 0
        while True:
            if i >= n:
                raise ValueError("truncated varint")
            b = data[i]
            i += 1
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")
    while i < n:
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            out.append((num, 0, varint()))
        elif wt == 2:
            ln = varint()
            if i + ln > n:
                raise ValueError("truncated field %d" % num)
            out.append((num, 2, data[i:i + ln]))
            i += ln
        elif wt == 1:
            out.append((num, 1, data[i:i + 8]))
            i += 8
        elif wt == 5:
            out.append((num, 5, data[i:i + 4]))
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
    return out


def pb_object_meta(data):
    md = {}
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for num, wt, v in pb_fields(data):
        if num in strings and wt == 2:
            if v:  # gogo-protobuf writes empty strings too: JSON leaves them out
                md[strings[num]] = v.decode("utf-8")
        elif num in (11, 12) and wt == 2:
            entry = {k: val for k, _, val in pb_fields(v)}
            md.setdefault("labels" if num == 11 else "annotations", {})[
                entry.get(1, b"").decode("utf-8")] = entry.get(2, b"").decode("utf-8")
        elif num == 14 and wt == 2:
            md.setdefault("finalizers", []).append(v.decode("utf-8"))
    return md


# Field numbers of k8s.io/api's generated.proto for what kubectl's typed clients send
# (`kubectl create namespace|deployment|service clusterip|job`); kinds: s string, i integer,
# b bool, m:T message, r:T repeated message, rs repeated string, map string map, qmap map of
# Quantity, ios IntOrString, meta ObjectMeta, time Time. Other fields are skipped.
PB_TYPES = {
    "Namespace": {1: ("metadata", "meta"), 2: ("spec", "m:NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "rs")},
    "Deployment": {1: ("metadata", "meta"), 2: ("spec", "m:DeploymentSpec")},
    "DeploymentSpec": {1: ("replicas", "i"), 2: ("selector", "m:LabelSelector"),
                       3: ("template", "m:PodTemplateSpec"), 4: ("strategy", "m:Strategy"),
                       5: ("minReadySeconds", "i"), 6: ("revisionHistoryLimit", "i"),
                       7: ("paused", "b"), 9: ("progressDeadlineSeconds", "i")},
    "Strategy": {1: ("type", "s")},
    "LabelSelector": {1: ("matchLabels", "map"), 2: ("matchExpressions", "r:Requirement")},
    "Requirement": {1: ("key", "s"), 2: ("operator", "s"), 3: ("values", "rs")},
    "PodTemplateSpec": {1: ("metadata", "meta"), 2: ("spec", "m:PodSpec")},
    "PodSpec": {2: ("containers", "r:Container"), 3: ("restartPolicy", "s"),
                4: ("terminationGracePeriodSeconds", "i"), 6: ("dnsPolicy", "s"),
                7: ("nodeSelector", "map"), 8: ("serviceAccountName", "s"),
                19: ("schedulerName", "s"), 20: ("initContainers", "r:Container")},
    "Container": {1: ("name", "s"), 2: ("image", "s"), 3: ("command", "rs"), 4: ("args", "rs"),
                  5: ("workingDir", "s"), 6: ("ports", "r:ContainerPort"), 7: ("env", "r:EnvVar"),
                  8: ("resources", "m:Resources"), 13: ("terminationMessagePath", "s"),
                  14: ("imagePullPolicy", "s"), 20: ("terminationMessagePolicy", "s")},
    "ContainerPort": {1: ("name", "s"), 2: ("hostPort", "i"), 3: ("containerPort", "i"),
                      4: ("protocol", "s"), 5: ("hostIP", "s")},
    "EnvVar": {1: ("name", "s"), 2: ("value", "s")},
    "Resources": {1: ("limits", "qmap"), 2: ("requests", "qmap")},
    "Service": {1: ("metadata", "meta"), 2: ("spec", "m:ServiceSpec")},
    "ServiceSpec": {1: ("ports", "r:ServicePort"), 2: ("selector", "map"), 3: ("clusterIP", "s"),
                    4: ("type", "s"), 7: ("sessionAffinity", "s"), 10: ("externalName", "s")},
    "ServicePort": {1: ("name", "s"), 2: ("protocol", "s"), 3: ("port", "i"),
                    4: ("targetPort", "ios"), 5: ("nodePort", "i")},
    "Job": {1: ("metadata", "meta"), 2: ("spec", "m:JobSpec")},
    "JobSpec": {1: ("parallelism", "i"), 2: ("completions", "i"),
                3: ("activeDeadlineSeconds", "i"), 4: ("selector", "m:LabelSelector"),
                6: ("template", "m:PodTemplateSpec"), 7: ("backoffLimit", "i"),
                8: ("ttlSecondsAfterFinished", "i")},
}
# pointer fields: an explicit 0 is kept (other zero values are what JSON's omitempty drops)
PB_KEEP_ZERO = {("DeploymentSpec", "replicas"), ("JobSpec", "parallelism"),
                ("JobSpec", "completions"), ("JobSpec", "backoffLimit"),
                ("PodSpec", "terminationGracePeriodSeconds")}
PB_KINDS = {("", "namespaces"): "Namespace", ("apps", "deployments"): "Deployment",
            ("", "services"): "Service", ("batch", "jobs"): "Job"}


def _pb_map(data_list, quantity=False):
    out = {}
    for entry in data_list:
        kv = {n: v for n, _, v in pb_fields(entry)}
        val = kv.get(2, b"")
        if quantity:
            val = {n: v for n, _, v in pb_fields(val)}.get(1, b"")
        out[kv.get(1, b"").decode("utf-8")] = val.decode("utf-8")
    return out


def pb_message(data, tname):
    table = PB_TYPES[tname]
    out, maps = {}, {}
    for num, wt, v in pb_fields(data):
        if num not in table:
            continue
        name, kind = table[num]
        if kind == "s":
            if v:
                out[name] = v.decode("utf-8")
        elif kind == "i":
            if v or (tname, name) in PB_KEEP_ZERO:
                out[name] = v - (1 << 64) if v >= 1 << 63 else v
        elif kind == "b":
            if v:
                out[name] = True
        elif kind == "rs":
            out.setdefault(name, []).append(v.decode("utf-8"))
        elif kind in ("map", "qmap"):
            maps.setdefault((name, kind), []).append(v)
        elif kind == "meta":
            out[name] = pb_object_meta(v)
        elif kind == "ios":
            f = {n: val for n, _, val in pb_fields(v)}
            out[name] = f.get(3, b"").decode("utf-8") if f.get(1) == 1 else f.get(2, 0)
        elif kind.startswith("m:"):
            out[name] = pb_message(v, kind[2:])
        elif kind.startswith("r:"):
            out.setdefault(name, []).append(pb_message(v, kind[2:]))
    for (name, kind), entries in maps.items():
        out[name] = _pb_map(entries, kind == "qmap")
    return out


def decode_protobuf(body, kind):
    """The Kubernetes protobuf envelope (magic, runtime.Unknown {typeMeta, raw}) around the
    object kubectl's typed clients send, for Namespaces, Deployments, Services and Jobs (the
    fields in PB_TYPES; status is ignored, as on create). Anything else raises ValueError."""
    if not body.startswith(PROTO_MAGIC):
        raise ValueError("missing the k8s protobuf magic prefix")
    unknown = {num: v for num, _, v in pb_fields(body[len(PROTO_MAGIC):])}
    tm = {num: v.decode("utf-8") for num, _, v in pb_fields(unknown.get(1, b""))}
    api_version, kname = tm.get(1, ""), tm.get(2, "")
    if PB_KINDS.get((kind.group, kind.plural)) != kname:
        raise ValueError("protobuf bodies of kind %r are not decoded by this fake" % kname)
    obj = {"apiVersion": api_version, "kind": kname}
    obj.update(pb_message(unknown.get(2, b""), kname))
    obj.setdefault("metadata", {})
    return obj


# ------------------------------------------------------------------------------ selectors

def parse_label_selector(text):
    """[(key, op, values)]: op in = != in notin exists !exists."""
    reqs = []
    text = (text or "").strip()
    if not text:
        return reqs
    parts, depth, cur = [], 0, ""
    for c in text:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    for p in parts:
        p = p.strip()
        m = re.match(r"^([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)$", p)
        if m:
            reqs.append((m.group(1), m.group(2),
                         [v.strip() for v in m.group(3).split(",") if v.strip()]))
            continue
        m = re.match(r"^([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)$", p)
        if m:
            reqs.append((m.group(1), "!=" if m.group(2) == "!=" else "=", [m.group(3)]))
            continue
        m = re.match(r"^(!?)\s*([A-Za-z0-9_./-]+)$", p)
        if m:
            reqs.append((m.group(2), "!exists" if m.group(1) else "exists", []))
            continue
        raise ApiError(400, "BadRequest", "unable to parse requirement: found '%s', expected: "
                       "identifier" % p)
    return reqs


def labels_match(labels, reqs):
    labels = labels or {}
    for key, op, vals in reqs:
        has = key in labels
        v = labels.get(key)
        if op == "=" and not (has and v == vals[0]):
            return False
        if op == "!=" and has and v == vals[0]:
            return False
        if op == "in" and not (has and v in vals):
            return False
        if op == "notin" and has and v in vals:
            return False
        if op == "exists" and not has:
            return False
        if op == "!exists" and has:
            return False
    return True


def parse_field_selector(text, kind):
    out = []
    for p in [x.strip() for x in (text or "").split(",") if x.strip()]:
        m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$", p)
        if not m:
            raise ApiError(400, "BadRequest", "invalid selector: '%s'; can't understand '%s'"
                           % (text, p))
        field = m.group(1)
        allowed = ["metadata.name", "metadata.namespace"]
        if kind.plural == "pods":
            allowed += ["status.phase", "spec.nodeName", "spec.restartPolicy"]
        if kind.plural == "namespaces":
            allowed += ["status.phase"]
        if field not in allowed:
            raise ApiError(400, "BadRequest", 'field label not supported: %s' % field)
        out.append((field, m.group(2) != "!=", m.group(3)))
    return out


def fields_match(obj, reqs):
    for field, eq, value in reqs:
        cur = obj
        for part in field.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if ((cur or "") == value) != eq:
            return False
    return True


# ------------------------------------------------------------------- JSONPath (printer columns)

def jsonpath(obj, path):
    """The subset of JSONPath CRD printer columns use: .a.b, [n], [*], [?(@.k=='v')]."""
    cur = [obj]
    tokens = re.findall(r"\.([A-Za-z0-9_\-]+)|\[\?\(@\.([A-Za-z0-9_.]+)\s*==\s*([^)]*)\)\]|"
                        r"\[(\d+|\*)\]", path)
    for field, fkey, fval, idx in tokens:
        nxt = []
        for c in cur:
            if field:
                if isinstance(c, dict) and field in c:
                    nxt.append(c[field])
            elif fkey:
                want = fval.strip()
                if want[:1] in ("'", '"'):
                    want = want[1:-1]
                elif want in ("true", "false"):
                    want = want == "true"
                else:
                    try:
                        want = int(want)
                    except ValueError:
                        pass
                for item in c if isinstance(c, list) else []:
                    v = item
                    for part in fkey.split("."):
                        v = v.get(part) if isinstance(v, dict) else None
                    if v == want:
                        nxt.append(item)
            elif idx == "*":
                nxt.extend(c if isinstance(c, list) else [])
            elif isinstance(c, list) and int(idx) < len(c):
                nxt.append(c[int(idx)])
        cur = nxt
    return cur


# ------------------------------------------------------------------------------ the store

class Store:
    def __init__(self, kinds, any_namespace=False):
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.kinds = kinds
        self.objects = {}  # (group, plural) -> {(ns, name): obj}
        self.rv = 1000
        self.events = []  # (rv, (group, plural), type, obj)
        self.any_namespace = any_namespace
        self.script = {}  # (plural, ns, name) -> {"outcome","polls","message"}
        self.defaults = {"outcome": "ready", "polls": 2, "message": None}
        self.polls = {}  # uid -> polls seen for the current generation
        self.logs = {}  # (ns, pod, container) -> [lines]
        self.next_ip = 10
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.put_raw(self.kind_of("", "namespaces"), {
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

    def kind_of(self, group, plural):
        for k in self.kinds:
            if k.group == group and k.plural == plural:
                return k
        return None

    def bucket(self, kind):
        return self.objects.setdefault((kind.group, kind.plural), {})

    def bump(self):
        self.rv += 1
        return str(self.rv)

    def event(self, kind, etype, obj):
        self.events.append((self.rv, (kind.group, kind.plural), etype, copy.deepcopy(obj)))
        if len(self.events) > 5000:
            del self.events[:1000]
        with self.cond:
            self.cond.notify_all()

    def put_raw(self, kind, obj):
        md = obj.setdefault("metadata", {})
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp", now_iso())
        md["resourceVersion"] = self.bump()
        ns = md.get("namespace", "") if kind.namespaced else ""
        existed = (ns, md["name"]) in self.bucket(kind)
        self.bucket(kind)[(ns, md["name"])] = obj
        self.event(kind, "MODIFIED" if existed else "ADDED", obj)
        return obj

    def namespace_exists(self, ns):
        if self.any_namespace:
            return True
        nsk = self.kind_of("", "namespaces")
        return ("", ns) in self.bucket(nsk)

    def state(self):
        out = {}
        for (group, plural), objs in self.objects.items():
            out["%s/%s" % (group, plural) if group else plural] = {
                ("%s/%s" % k if k[0] else k[1]): v for k, v in objs.items()}
        return out


# ------------------------------------------------------- built-in kinds: defaults, validation

def _image_pull_policy(image):
    last = (image or "").rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def default_pod_spec(spec):
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or []:
            if not isinstance(c, dict):
                continue
            c.setdefault("resources", {})
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("imagePullPolicy", _image_pull_policy(c.get("image")))
            for p in c.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")


def validate_pod_spec(spec, path, errs, job=False):
    if not isinstance(spec, dict):
        errs.append(("FieldValueRequired", path, "Required value"))
        return
    containers = spec.get("containers")
    if not containers:
        errs.append(("FieldValueRequired", path + ".containers", "Required value"))
    names = []
    for n, c in enumerate(containers or []):
        cp = "%s.containers[%d]" % (path, n)
        if not isinstance(c, dict):
            errs.append(("FieldValueTypeInvalid", cp, "Invalid value: must be an object"))
            continue
        name = c.get("name")
        if not name:
            errs.append(("FieldValueRequired", cp + ".name", "Required value"))
        elif not DNS1123_LABEL.match(name) or len(name) > 63:
            errs.append(("FieldValueInvalid", cp + ".name",
                         "Invalid value: %s: %s" % (crd_schema.go_quote(name), MSG_1123_LABEL)))
        elif name in names:
            errs.append(("FieldValueDuplicate", cp + ".name",
                         "Duplicate value: %s" % crd_schema.go_quote(name)))
        names.append(name)
        if not c.get("image"):
            errs.append(("FieldValueRequired", cp + ".image", "Required value"))
        for k, p in enumerate(c.get("ports") or []):
            port = p.get("containerPort") if isinstance(p, dict) else None
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                errs.append(("FieldValueInvalid" if port is not None else "FieldValueRequired",
                             "%s.ports[%d].containerPort" % (cp, k),
                             "Invalid value: %s: must be between 1 and 65535, inclusive"
                             % crd_schema.go_quote(port) if port is not None
                             else "Required value"))
    rp = spec.get("restartPolicy")
    if job and rp not in ("OnFailure", "Never"):
        if rp in (None, "Always"):
            errs.append(("FieldValueRequired", path + ".restartPolicy",
                         'Required value: valid values: "OnFailure", "Never"'))
        else:
            errs.append(("FieldValueNotSupported", path + ".restartPolicy",
                         'Unsupported value: %s: supported values: "OnFailure", "Never"'
                         % crd_schema.go_quote(rp)))
    elif rp not in (None, "Always", "OnFailure", "Never"):
        errs.append(("FieldValueNotSupported", path + ".restartPolicy",
                     'Unsupported value: %s: supported values: "Always", "OnFailure", "Never"'
                     % crd_schema.go_quote(rp)))


def selector_matches(sel, labels):
    if not isinstance(sel, dict):
        return False
    for k, v in (sel.get("matchLabels") or {}).items():
        if (labels or {}).get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        key, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        has = key in (labels or {})
        v = (labels or {}).get(key)
        if ((op == "In" and not (has and v in vals)) or (op == "NotIn" and has and v in vals)
                or (op == "Exists" and not has) or (op == "DoesNotExist" and has)):
            return False
    return True


def go_map(m):
    return "map[string]string{%s}" % ", ".join(
        '"%s":"%s"' % (k, v) for k, v in sorted((m or {}).items()))


class Builtins:
    """What the built-in kinds' REST strategies do on create and update."""

    def __init__(self, store):
        self.store = store

    def prepare_create(self, kind, obj):
        spec = obj.setdefault("spec", {}) if kind.plural != "namespaces" else obj.get("spec")
        md = obj["metadata"]
        if kind.plural == "namespaces":
            fins = obj.setdefault("spec", {}).setdefault("finalizers", [])
            if "kubernetes" not in fins:
                fins.append("kubernetes")
            obj["status"] = {"phase": "Active"}
            md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
        elif kind.plural == "pods":
            default_pod_spec(spec)
            spec.setdefault("enableServiceLinks", True)
            spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
            spec.setdefault("priority", 0)
            spec.setdefault("serviceAccountName", "default")
            spec.setdefault("tolerations", [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300}])
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        elif kind.plural == "services":
            spec.setdefault("type", "ClusterIP")
            if spec.get("clusterIP") != "None":
                with self.store.lock:
                    self.store.next_ip += 1
                    ip = "10.96.%d.%d" % (self.store.next_ip // 250, self.store.next_ip % 250 + 1)
                spec.setdefault("clusterIP", ip)
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("sessionAffinity", "None")
            spec.setdefault("internalTrafficPolicy", "Cluster")
            for p in spec.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
                    if "port" in p:
                        p.setdefault("targetPort", p["port"])
            obj["status"] = {"loadBalancer": {}}
        elif kind.plural == "deployments":
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {
                "maxUnavailable": "25%", "maxSurge": "25%"}})
            tmpl = spec.get("template")
            if isinstance(tmpl, dict):
                tmpl.setdefault("metadata", {}).setdefault("creationTimestamp", None)
                default_pod_spec(tmpl.setdefault("spec", {}))
            obj["status"] = {}
        elif kind.plural == "jobs":
            spec.setdefault("parallelism", 1)
            spec.setdefault("completions", 1)
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("completionMode", "NonIndexed")
            spec.setdefault("suspend", False)
            spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
            spec.setdefault("manualSelector", None)
            if spec.get("manualSelector") is None:
                spec.pop("manualSelector")
                uid = md["uid"]
                spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
                tmpl = spec.setdefault("template", {})
                if isinstance(tmpl, dict):
                    labels = tmpl.setdefault("metadata", {}).setdefault("labels", {})
                    labels.update({"batch.kubernetes.io/controller-uid": uid,
                                   "batch.kubernetes.io/job-name": md["name"],
                                   "controller-uid": uid, "job-name": md["name"]})
            tmpl = spec.get("template")
            if isinstance(tmpl, dict):
                tmpl.setdefault("metadata", {}).setdefault("creationTimestamp", None)
                default_pod_spec(tmpl.setdefault("spec", {}))
            obj["status"] = {}
        elif kind.plural == "horizontalpodautoscalers":
            spec.setdefault("minReplicas", 1)
            if not spec.get("metrics"):
                spec["metrics"] = [{"type": "Resource", "resource": {
                    "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
            obj["status"] = {"currentReplicas": 0, "desiredReplicas": 0}

    def validate(self, kind, obj, old=None):
        errs = []
        spec = obj.get("spec")
        p = kind.plural
        if p == "services":
            if not isinstance(spec, dict):
                spec = {}
            ports = spec.get("ports")
            if not ports and spec.get("clusterIP") != "None" and spec.get("type") != \
                    "ExternalName":
                errs.append(("FieldValueRequired", "spec.ports", "Required value"))
            for n, port in enumerate(ports or []):
                v = port.get("port") if isinstance(port, dict) else None
                if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 65535:
                    errs.append(("FieldValueInvalid" if v is not None else "FieldValueRequired",
                                 "spec.ports[%d].port" % n,
                                 ("Invalid value: %s: must be between 1 and 65535, inclusive"
                                  % crd_schema.go_quote(v)) if v is not None
                                 else "Required value"))
                if len(ports) > 1 and isinstance(port, dict) and not port.get("name"):
                    errs.append(("FieldValueRequired", "spec.ports[%d].name" % n,
                                 "Required value"))
            t = spec.get("type")
            if t not in (None, "ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
                errs.append(("FieldValueNotSupported", "spec.type",
                             'Unsupported value: %s: supported values: "ClusterIP", '
                             '"ExternalName", "LoadBalancer", "NodePort"'
                             % crd_schema.go_quote(t)))
            if old is not None and old["spec"].get("clusterIP") and \
                    spec.get("clusterIP") not in (None, "", old["spec"]["clusterIP"]):
                errs.append(("FieldValueInvalid", "spec.clusterIPs[0]",
                             "Invalid value: []string{%s}: may not change once set"
                             % crd_schema.go_quote(spec.get("clusterIP"))))
        elif p == "pods":
            validate_pod_spec(spec, "spec", errs)
            if old is not None:
                a = copy.deepcopy(old.get("spec") or {})
                b = copy.deepcopy(spec or {})
                for c in a.get("containers") or []:
                    c.pop("image", None)
                for c in b.get("containers") or []:
                    c.pop("image", None)
                a.pop("activeDeadlineSeconds", None)
                b.pop("activeDeadlineSeconds", None)
                if a != b:
                    errs.append(("FieldValueForbidden", "spec",
                                 "Forbidden: pod updates may not change fields other than "
                                 "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                                 "`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
                                 "additions to existing tolerations),"
                                 "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 "
                                 "if it was previously negative)"))
        elif p in ("deployments", "jobs"):
            if not isinstance(spec, dict):
                spec = {}
            sel = spec.get("selector")
            tmpl = spec.get("template")
            if p == "deployments" and not sel:
                errs.append(("FieldValueRequired", "spec.selector", "Required value"))
            if not isinstance(tmpl, dict):
                errs.append(("FieldValueRequired", "spec.template", "Required value"))
            else:
                labels = (tmpl.get("metadata") or {}).get("labels") or {}
                if sel and not (sel.get("matchLabels") or sel.get("matchExpressions")):
                    errs.append(("FieldValueInvalid", "spec.selector",
                                 "Invalid value: v1.LabelSelector{MatchLabels:map[string]string"
                                 "(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: "
                                 "empty selector is invalid for deployment"))
                elif sel and not selector_matches(sel, labels):
                    errs.append(("FieldValueInvalid", "spec.template.metadata.labels",
                                 "Invalid value: %s: `selector` does not match template `labels`"
                                 % go_map(labels)))
                validate_pod_spec(tmpl.get("spec"), "spec.template.spec", errs, job=p == "jobs")
            r = spec.get("replicas")
            if r is not None and (not isinstance(r, int) or isinstance(r, bool) or r < 0):
                errs.append(("FieldValueInvalid", "spec.replicas",
                             "Invalid value: %s: must be greater than or equal to 0"
                             % crd_schema.go_quote(r)))
            if old is not None and old.get("spec", {}).get("selector") != spec.get("selector"):
                errs.append(("FieldValueInvalid", "spec.selector",
                             "Invalid value: %s: field is immutable"
                             % json.dumps(spec.get("selector"), separators=(",", ":"))))
            if p == "jobs" and old is not None:
                a, b = old.get("spec", {}).get("template"), spec.get("template")
                if a != b:
                    errs.append(("FieldValueInvalid", "spec.template",
                                 "Invalid value: %s: field is immutable"
                                 % json.dumps(b, separators=(",", ":"))))
        elif p == "horizontalpodautoscalers":
            if not isinstance(spec, dict):
                spec = {}
            ref = spec.get("scaleTargetRef") or {}
            if not ref.get("kind"):
                errs.append(("FieldValueRequired", "spec.scaleTargetRef.kind", "Required value"))
            if not ref.get("name"):
                errs.append(("FieldValueRequired", "spec.scaleTargetRef.name", "Required value"))
            mx, mn = spec.get("maxReplicas"), spec.get("minReplicas", 1)
            if mx is None:
                errs.append(("FieldValueRequired", "spec.maxReplicas", "Required value"))
            elif not isinstance(mx, int) or isinstance(mx, bool) or mx < 1:
                errs.append(("FieldValueInvalid", "spec.maxReplicas",
                             "Invalid value: %s: must be greater than or equal to 1"
                             % crd_schema.go_quote(mx)))
            elif isinstance(mn, int) and mn > mx:
                errs.append(("FieldValueInvalid", "spec.maxReplicas",
                             "Invalid value: %d: must be greater than or equal to `minReplicas`"
                             % mx))
        return errs


# ----------------------------------------------------------------------- the simulated controller

class Controller:
    """Moves objects to their outcome after N polls; writes the statuses the real controllers
    (kube-controller-manager, kubelet, KServe, Argo) write."""

    def __init__(self, store):
        self.store = store

    def plan(self, kind, obj):
        md = obj["metadata"]
        ann = md.get("annotations") or {}
        st = self.store
        s = dict(st.defaults)
        s.update(st.script.get((kind.plural, md.get("namespace", ""), md["name"]), {}))
        if ANN + "outcome" in ann:
            s["outcome"] = ann[ANN + "outcome"]
        if ANN + "polls" in ann:
            try:
                s["polls"] = int(ann[ANN + "polls"])
            except ValueError:
                pass
        if ANN + "message" in ann:
            s["message"] = ann[ANN + "message"]
        return s

    def managed(self, kind):
        return kind.plural in ("deployments", "pods", "jobs", "horizontalpodautoscalers",
                               "inferenceservices", "workflows")

    def start(self, kind, obj):
        """On create and on a new generation: the in-progress status."""
        if not self.managed(kind):
            return
        self.store.polls[obj["metadata"]["uid"]] = 0
        self.write(kind, obj, "progress")

    def workflow_update(self, kind, old, new):
        """Argo does not restart a workflow on a spec change; spec.shutdown stops it."""
        shutdown = (new.get("spec") or {}).get("shutdown")
        phase = (new.get("status") or {}).get("phase")
        if shutdown in ("Stop", "Terminate") and phase not in ("Succeeded", "Failed", "Error") \
                and shutdown != (old.get("spec") or {}).get("shutdown"):
            self.store.polls.pop(new["metadata"]["uid"], None)
            st = self.status_workflows(new, "failed", "Stopped with strategy '%s'" % shutdown)
            for nd in (st.get("nodes") or {}).values():
                if nd.get("phase") == "Succeeded" and nd["type"] == "Pod":
                    continue
                nd["phase"] = "Failed"
                nd["message"] = "Stopped with strategy '%s'" % shutdown
            new["status"] = st
            new["metadata"]["generation"] = new["metadata"].get("generation", 1) + 1

    def poll(self, kind, obj):
        """A GET saw the object: count it; at the N-th, write the outcome. Returns True when
        the object changed."""
        if not self.managed(kind) or obj["metadata"].get("deletionTimestamp"):
            return False
        uid = obj["metadata"]["uid"]
        st = self.store
        n = st.polls.get(uid)
        if n is None:
            return False
        plan = self.plan(kind, obj)
        n += 1
        st.polls[uid] = n
        if n < plan["polls"] or plan["outcome"] == "stuck":
            if n == 1 and kind.plural == "workflows":
                self.write(kind, obj, "running")
                return True
            return False
        del st.polls[uid]
        self.write(kind, obj, "failed" if plan["outcome"] == "failed" else "ready",
                   plan.get("message"))
        return True

    def write(self, kind, obj, phase, message=None):
        fn = getattr(self, "status_" + kind.plural.replace("horizontalpodautoscalers", "hpa"))
        status = fn(obj, phase, message)
        obj["status"] = status
        if phase != "progress":
            st = self.store
            if kind.crd is not None and not kind.status_sub:
                # no status subresource: the controller's update bumps the generation
                obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
            obj["metadata"]["resourceVersion"] = st.bump()
            st.event(kind, "MODIFIED", obj)

    @staticmethod
    def cond(ctype, status, reason=None, message=None, t=None, knative=False, **extra):
        c = {"type": ctype, "status": status}
        if not knative:
            c["lastTransitionTime"] = t or now_iso()
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        if knative:
            c["lastTransitionTime"] = t or now_iso()
        c.update(extra)
        return c

    def status_deployments(self, obj, phase, message):
        spec, md = obj.get("spec") or {}, obj["metadata"]
        n = spec.get("replicas", 1)
        t = now_iso()
        gen = md.get("generation", 1)
        rs = "%s-%s" % (md["name"], "".join(random.choice(NAME_CHARS) for _ in range(10)))
        if phase == "progress":
            return {"observedGeneration": gen, "replicas": n, "updatedReplicas": n,
                    "unavailableReplicas": n, "conditions": [
                        self.cond("Available", "False", "MinimumReplicasUnavailable",
                                  "Deployment does not have minimum availability.", t,
                                  lastUpdateTime=t),
                        self.cond("Progressing", "True", "ReplicaSetUpdated",
                                  'ReplicaSet "%s" is progressing.' % rs, t, lastUpdateTime=t)]}
        if phase == "failed":
            return {"observedGeneration": gen, "replicas": n, "updatedReplicas": n,
                    "unavailableReplicas": n, "conditions": [
                        self.cond("Available", "False", "MinimumReplicasUnavailable",
                                  "Deployment does not have minimum availability.", t,
                                  lastUpdateTime=t),
                        self.cond("Progressing", "False", "ProgressDeadlineExceeded",
                                  message or 'ReplicaSet "%s" has timed out progressing.' % rs,
                                  t, lastUpdateTime=t)]}
        return {"observedGeneration": gen, "replicas": n, "updatedReplicas": n,
                "readyReplicas": n, "availableReplicas": n, "conditions": [
                    self.cond("Available", "True", "MinimumReplicasAvailable",
                              "Deployment has minimum availability.", t, lastUpdateTime=t),
                    self.cond("Progressing", "True", "NewReplicaSetAvailable",
                              'ReplicaSet "%s" has successfully progressed.' % rs, t,
                              lastUpdateTime=t)]}

    def status_pods(self, obj, phase, message):
        spec = obj.get("spec") or {}
        t = now_iso()
        names = [c.get("name") for c in spec.get("containers") or []]
        base = {"hostIP": "10.0.0.2", "hostIPs": [{"ip": "10.0.0.2"}], "podIP": "10.244.0.%d"
                % random.randint(2, 250), "qosClass": "BestEffort", "startTime": t}
        base["podIPs"] = [{"ip": base["podIP"]}]

        def cstat(name, state, ready):
            c = next((c for c in spec.get("containers") or [] if c.get("name") == name), {})
            return {"name": name, "image": c.get("image", ""), "imageID": "", "ready": ready,
                    "restartCount": 0, "started": ready, "state": state}
        if phase == "progress":
            return dict(base, phase="Pending", conditions=[
                self.cond("PodScheduled", "True", t=t)], containerStatuses=[
                cstat(n, {"waiting": {"reason": "ContainerCreating"}}, False) for n in names])
        if phase == "failed":
            return dict(base, phase="Failed", conditions=[
                self.cond("Ready", "False", "PodFailed", t=t),
                self.cond("PodScheduled", "True", t=t)], containerStatuses=[
                cstat(n, {"terminated": {"exitCode": 1, "reason": "Error",
                                         "message": message or "exit status 1",
                                         "startedAt": t, "finishedAt": t}}, False)
                for n in names])
        return dict(base, phase="Running", conditions=[
            self.cond("Initialized", "True", t=t), self.cond("Ready", "True", t=t),
            self.cond("ContainersReady", "True", t=t), self.cond("PodScheduled", "True", t=t)],
            containerStatuses=[cstat(n, {"running": {"startedAt": t}}, True) for n in names])

    def status_jobs(self, obj, phase, message):
        t = now_iso()
        start = (obj.get("status") or {}).get("startTime", t)
        if phase == "progress":
            return {"active": 1, "ready": 0, "startTime": start, "terminating": 0,
                    "uncountedTerminatedPods": {}}
        if phase == "failed":
            return {"failed": (obj.get("spec") or {}).get("backoffLimit", 6) + 1, "ready": 0,
                    "startTime": start, "terminating": 0, "uncountedTerminatedPods": {},
                    "conditions": [
                        self.cond("FailureTarget", "True", "BackoffLimitExceeded",
                                  message or "Job has reached the specified backoff limit", t,
                                  lastProbeTime=t),
                        self.cond("Failed", "True", "BackoffLimitExceeded",
                                  message or "Job has reached the specified backoff limit", t,
                                  lastProbeTime=t)]}
        return {"succeeded": (obj.get("spec") or {}).get("completions", 1), "ready": 0,
                "startTime": start, "completionTime": t, "terminating": 0,
                "uncountedTerminatedPods": {}, "conditions": [
                    self.cond("SuccessCriteriaMet", "True", "CompletionsReached",
                              "Reached expected number of succeeded pods", t, lastProbeTime=t),
                    self.cond("Complete", "True", "CompletionsReached",
                              "Reached expected number of succeeded pods", t, lastProbeTime=t)]}

    def status_hpa(self, obj, phase, message):
        spec = obj.get("spec") or {}
        n = spec.get("minReplicas", 1)
        t = now_iso()
        if phase == "progress":
            return {"currentReplicas": 0, "desiredReplicas": 0}
        ok = phase == "ready"
        return {"currentReplicas": n, "desiredReplicas": n, "lastScaleTime": t,
                "currentMetrics": [{"type": "Resource", "resource": {
                    "name": "cpu", "current": {"averageUtilization": 10,
                                               "averageValue": "10m"}}}] if ok else None,
                "conditions": [
                    self.cond("AbleToScale", "True", "ReadyForNewScale",
                              "recommended size matches current size", t),
                    self.cond("ScalingActive", "True" if ok else "False",
                              "ValidMetricFound" if ok else "FailedGetResourceMetric",
                              "the HPA was able to successfully calculate a replica count from "
                              "cpu resource utilization (percentage of request)" if ok else
                              (message or "the HPA was unable to compute the replica count: "
                               "failed to get cpu utilization"), t)]}

    def status_inferenceservices(self, obj, phase, message):
        md, spec = obj["metadata"], obj.get("spec") or {}
        ns, name = md.get("namespace", "default"), md["name"]
        ann = md.get("annotations") or {}
        mode = ann.get("serving.kserve.io/deploymentMode", "Serverless")
        gen = md.get("generation", 1)
        t = now_iso()
        old = obj.get("status") or {}
        pred_old = (old.get("components") or {}).get("predictor") or {}
        rev = "%s-predictor-%05d" % (name, gen)
        prev = pred_old.get("latestReadyRevision")
        st = {"deploymentMode": mode, "observedGeneration": gen}
        kn = dict(knative=True)
        if phase == "progress":
            st["conditions"] = [
                self.cond("IngressReady", "Unknown", **kn) if mode == "Serverless" else None,
                self.cond("PredictorReady", "Unknown", "RevisionMissing",
                          "Configuration \"%s-predictor\" is waiting for a Revision to become "
                          "ready." % name, **kn),
                self.cond("Ready", "Unknown", "RevisionMissing",
                          "Configuration \"%s-predictor\" is waiting for a Revision to become "
                          "ready." % name, **kn)]
            st["conditions"] = [c for c in st["conditions"] if c]
            st["modelStatus"] = {"transitionStatus": "InProgress", "states": {
                "activeModelState": "Loaded" if prev else "Pending",
                "targetModelState": "Pending"}}
            if pred_old:
                st["components"] = {"predictor": dict(pred_old, latestCreatedRevision=rev)}
            for k in ("url", "address"):
                if k in old:
                    st[k] = old[k]
            return st
        if mode == "Serverless":
            url = "http://%s.%s.example.com" % (name, ns)
            internal = "http://%s.%s.svc.cluster.local" % (name, ns)
        else:
            url = "http://%s-%s.example.com" % (name, ns)
            internal = "http://%s-predictor.%s.svc.cluster.local" % (name, ns)
        url = self.store.script.get(("inferenceservices", ns, name), {}).get("url") or url
        if phase == "failed":
            msg = message or ("Revision \"%s\" failed with message: Container failed with: "
                              "ModelLoadError: model not found." % rev)
            st["conditions"] = [
                self.cond("IngressReady", "False", "PredictorRouteNotReady", **kn)
                if mode == "Serverless" else None,
                self.cond("LatestDeploymentReady", "False", "RevisionFailed", msg, **kn),
                self.cond("PredictorConfigurationReady", "False", "RevisionFailed", msg, **kn)
                if mode == "Serverless" else None,
                self.cond("PredictorReady", "False", "RevisionFailed", msg, **kn),
                self.cond("Ready", "False", "RevisionFailed", msg, **kn)]
            st["conditions"] = [c for c in st["conditions"] if c]
            st["modelStatus"] = {"transitionStatus": "BlockedByFailedLoad",
                                 "states": {"activeModelState": "Loaded" if prev else "",
                                            "targetModelState": "FailedToLoad"},
                                 "lastFailureInfo": {"reason": "ModelLoadFailed",
                                                     "message": msg, "exitCode": 1},
                                 "copies": {"failedCopies": 1, "totalCopies": 0}}
            if pred_old:
                st["components"] = {"predictor": dict(pred_old, latestCreatedRevision=rev)}
            if prev:
                st["url"] = url
                st["address"] = {"url": internal}
            return st
        conds = ["IngressReady", "LatestDeploymentReady", "PredictorConfigurationReady",
                 "PredictorReady", "PredictorRouteReady", "Ready", "RoutesReady"]
        if mode != "Serverless":
            conds = ["IngressReady", "PredictorReady", "Ready"]
        st["conditions"] = [self.cond(c, "True", t=t, **kn) for c in conds]
        st["url"] = url
        st["address"] = {"url": internal}
        pred = {"url": "http://%s-predictor.%s.example.com" % (name, ns)
                if mode == "Serverless" else "http://%s-predictor-%s.example.com" % (name, ns)}
        if mode == "Serverless":
            pct = (spec.get("predictor") or {}).get("canaryTrafficPercent", 100)
            pred.update({"address": {"url": "http://%s-predictor.%s.svc.cluster.local"
                                     % (name, ns)},
                         "latestCreatedRevision": rev, "latestReadyRevision": rev,
                         "latestRolledoutRevision": rev if pct >= 100 or not prev else prev})
            if prev and prev != rev and pct < 100:
                pred["previousRolledoutRevision"] = prev
                pred["traffic"] = [
                    {"latestRevision": True, "percent": pct, "revisionName": rev,
                     "tag": "latest", "url": "http://latest-%s-predictor.%s.example.com"
                     % (name, ns)},
                    {"latestRevision": False, "percent": 100 - pct, "revisionName": prev,
                     "tag": "prev", "url": "http://prev-%s-predictor.%s.example.com"
                     % (name, ns)}]
            else:
                if prev and prev != rev:
                    pred["previousRolledoutRevision"] = prev
                pred["traffic"] = [{"latestRevision": True, "percent": 100,
                                    "revisionName": rev}]
        st["components"] = {"predictor": pred}
        st["modelStatus"] = {"transitionStatus": "UpToDate", "states": {
            "activeModelState": "Loaded", "targetModelState": "Loaded"},
            "copies": {"failedCopies": 0, "totalCopies": 1}}
        return st

    def status_workflows(self, obj, phase, message):
        md, spec = obj["metadata"], obj.get("spec") or {}
        name = md["name"]
        t = now_iso()
        old = obj.get("status") or {}
        if phase == "progress":
            return {}
        started = old.get("startedAt") or t
        entry = spec.get("entrypoint", "main")
        templates = [tp.get("name") for tp in spec.get("templates") or []
                     if isinstance(tp, dict) and ("container" in tp or "script" in tp)]
        templates = templates or [entry]
        nodes = {name: {"id": name, "name": name, "displayName": name, "type": "DAG",
                        "templateName": entry, "phase": "Running", "startedAt": started,
                        "finishedAt": None, "progress": "0/%d" % len(templates),
                        "children": []}}
        for i, tn in enumerate(templates):
            nid = "%s-%d" % (name, 1000000000 + i * 7919)
            pod_name = "%s-%s-%d" % (name, tn, 1000000000 + i * 7919)
            nodes[nid] = {"id": nid, "name": "%s.%s" % (name, tn), "displayName": tn,
                          "type": "Pod", "templateName": tn, "phase": "Pending",
                          "boundaryID": name, "startedAt": started, "finishedAt": None,
                          "progress": "0/1", "hostNodeName": "node-1",
                          "podName": pod_name}
            nodes[name]["children"].append(nid)
        st = {"phase": "Running", "startedAt": started, "finishedAt": None,
              "progress": "0/%d" % len(templates), "nodes": nodes,
              "conditions": [{"type": "PodRunning", "status": "True"}]}
        if phase == "running":
            first = nodes[nodes[name]["children"][0]]
            first["phase"] = "Running"
            return st
        ok = phase == "ready"
        n = len(templates)
        for i, nid in enumerate(nodes[name]["children"]):
            nd = nodes[nid]
            last = i == n - 1
            nd["phase"] = "Succeeded" if ok or not last else "Failed"
            nd["finishedAt"] = t
            nd["progress"] = "1/1" if nd["phase"] == "Succeeded" else "0/1"
            nd["outputs"] = {"exitCode": "0" if nd["phase"] == "Succeeded" else "1"}
            if nd["phase"] == "Failed":
                nd["message"] = message or "Error (exit code 1)"
        done = n if ok else n - 1
        nodes[name].update(phase="Succeeded" if ok else "Failed", finishedAt=t,
                           progress="%d/%d" % (done, n))
        st.update(phase="Succeeded" if ok else "Failed", finishedAt=t,
                  progress="%d/%d" % (done, n),
                  conditions=[{"type": "PodRunning", "status": "False"},
                              {"type": "Completed", "status": "True"}])
        if not ok:
            st["message"] = message or "child '%s' failed" % nodes[name]["children"][-1]
        return st


# ------------------------------------------------------------------------------ the API

def b64(d):
    return base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).decode() \
        .rstrip("=")


def unb64(s):
    s += "=" * (-len(s) % 4)
    return json.loads(base64.urlsafe_b64decode(s.encode()))


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class Api:
    def __init__(self, crds, token=None, any_namespace=False):
        self.crds = crds
        self.kinds = builtin_kinds() + crd_kinds(crds)
        self.store = Store(self.kinds, any_namespace)
        self.builtins = Builtins(self.store)
        self.controller = Controller(self.store)
        self.token = token
        self.table = True  # answer Accept: ...;as=Table with a Table (False: the plain object)
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

    # ------------------------------------------------------------------ discovery

    def groups(self):
        out = {}
        for k in self.kinds:
            if k.group:
                out.setdefault(k.group, [])
                if k.version not in out[k.group]:
                    out[k.group].append(k.version)
        return out

    @staticmethod
    def group_doc(name, versions):
        vs = [{"groupVersion": "%s/%s" % (name, v), "version": v} for v in versions]
        return {"name": name, "versions": vs, "preferredVersion": vs[0]}

    def resource_list(self, group, version):
        kinds = [k for k in self.kinds if k.group == group and k.version == version]
        if not kinds:
            return None
        res = []
        for k in kinds:
            r = {"name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
                 "kind": k.kind, "verbs": list(VERBS)}
            if k.short:
                r["shortNames"] = k.short
            if k.categories:
                r["categories"] = k.categories
            r["storageVersionHash"] = base64.b64encode(
                ("%s/%s/%s" % (k.group, k.version, k.kind)).encode())[:11].decode()
            res.append(r)
            if k.status_sub:
                res.append({"name": k.plural + "/status", "singularName": "",
                            "namespaced": k.namespaced, "kind": k.kind,
                            "verbs": ["get", "patch", "update"]})
            for sub in k.extra_sub:
                if sub == "log":
                    res.append({"name": k.plural + "/log", "singularName": "",
                                "namespaced": True, "kind": k.kind, "verbs": ["get"]})
                elif sub == "scale":
                    res.append({"name": k.plural + "/scale", "singularName": "",
                                "namespaced": True, "group": "autoscaling", "version": "v1",
                                "kind": "Scale", "verbs": ["get", "patch", "update"]})
        doc = {"kind": "APIResourceList", "groupVersion": "%s/%s" % (group, version)
               if group else version, "resources": res}
        if group:
            doc = {"kind": "APIResourceList", "apiVersion": "v1",
                   "groupVersion": doc["groupVersion"], "resources": res}
        return doc

    def openapi_v3(self, rest):
        """/openapi/v3 (the root: one entry per group-version) and /openapi/v3/{gv path}: a
        document with each resource's operations and their query parameters, no schemas.
        kubectl reads it to see that PATCH takes fieldValidation (server-side validation)."""
        gvs = {}
        for k in self.kinds:
            gvs.setdefault(("apis/%s/%s" % (k.group, k.version)) if k.group else "api/v1",
                           []).append(k)
        if not rest:
            return {"paths": {p: {"serverRelativeURL": "/openapi/v3/%s?hash=%s" % (
                p, base64.b16encode(p.encode()).decode()[:32])} for p in sorted(gvs)}}
        kinds = gvs.get("/".join(rest))
        if kinds is None:
            return None

        def param(name, where="query", required=False):
            p = {"name": name, "in": where, "schema": {"type": "string", "uniqueItems": True}}
            if required:
                p["required"] = True
            return p
        paths = {}
        for k in kinds:
            gvk = {"group": k.group, "version": k.version, "kind": k.kind}
            base = "/" + "/".join(rest)
            coll = base + ("/namespaces/{namespace}/" if k.namespaced else "/") + k.plural
            item = coll + "/{name}"
            write = [param("dryRun"), param("fieldManager"), param("fieldValidation")]
            paths[coll] = {
                "get": {"operationId": "list" + k.kind, "x-kubernetes-action": "list",
                        "x-kubernetes-group-version-kind": gvk,
                        "parameters": [param(x) for x in (
                            "labelSelector", "fieldSelector", "limit", "continue",
                            "resourceVersion", "timeoutSeconds", "watch")]},
                "post": {"operationId": "create" + k.kind, "x-kubernetes-action": "post",
                         "x-kubernetes-group-version-kind": gvk, "parameters": write},
                "delete": {"operationId": "deletecollection" + k.kind,
                           "x-kubernetes-action": "deletecollection",
                           "x-kubernetes-group-version-kind": gvk,
                           "parameters": [param("labelSelector"), param("dryRun")]},
                "parameters": ([param("namespace", "path", True)] if k.namespaced else [])
                + [param("pretty")]}
            paths[item] = {
                "get": {"operationId": "read" + k.kind, "x-kubernetes-action": "get",
                        "x-kubernetes-group-version-kind": gvk, "parameters": []},
                "put": {"operationId": "replace" + k.kind, "x-kubernetes-action": "put",
                        "x-kubernetes-group-version-kind": gvk, "parameters": write},
                "patch": {"operationId": "patch" + k.kind, "x-kubernetes-action": "patch",
                          "x-kubernetes-group-version-kind": gvk,
                          "parameters": write + [param("force")]},
                "delete": {"operationId": "delete" + k.kind, "x-kubernetes-action": "delete",
                           "x-kubernetes-group-version-kind": gvk,
                           "parameters": [param("dryRun"), param("propagationPolicy")]},
                "parameters": [param("name", "path", True)]
                + ([param("namespace", "path", True)] if k.namespaced else [])}
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version":
                                             K8S_VERSION["gitVersion"]},
                "paths": paths, "components": {"schemas": {}}}

    def discovery(self, path, host):
        parts = [p for p in path.split("/") if p]
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}
        if parts == ["apis"]:
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                self.group_doc(g, vs) for g, vs in self.groups().items()]}
        if len(parts) == 2 and parts[0] == "api":
            return self.resource_list("", parts[1])
        if len(parts) == 2 and parts[0] == "apis":
            vs = self.groups().get(parts[1])
            if vs:
                return dict({"kind": "APIGroup", "apiVersion": "v1"},
                            **self.group_doc(parts[1], vs))
            return None
        if len(parts) == 3 and parts[0] == "apis":
            return self.resource_list(parts[1], parts[2])
        return None


def _ct(headers):
    return (headers.get("Content-Type") or "").split(";")[0].strip().lower()


class Handler(faultserver.FaultHandler):
    server_version = ""
    sys_version = ""

    def version_string(self):
        return ""

    def send_response(self, code, message=None):
        # a real apiserver sends no Server header
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.api.lock:
            self.server.api.conns.add(self.connection)

    def finish(self):
        with self.server.api.lock:
            self.server.api.conns.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    # ------------------------------------------------------------------ plumbing

    def send_list(self, status, payload, ctype, headers):
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in headers:
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)

    def do_any(self):
        st = self.server.state
        st.touch()
        path, _, query = self.path.partition("?")
        body = self.read_body()
        if path.startswith("/_"):
            if self.control(path, body):
                return
        fault = st.record(path, self.command, self.headers)
        if fault is not None:
            self.apply(fault, path, query, body)
            return
        self.answer(path, query, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_any

    def answer(self, path, query, body):
        result = self.route(self.command, path, query, body)
        if result is None:  # a watch: already streamed
            return
        status, headers, payload = result
        ctype = "application/json"
        hs = []
        for k, v in headers:
            if k == "Content-Type":
                ctype = v
            else:
                hs.append((k, v))
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload, separators=(",", ":")) + "\n"
        if isinstance(payload, str):
            payload = payload.encode()
        self.send_list(status, payload, ctype, hs)

    def control(self, path, body):
        api = self.server.api
        st = api.store
        try:
            spec = json.loads(body) if body else {}
        except ValueError as e:
            self.send_json(400, {"error": "bad control body: %s" % e})
            return True
        if path == "/_refuse" and self.command == "POST":
            seconds = float(spec.get("seconds", 1))
            self.send_json(200, {"refusing": seconds})
            self.close_connection = True
            api.refuse(seconds)
            return True
        if path == "/_controller" and self.command == "POST":
            keys = {k: spec[k] for k in ("outcome", "polls", "message", "url") if k in spec}
            if "outcome" in keys and keys["outcome"] not in ("ready", "failed", "stuck"):
                self.send_json(400, {"error": "outcome is ready, failed or stuck"})
                return True
            with st.lock:
                if spec.get("name"):
                    key = (spec.get("plural", ""), spec.get("namespace", "default"),
                           spec["name"])
                    st.script.setdefault(key, {}).update(keys)
                else:
                    st.defaults.update(keys)
            self.send_json(200, {"defaults": st.defaults})
            return True
        if path.startswith("/_predict/") and self.command == "POST":
            # a model server behind a scripted url: the request back, the status it asks for
            status = spec.get("fake_status", 200) if isinstance(spec, dict) else 200
            self.send_json(status, {"predictions": [len(body or b"")], "path": path,
                                    "echo": spec})
            return True
        if path == "/_logs" and self.command == "POST":
            with st.lock:
                st.logs[(spec.get("namespace", "default"), spec["pod"],
                         spec.get("container", ""))] = list(spec.get("lines") or [])
            self.send_json(200, {"lines": len(spec.get("lines") or [])})
            return True
        if path == "/_state" and self.command == "GET":
            with st.lock:
                self.send_json(200, st.state())
            return True
        if path == "/_config" and self.command == "POST":
            if "table" in spec:
                api.table = bool(spec["table"])
            self.send_json(200, {"table": api.table})
            return True
        if path == "/_store" and self.command == "POST":
            gv = spec.get("apiVersion", "")
            group = gv.split("/")[0] if "/" in gv else ""
            kind = next((k for k in api.kinds if k.group == group and k.kind == spec.get("kind")),
                        None)
            if kind is None:
                self.send_json(400, {"error": "unknown kind"})
                return True
            with st.lock:
                obj = st.put_raw(kind, spec)
            self.send_json(200, obj)
            return True
        return super().control(path, body)

    def apply(self, fault, path, query, body):
        if fault.get("pass"):
            if fault.get("delay_ms"):
                time.sleep(fault["delay_ms"] / 1000.0)
            self.answer(path, query, body)
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
        if "status" in fault and not any(k in fault for k in ("body", "html", "body_bytes",
                                                                "drop")):
            code = int(fault["status"])
            reason, message = {
                429: ("TooManyRequests", "Too many requests, please try again later."),
                500: ("InternalError", "Internal error occurred: etcdserver: request timed "
                      "out"),
                502: ("InternalError", "Internal error occurred: bad gateway"),
                503: ("ServiceUnavailable", "the server is currently unable to handle the "
                      "request"),
                504: ("Timeout", "Timeout: request did not complete within requested timeout "
                      "- context deadline exceeded"),
                401: ("Unauthorized", "Unauthorized"),
                403: ("Forbidden", "forbidden"),
                409: ("Conflict", "the object has been modified"),
            }.get(code, ("InternalError", "fault injected"))
            fault = dict(fault)
            details = {"retryAfterSeconds": int(fault["retry_after"])} \
                if "retry_after" in fault else None
            fault["body"] = ApiError(code, reason, message, details).status()
        super().apply(fault, path, query, body)

    # ------------------------------------------------------------------ routing

    def route(self, method, path, query, body):
        api = self.server.api
        q = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        hdrs = [("Audit-Id", str(uuid.uuid4())), ("Cache-Control", "no-cache, private")]
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, hdrs + [("Content-Type", "text/plain; charset=utf-8"),
                                ("X-Content-Type-Options", "nosniff")], "ok"
        if path == "/version" and method == "GET":
            return 200, hdrs, K8S_VERSION
        if api.token is not None:
            auth = self.headers.get("Authorization", "")
            if auth != "Bearer " + api.token:
                return 401, hdrs, ApiError(401, "Unauthorized", "Unauthorized").status()
        try:
            try:
                return self.dispatch(method, path, q, body, hdrs)
            except ApiError as e:
                return e.code, hdrs + e.headers, e.status()
        except PageNotFound:
            return 404, hdrs + [("Content-Type", "text/plain; charset=utf-8"),
                                ("X-Content-Type-Options", "nosniff")], "404 page not found\n"
        except Exception as e:  # noqa: BLE001 (a bug in the fake: say so as a 500 Status)
            if self.verbose:
                import traceback
                traceback.print_exc()
            return 500, hdrs, ApiError(500, "InternalError",
                                       "Internal error occurred: %s" % e).status()

    def dispatch(self, method, path, q, body, hdrs):
        api = self.server.api
        parts = [unquote(p) for p in path.split("/") if p]
        if not parts or parts[0] not in ("api", "apis"):
            if parts[:2] == ["openapi", "v3"] and method in ("GET", "HEAD"):
                doc = api.openapi_v3(parts[2:])
                if doc is None:
                    raise PageNotFound()
                return 200, hdrs, doc
            if parts == ["openapi", "v2"] and method in ("GET", "HEAD"):
                return self.openapi_v2(hdrs)
            if parts and parts[0] == "openapi":
                raise PageNotFound()
            if not parts:
                return 200, hdrs, {"paths": ["/api", "/api/v1", "/apis", "/healthz",
                                             "/livez", "/readyz", "/version"]
                                   + ["/apis/" + g for g in api.groups()]}
            raise PageNotFound()
        if parts[0] == "api":
            if len(parts) < 2:
                return self.disco(method, path, hdrs)
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) < 3:
                return self.disco(method, path, hdrs)
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            return self.disco(method, path, hdrs)
        if not any(k.group == group and k.version == version for k in api.kinds):
            raise PageNotFound()
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        kind = next((k for k in api.kinds if k.group == group and k.version == version
                     and k.plural == plural), None)
        if kind is None or (ns is not None and not kind.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        if kind.namespaced and ns is None and name is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        if sub is not None and not ((sub == "status" and kind.status_sub)
                                    or sub in kind.extra_sub):
            raise ApiError(404, "NotFound", "the server could not find the requested resource",
                           {})
        if kind.namespaced and ns is None:
            ns = ""  # every namespace (lists only)
        if not kind.namespaced:
            ns = ""
        r = Request(self, api, kind, ns, name, sub, q, body, hdrs)
        return r.run(method)

    def openapi_v2(self, hdrs):
        """/openapi/v2 without definitions: older kubectl (before v1.25, e.g. Debian's 1.20)
        validates client-side with it and skips the kinds it has no schema for. client-go asks
        for protobuf (gnostic's openapi_v2.Document: swagger = 1, info = 2 {title 1,
        version 2}); others get the JSON document."""
        accept = self.headers.get("Accept", "")
        title, version = b"Kubernetes", K8S_VERSION["gitVersion"].encode()
        if "protobuf" in accept:
            info = b"\x0a" + bytes([len(title)]) + title + b"\x12" + bytes([len(version)]) \
                + version
            doc = b"\x0a\x032.0" + b"\x12" + bytes([len(info)]) + info
            return 200, hdrs + [("Content-Type", OPENAPI_V2_PB)], doc
        return 200, hdrs, {"swagger": "2.0", "info": {"title": "Kubernetes",
                                                      "version": K8S_VERSION["gitVersion"]},
                           "paths": {}, "definitions": {}}

    def disco(self, method, path, hdrs):
        if method not in ("GET", "HEAD"):
            raise ApiError(405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource",
                           {})
        host = self.headers.get("Host", "127.0.0.1")
        doc = self.server.api.discovery(path, host)
        if doc is None:
            raise PageNotFound()
        # Aggregated discovery (Accept: ...;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList)
        # is not offered: the plain document with Content-Type application/json is the answer
        # kubectl and client-go fall back on.
        return 200, hdrs, doc


class Request:
    """One request on a resource path."""

    def __init__(self, h, api, kind, ns, name, sub, q, body, hdrs):
        self.h, self.api, self.kind, self.ns, self.name, self.sub = h, api, kind, ns, name, sub
        self.q, self.body, self.hdrs = q, body, hdrs
        self.st = api.store
        self.warnings = []
        self.dry = q.get("dryRun") == "All"
        if "dryRun" in q and q["dryRun"] != "All":
            raise ApiError(400, "BadRequest", 'unsupported dry run option %r' % q["dryRun"])
        fv = q.get("fieldValidation", "Warn")
        if fv not in ("Ignore", "Warn", "Strict"):
            raise ApiError(400, "BadRequest", "fieldValidation parameter unsupported: %s" % fv)
        self.fv = fv

    def headers(self):
        return self.hdrs + [("Warning", '299 - %s' % json.dumps(w)) for w in self.warnings]

    def run(self, method):
        sub = self.sub
        if method in ("GET", "HEAD"):
            if self.name is None:
                if self.q.get("watch") in ("1", "true"):
                    return self.watch()
                return self.list()
            if sub == "log":
                return self.log()
            if sub == "scale":
                return 200, self.headers(), self.scale_of(self.get_obj())
            return self.get()
        if method == "POST":
            if self.name is not None:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method "
                               "on the requested resource", {})
            return self.create()
        if method in ("PUT", "PATCH") and sub == "scale":
            return self.scale_update(method)
        if method == "PUT" and self.name is not None and sub != "log":
            return self.update(self.parse_body(), sub)
        if method == "PATCH" and self.name is not None and sub != "log":
            return self.patch()
        if method == "DELETE" and sub is None:
            if self.name is None:
                return self.delete_collection()
            return self.delete()
        raise ApiError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource", {})

    # ------------------------------------------------------------------ helpers

    def parse_body(self):
        ct = _ct(self.h.headers)
        if ct == PROTO_TYPE and self.kind.crd is None:
            try:
                return decode_protobuf(self.body, self.kind)
            except ValueError as e:
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an "
                               "unknown format - accepted media types include: "
                               "application/json, application/yaml (%s)" % e)
        if ct not in ("", "application/json", "application/yaml", "*/*") and \
                self.h.command in ("POST", "PUT"):
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media "
                           "types include: application/json, application/yaml, "
                           "application/vnd.kubernetes.protobuf, application/cbor")
        try:
            text = self.body.decode("utf-8")
            if ct == "application/yaml" and not text.lstrip().startswith("{"):
                docs = crd_schema.load_yaml(text)
                obj = docs[0] if docs else None
            else:
                obj = json.loads(text)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be of "
                           "type %s): couldn't get version/kind; json parse error: %s"
                           % (self.kind.kind, e))
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be of "
                           "type %s): couldn't get version/kind; json parse error: json: cannot "
                           "unmarshal %s into Go value of type struct { APIVersion string "
                           "\"json:\\\"apiVersion,omitempty\\\"\"; Kind string "
                           "\"json:\\\"kind,omitempty\\\"\" }"
                           % (self.kind.kind, crd_schema._type_of(obj)))
        return obj

    def check_kind(self, obj):
        k = self.kind
        if k.crd is None:
            # a built-in kind's decoder takes the kind and version from the URL when the body
            # leaves them out; the unstructured decoder of custom resources does not
            obj.setdefault("apiVersion", k.gv)
            obj.setdefault("kind", k.kind)
        if "apiVersion" not in obj or "kind" not in obj:
            missing = "Kind" if "kind" not in obj else "Version"
            raise ApiError(400, "BadRequest", "Object '%s' is missing in '%s'"
                           % (missing, json.dumps(obj, separators=(",", ":"))[:200]))
        if obj.get("apiVersion") != k.gv or obj.get("kind") != k.kind:
            raise ApiError(400, "BadRequest",
                           "the API version in the data (%s) does not match the expected API "
                           "version (%s)" % (obj.get("apiVersion"), k.gv)
                           if obj.get("apiVersion") != k.gv else
                           "%s in version \"%s\" cannot be handled as a %s: no kind \"%s\" is "
                           "registered for version \"%s\" in scheme"
                           % (obj.get("kind"), k.version, k.kind, obj.get("kind"), k.gv))
        if not isinstance(obj.get("metadata", {}), dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")

    def key(self, name=None):
        return (self.ns if self.kind.namespaced else "", name or self.name)

    def get_obj(self, name=None):
        obj = self.st.bucket(self.kind).get(self.key(name))
        if obj is None:
            raise self.kind.not_found(name or self.name)
        return obj

    def invalid(self, name, errs):
        k = self.kind
        if not errs:
            return
        causes = [{"reason": r, "message": m, "field": f} for r, f, m in errs]
        parts = ["%s: %s" % (f, m) for r, f, m in errs]
        msg = parts[0] if len(parts) == 1 else "[%s]" % ", ".join(parts)
        details = k.details(name, kind=k.kind)
        details["causes"] = causes
        raise ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (k.kind_qualified, name, msg),
                       details)

    def validate_meta(self, obj, create):
        md = obj.setdefault("metadata", {})
        errs = []
        name = md.get("name")
        if create and not name and md.get("generateName"):
            gen = md["generateName"]
            name = gen[:58] + "".join(random.choice(NAME_CHARS) for _ in range(5))
            md["name"] = name
        if not name:
            errs.append(("FieldValueRequired", "metadata.name",
                         "Required value: name or generateName is required"))
        else:
            if self.kind.plural in ("services", "namespaces"):
                if not DNS1035.match(name) if self.kind.plural == "services" \
                        else not DNS1123_LABEL.match(name):
                    errs.append(("FieldValueInvalid", "metadata.name", "Invalid value: %s: %s" % (
                        crd_schema.go_quote(name), MSG_1035 if self.kind.plural == "services"
                        else MSG_1123_LABEL)))
                elif len(name) > 63:
                    errs.append(("FieldValueInvalid", "metadata.name",
                                 "Invalid value: %s: must be no more than 63 characters"
                                 % crd_schema.go_quote(name)))
            elif not DNS1123_SUB.match(name):
                errs.append(("FieldValueInvalid", "metadata.name", "Invalid value: %s: %s"
                             % (crd_schema.go_quote(name), MSG_1123_SUB)))
            elif len(name) > 253:
                errs.append(("FieldValueInvalid", "metadata.name",
                             "Invalid value: %s: must be no more than 253 characters"
                             % crd_schema.go_quote(name)))
        for field in ("labels", "annotations"):
            m = md.get(field)
            if m is None:
                continue
            if not isinstance(m, dict) or not all(isinstance(v, str) for v in m.values()):
                raise ApiError(400, "BadRequest", "json: cannot unmarshal into Go struct field "
                               "ObjectMeta.metadata.%s of type map[string]string" % field)
            if field == "labels":
                for lk, lv in m.items():
                    if not re.match(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]"
                                    r"([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$", lk):
                        errs.append(("FieldValueInvalid", "metadata.labels",
                                     "Invalid value: %s: name part must consist of alphanumeric "
                                     "characters, '-', '_' or '.', and must start and end with "
                                     "an alphanumeric character" % crd_schema.go_quote(lk)))
                    elif lv and not re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$",
                                             lv):
                        errs.append(("FieldValueInvalid", "metadata.labels",
                                     "Invalid value: %s: a valid label must be an empty string "
                                     "or consist of alphanumeric characters, '-', '_' or '.', "
                                     "and must start and end with an alphanumeric character"
                                     % crd_schema.go_quote(lv)))
        return name, errs

    def prepare(self, obj):
        """Pruning, defaulting, schema validation of a custom resource; built-ins' checks.
        Returns the errors."""
        k = self.kind
        if k.crd is None:
            return []
        dropped = k.crd.prune(obj, k.version)
        if dropped:
            if self.fv == "Strict":
                raise ApiError(400, "BadRequest", "strict decoding error: %s" % ", ".join(
                    'unknown field "%s"' % d for d in dropped))
            if self.fv == "Warn":
                self.warnings.extend('unknown field "%s"' % d for d in dropped)
        k.crd.default(obj, k.version)
        errs = k.crd.validate(obj, k.version)
        schema = k.crd.schema(k.version)
        if any(r == "FieldValueRequired" and "." not in f for r, f, m in errs) and \
                schema.get("properties", {}).get("spec", {}).get(
                    "x-kubernetes-preserve-unknown-fields"):
            # apiextensions: a root-level failure leaves the rest unchecked, reported with a
            # field-less cause (observed for a Workflow without spec)
            errs.append(("FieldValueInvalid", "<nil>",
                         'Invalid value: "null": some validation rules were not checked '
                         'because the object was invalid; correct the existing errors to '
                         'complete validation'))
        return errs

    def spec_part(self, obj):
        """What a generation bump compares."""
        k = self.kind
        if k.crd is not None:
            skip = ("metadata", "status") if k.status_sub else ("metadata",)
            return {x: v for x, v in obj.items() if x not in skip}
        return obj.get("spec")

    @staticmethod
    def out(obj):
        return copy.deepcopy(obj)

    # ------------------------------------------------------------------ verbs

    def get(self):
        with self.st.lock:
            obj = self.get_obj()
            self.api.controller.poll(self.kind, obj)
            o = self.out(obj)
        if self.table_wanted():
            return 200, self.headers(), self.table([o], {"resourceVersion":
                                                         o["metadata"]["resourceVersion"]})
        return 200, self.headers(), o

    def table_wanted(self):
        if not self.api.table:
            return False
        accept = self.h.headers.get("Accept", "")
        return any("as=Table" in a and "g=meta.k8s.io" in a and "v=v1" in a.replace(
            "v=v1beta1", "") for a in accept.split(","))

    def list(self):
        k = self.kind
        labels = parse_label_selector(self.q.get("labelSelector"))
        fields = parse_field_selector(self.q.get("fieldSelector"), k)
        limit = self.q.get("limit")
        try:
            limit = int(limit) if limit not in (None, "") else 0
        except ValueError:
            raise ApiError(400, "BadRequest", 'strconv.ParseInt: parsing "%s": invalid syntax'
                           % limit)
        start, rv = "", None
        if self.q.get("continue"):
            try:
                tok = unb64(self.q["continue"])
                start, rv = tok["start"], tok["rv"]
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "continue key is not valid: incorrect encoded "
                               "start resourceVersion (version meta.k8s.io/v1)")
        with self.st.lock:
            items = []
            for (ns, name), obj in sorted(self.st.bucket(k).items()):
                if self.ns and ns != self.ns:
                    continue
                if start and "%s/%s" % (ns, name) <= start:
                    continue
                if not labels_match(obj["metadata"].get("labels"), labels) or \
                        not fields_match(obj, fields):
                    continue
                items.append(obj)
            more = None
            if limit > 0 and len(items) > limit:
                last = items[limit - 1]["metadata"]
                more = len(items) - limit
                items = items[:limit]
            for obj in items:
                self.api.controller.poll(k, obj)
            items = [self.out(o) for o in items]
            meta = {"resourceVersion": str(rv or self.st.rv)}
            if more:
                meta["continue"] = b64({"v": "meta.k8s.io/v1", "rv": int(meta["resourceVersion"]),
                                        "start": "%s/%s" % (last.get("namespace", ""),
                                                            last["name"])})
                meta["remainingItemCount"] = more
        if self.table_wanted():
            return 200, self.headers(), self.table(items, meta)
        for o in items:
            o.setdefault("apiVersion", k.gv)
            o.setdefault("kind", k.kind)
        return 200, self.headers(), {"apiVersion": k.gv, "items": items, "kind": k.list_kind,
                                     "metadata": meta}

    def watch(self):
        """A stream of newline-delimited watch events (chunked) until timeoutSeconds (at most
        30 s in this fake) or the client goes away."""
        k, st, h = self.kind, self.st, self.h
        labels = parse_label_selector(self.q.get("labelSelector"))
        fields = parse_field_selector(self.q.get("fieldSelector"), k)
        try:
            timeout = min(float(self.q.get("timeoutSeconds") or 30), 30.0)
        except ValueError:
            timeout = 30.0
        rv = self.q.get("resourceVersion")

        def ok(obj):
            md = obj["metadata"]
            return ((not self.ns or md.get("namespace") == self.ns)
                    and labels_match(md.get("labels"), labels) and fields_match(obj, fields))

        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        for kk, v in self.hdrs:
            h.send_header(kk, v)
        h.end_headers()

        def emit(etype, obj):
            line = json.dumps({"type": etype, "object": obj}, separators=(",", ":")) + "\n"
            data = line.encode()
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            h.wfile.flush()

        end = time.monotonic() + timeout
        try:
            with st.lock:
                if rv in (None, "", "0"):
                    batch = [("ADDED", self.out(obj)) for _, obj in sorted(st.bucket(k).items())
                             if ok(obj)]
                    seen = st.rv
                else:
                    batch = []
                    try:
                        seen = int(rv)
                    except ValueError:
                        seen = st.rv
            last_poll = time.monotonic()
            while True:
                for etype, obj in batch:  # written without the store's lock held
                    emit(etype, obj)
                if time.monotonic() >= end:
                    break
                with st.lock:
                    if st.rv == seen:
                        st.cond.wait(min(0.2, max(0.01, end - time.monotonic())))
                    self.api.state.touch()
                    if time.monotonic() - last_poll >= 0.2:
                        # a watcher polls too: every 0.2 s it counts as one poll of what it
                        # watches, so watch-only clients (kubectl wait, rollout status) progress
                        last_poll = time.monotonic()
                        for _, obj in sorted(st.bucket(k).items()):
                            if ok(obj):
                                self.api.controller.poll(k, obj)
                    batch = [(etype, obj) for erv, ek, etype, obj in st.events
                             if erv > seen and ek == (k.group, k.plural) and ok(obj)]
                    seen = st.rv
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except OSError:
            h.close_connection = True
        return None

    def create(self):
        k = self.kind
        obj = self.parse_body()
        self.check_kind(obj)
        md = obj.setdefault("metadata", {})
        if k.namespaced:
            if md.get("namespace") not in (None, "", self.ns):
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                               "match the namespace sent on the request")
            if not self.ns:
                raise ApiError(404, "NotFound", "the server could not find the requested "
                               "resource", {})
        for f in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                  "selfLink", "generation", "managedFields"):
            if f == "resourceVersion" and md.get(f):
                raise ApiError(400, "BadRequest", "resourceVersion should not be set on objects "
                               "to be created")
            md.pop(f, None)
        with self.st.lock:
            if k.namespaced and not self.st.namespace_exists(self.ns):
                raise ApiError(404, "NotFound", 'namespaces "%s" not found' % self.ns,
                               {"name": self.ns, "kind": "namespaces"})
            name, errs = self.validate_meta(obj, create=True)
            if k.namespaced:
                md["namespace"] = self.ns
            errs += self.prepare(obj)
            if k.status_sub:
                obj.pop("status", None)
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now_iso()
            if k.generation:
                md["generation"] = 1
            if k.crd is None:
                errs += self.api.builtins.validate(k, obj)
            self.invalid(name or md.get("generateName", ""), errs)
            if (self.key(name)) in self.st.bucket(k):
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists'
                               % (k.qualified, name), k.details(name))
            if k.crd is None:
                self.api.builtins.prepare_create(k, obj)
            if self.dry:
                return 201, self.headers(), self.out(obj)
            md["resourceVersion"] = self.st.bump()
            self.st.bucket(k)[self.key(name)] = obj
            self.api.controller.start(k, obj)
            self.st.event(k, "ADDED", obj)
            return 201, self.headers(), self.out(obj)

    def update(self, obj, sub, from_patch=False):
        k = self.kind
        if not from_patch:
            self.check_kind(obj)
        md = obj.setdefault("metadata", {})
        if md.get("name") not in (None, self.name) or (md.get("name") is None and not from_patch):
            if md.get("name") is None:
                md["name"] = self.name
            else:
                raise ApiError(400, "BadRequest", 'the name of the object (%s) does not match '
                               'the name on the URL (%s)' % (md.get("name"), self.name))
        if k.namespaced and md.get("namespace") not in (None, "", self.ns):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not "
                           "match the namespace sent on the request")
        with self.st.lock:
            old = self.get_obj()
            want_rv = md.get("resourceVersion")
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the '
                               'object has been modified; please apply your changes to the '
                               'latest version and try again' % (k.qualified, self.name),
                               k.details(self.name))
            if sub == "status":
                new = copy.deepcopy(old)
                new["status"] = obj.get("status")
                if new["status"] is None:
                    new.pop("status")
                if k.crd is not None:
                    dropped = k.crd.prune(new, k.version)
                    if dropped and self.fv == "Warn":
                        self.warnings.extend('unknown field "%s"' % d for d in dropped)
                    k.crd.default(new, k.version)
                    self.invalid(self.name, k.crd.validate(new, k.version))
            else:
                new = obj
                nmd = new["metadata"]
                _, errs = self.validate_meta(new, create=False)
                for f in ("uid", "creationTimestamp", "generation", "deletionTimestamp",
                          "namespace"):
                    if f in old["metadata"]:
                        nmd[f] = old["metadata"][f]
                    else:
                        nmd.pop(f, None)
                nmd["name"] = self.name
                errs += self.prepare(new)
                if k.status_sub:
                    if "status" in old:
                        new["status"] = copy.deepcopy(old["status"])
                    else:
                        new.pop("status", None)
                if k.crd is None:
                    self.keep_builtin_defaults(old, new)
                    errs += self.api.builtins.validate(k, new, old)
                self.invalid(self.name, errs)
                if k.generation and self.spec_part(new) != self.spec_part(old):
                    nmd["generation"] = old["metadata"].get("generation", 1) + 1
            if self.dry:
                return 200, self.headers(), self.out(new)
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new == old:  # a no-op update keeps the resourceVersion
                return 200, self.headers(), self.out(old)
            new["metadata"]["resourceVersion"] = self.st.bump()
            if old["metadata"].get("deletionTimestamp") and not \
                    new["metadata"].get("finalizers"):
                del self.st.bucket(k)[self.key()]
                self.st.event(k, "DELETED", new)
                return 200, self.headers(), self.out(new)
            self.st.bucket(k)[self.key()] = new
            if k.plural == "workflows":
                self.api.controller.workflow_update(k, old, new)
            elif new["metadata"].get("generation") != old["metadata"].get("generation") or (
                    not k.generation and k.plural == "pods" and new.get("spec") != old.get("spec")):
                self.api.controller.start(k, new)
            self.st.event(k, "MODIFIED", new)
            return 200, self.headers(), self.out(new)

    def keep_builtin_defaults(self, old, new):
        """The fields a built-in strategy defaults or allocates, when an update leaves them
        out (as kubectl apply/replace do)."""
        k = self.kind
        if k.plural == "services":
            for f in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if f in old.get("spec", {}):
                    new.setdefault("spec", {}).setdefault(f, old["spec"][f])
        if k.plural == "jobs":
            for f in ("selector",):
                if f in old.get("spec", {}):
                    new.setdefault("spec", {}).setdefault(f, old["spec"][f])
        spec = new.get("spec")
        if isinstance(spec, dict):
            if k.plural in ("deployments", "jobs", "pods"):
                saved = copy.deepcopy(new.get("status"))
                tmp = copy.deepcopy(new)
                self.api.builtins.prepare_create(k, tmp)
                for f, v in tmp.get("spec", {}).items():
                    spec.setdefault(f, v)
                if saved is not None:
                    new["status"] = saved
                if k.plural == "pods":
                    default_pod_spec(spec)
            elif k.plural == "services":
                for p in spec.get("ports") or []:
                    if isinstance(p, dict):
                        p.setdefault("protocol", "TCP")
                        if "port" in p:
                            p.setdefault("targetPort", p["port"])
                spec.setdefault("type", "ClusterIP")
                spec.setdefault("sessionAffinity", "None")
                spec.setdefault("internalTrafficPolicy", "Cluster")

    def patch(self):
        k = self.kind
        ct = _ct(self.h.headers)
        allowed = PATCH_TYPES_CR if k.crd is not None else PATCH_TYPES_BUILTIN
        if ct not in allowed:
            raise ApiError(415, "UnsupportedMediaType",
                           "the body of the request was in an unknown format - accepted media "
                           "types include: %s" % ", ".join(allowed))
        try:
            patch = json.loads(self.body.decode("utf-8")) if ct != "application/apply-patch+yaml" \
                else self.yaml_or_json()
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, "BadRequest", "error decoding patch: %s" % e)
        if ct == "application/apply-patch+yaml":
            if not self.q.get("fieldManager"):
                raise ApiError(400, "BadRequest",
                               "PATCH requests require fieldManager to be set")
            return self.apply_patch(patch)
        with self.st.lock:
            old = self.get_obj()
            cur = copy.deepcopy(old)
            try:
                if ct == "application/merge-patch+json":
                    if not isinstance(patch, dict):
                        raise ValueError("a merge patch must be a JSON object")
                    new = merge_patch(cur, patch)
                elif ct == "application/strategic-merge-patch+json":
                    if not isinstance(patch, dict):
                        raise ValueError("a strategic merge patch must be a JSON object")
                    new = strategic_merge(cur, patch)
                else:
                    new = json_patch(cur, patch)
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise ApiError(422 if ct == "application/json-patch+json" else 400,
                               "Invalid" if ct == "application/json-patch+json" else "BadRequest",
                               "the server rejected our request due to an error in our request"
                               if ct == "application/json-patch+json" else
                               "error decoding patch: %s" % e)
            if not isinstance(new, dict):
                raise ApiError(400, "BadRequest", "the patched object is not an object")
            rv = (patch.get("metadata") or {}).get("resourceVersion") \
                if isinstance(patch, dict) else None
            if not rv:
                new.setdefault("metadata", {})["resourceVersion"] = \
                    old["metadata"]["resourceVersion"]
            if new.get("apiVersion") != k.gv or new.get("kind") != k.kind:
                raise ApiError(400, "BadRequest", "the API version or kind of the patched object "
                               "does not match the resource")
            return self.update(new, self.sub, from_patch=True)

    def yaml_or_json(self):
        text = self.body.decode("utf-8")
        if text.lstrip().startswith("{"):
            return json.loads(text)
        docs = crd_schema.load_yaml(text)
        return docs[0] if docs else {}

    def apply_patch(self, patch):
        """Server-side apply, simplified: the applied configuration is merged (RFC 7386 over
        the live object, lists replaced); no managedFields, no conflicts between managers."""
        if not isinstance(patch, dict):
            raise ApiError(400, "BadRequest", "error decoding YAML: not an object")
        self.check_kind(patch)
        with self.st.lock:
            exists = self.key() in self.st.bucket(self.kind)
        if not exists:
            patch.setdefault("metadata", {})["name"] = self.name
            self.body = json.dumps(patch).encode()
            return self.create()
        with self.st.lock:
            old = self.get_obj()
            new = merge_patch(copy.deepcopy(old), patch)
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self.update(new, self.sub, from_patch=True)

    def delete(self):
        k = self.kind
        opts = {}
        if self.body:
            try:
                opts = json.loads(self.body)
            except ValueError as e:
                raise ApiError(400, "BadRequest", "error decoding DeleteOptions: %s" % e)
        pp = opts.get("propagationPolicy") or self.q.get("propagationPolicy")
        if pp not in (None, "Foreground", "Background", "Orphan"):
            raise ApiError(400, "BadRequest", 'DeleteOptions.meta.k8s.io "" is invalid: '
                           'propagationPolicy: Unsupported value: "%s": supported values: '
                           '"Foreground", "Background", "Orphan", "nil"' % pp)
        pre = opts.get("preconditions") or {}
        with self.st.lock:
            obj = self.get_obj()
            md = obj["metadata"]
            if pre.get("uid") and pre["uid"] != md["uid"]:
                raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": '
                               'Precondition failed: UID in precondition: %s, UID in object '
                               'meta: %s' % (k.qualified, self.name, pre["uid"], md["uid"]),
                               k.details(self.name))
            if pre.get("resourceVersion") and pre["resourceVersion"] != md["resourceVersion"]:
                raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the '
                               'object has been modified; please apply your changes to the '
                               'latest version and try again' % (k.qualified, self.name),
                               k.details(self.name))
            if self.dry:
                return 200, self.headers(), self.success(obj)
            if md.get("finalizers") or pp == "Foreground":
                if not md.get("deletionTimestamp"):
                    md["deletionTimestamp"] = now_iso()
                    md["deletionGracePeriodSeconds"] = 0
                    if pp == "Foreground":
                        fin = md.setdefault("finalizers", [])
                        if "foregroundDeletion" not in fin:
                            fin.append("foregroundDeletion")
                    md["resourceVersion"] = self.st.bump()
                    self.st.event(k, "MODIFIED", obj)
                if pp == "Foreground" and md.get("finalizers") == ["foregroundDeletion"]:
                    # no dependents in this fake: the garbage collector lets it go at once
                    del self.st.bucket(k)[self.key()]
                    self.st.event(k, "DELETED", obj)
                return 200, self.headers(), self.out(obj)
            del self.st.bucket(k)[self.key()]
            self.st.polls.pop(md["uid"], None)
            self.st.rv += 1
            self.st.event(k, "DELETED", obj)
            if k.plural == "namespaces":
                for kk in self.st.kinds:
                    if kk.namespaced:
                        b = self.st.bucket(kk)
                        for key in [x for x in b if x[0] == self.name]:
                            del b[key]
            return 200, self.headers(), self.success(obj)

    def success(self, obj):
        k = self.kind
        if k.crd is None and k.plural in ("pods", "services", "namespaces"):
            return self.out(obj)  # these kinds answer the object itself
        d = k.details(self.name)
        d["uid"] = obj["metadata"]["uid"]
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": d}

    def delete_collection(self):
        k = self.kind
        labels = parse_label_selector(self.q.get("labelSelector"))
        fields = parse_field_selector(self.q.get("fieldSelector"), k)
        with self.st.lock:
            gone = []
            b = self.st.bucket(k)
            for key, obj in sorted(b.items()):
                if self.ns and key[0] != self.ns:
                    continue
                if labels_match(obj["metadata"].get("labels"), labels) and \
                        fields_match(obj, fields):
                    gone.append(obj)
                    if not self.dry:
                        del b[key]
                        self.st.rv += 1
                        self.st.event(k, "DELETED", obj)
            return 200, self.headers(), {"apiVersion": k.gv, "items": [self.out(o) for o in gone],
                                         "kind": k.list_kind,
                                         "metadata": {"resourceVersion": str(self.st.rv)}}

    def log(self):
        if self.h.command != "GET":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on "
                           "the requested resource", {})
        with self.st.lock:
            pod = self.get_obj()
            containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
            c = self.q.get("container")
            if not c:
                if len(containers) != 1:
                    raise ApiError(400, "BadRequest", "a container name must be specified for "
                                   "pod %s, choose one of: [%s]" % (self.name,
                                                                     " ".join(containers)))
                c = containers[0]
            if c not in containers:
                raise ApiError(400, "BadRequest", "container %s is not valid for pod %s"
                               % (c, self.name))
            phase = (pod.get("status") or {}).get("phase")
            lines = self.st.logs.get((self.ns, self.name, c))
            if lines is None:
                lines = self.st.logs.get((self.ns, self.name, ""))
            if lines is None:
                ann = (pod["metadata"].get("annotations") or {}).get(ANN + "logs")
                if ann is not None:
                    lines = ann.split("\n")
            if lines is None:
                if phase == "Pending":
                    raise ApiError(400, "BadRequest", 'container "%s" in pod "%s" is waiting to '
                                   'start: ContainerCreating' % (c, self.name))
                lines = ["%s: starting" % c, "%s: listening on :8080" % c]
                if phase == "Failed":
                    lines.append("%s: fatal error, exiting with status 1" % c)
        tail = self.q.get("tailLines")
        if tail not in (None, ""):
            try:
                n = int(tail)
            except ValueError:
                raise ApiError(400, "BadRequest", 'strconv.ParseInt: parsing "%s": invalid '
                               'syntax' % tail)
            lines = lines[-n:] if n > 0 else []
        text = "".join(line + "\n" for line in lines)
        if self.q.get("timestamps") in ("true", "1"):
            t = now_iso()[:-1] + ".000000000Z"
            text = "".join("%s %s\n" % (t, line) for line in lines)
        return 200, self.hdrs + [("Content-Type", "text/plain")], text

    def scale_of(self, obj):
        md = obj["metadata"]
        sel = (obj.get("spec") or {}).get("selector") or {}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": md["name"], "namespace": md.get("namespace"),
                             "uid": md["uid"], "resourceVersion": md["resourceVersion"],
                             "creationTimestamp": md["creationTimestamp"]},
                "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                           "selector": ",".join("%s=%s" % kv for kv in sorted(
                               (sel.get("matchLabels") or {}).items()))}}

    def scale_update(self, method):
        """PUT or PATCH (merge, json, strategic) of the scale subresource: spec.replicas."""
        ct = _ct(self.h.headers)
        try:
            body = json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, "BadRequest", "error decoding patch: %s" % e)
        with self.st.lock:
            obj = self.get_obj()
            cur = self.scale_of(obj)
            if method == "PUT":
                new = body
                rv = (body.get("metadata") or {}).get("resourceVersion") \
                    if isinstance(body, dict) else None
                if rv and rv != obj["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": '
                                   'the object has been modified; please apply your changes to '
                                   'the latest version and try again'
                                   % (self.kind.qualified, self.name),
                                   self.kind.details(self.name))
            elif ct == "application/json-patch+json":
                new = json_patch(cur, body)
            elif ct in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                new = merge_patch(cur, body)
            else:
                raise ApiError(415, "UnsupportedMediaType",
                               "the body of the request was in an unknown format - accepted "
                               "media types include: %s" % ", ".join(PATCH_TYPES_BUILTIN))
            n = ((new or {}).get("spec") or {}).get("replicas")
            if not is_int(n) or n < 0:
                self.invalid(self.name, [("FieldValueInvalid", "spec.replicas",
                                          "Invalid value: %s: must be greater than or equal "
                                          "to 0" % crd_schema.go_quote(n))])
            if self.dry:
                return 200, self.headers(), dict(cur, spec={"replicas": n})
            if n != obj["spec"].get("replicas"):
                obj["spec"]["replicas"] = n
                obj["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
                obj["metadata"]["resourceVersion"] = self.st.bump()
                self.api.controller.start(self.kind, obj)
                self.st.event(self.kind, "MODIFIED", obj)
            return 200, self.headers(), self.scale_of(obj)

    # ------------------------------------------------------------------ Table

    def columns(self):
        k = self.kind
        if k.crd is not None:
            cols = k.crd.versions[k.version]["columns"]
            if not cols:
                return [NAME_COLUMN, {"name": "Age", "type": "date", "format": "",
                                      "description": AGE_DESC, "priority": 0}], None
            defs = [NAME_COLUMN] + [
                {"name": c["name"], "type": c.get("type", "string"),
                 "format": c.get("format", ""), "description": c.get("description", ""),
                 "priority": c.get("priority", 0)} for c in cols]
            return defs, cols
        simple = {
            "pods": ["Ready", "Status", "Restarts", "Age"],
            "services": ["Type", "Cluster-IP", "External-IP", "Port(s)", "Age"],
            "deployments": ["Ready", "Up-to-date", "Available", "Age"],
            "jobs": ["Status", "Completions", "Duration", "Age"],
            "horizontalpodautoscalers": ["Reference", "Targets", "MinPods", "MaxPods",
                                         "Replicas", "Age"],
            "namespaces": ["Status", "Age"],
        }[k.plural]
        defs = [NAME_COLUMN] + [{"name": n, "type": "integer" if n in (
            "Up-to-date", "Available", "MinPods", "MaxPods", "Replicas") else "string",
            "format": "", "description": AGE_DESC if n == "Age" else n, "priority": 0}
            for n in simple]
        return defs, None

    def cells(self, obj, cols):
        k, md = self.kind, obj["metadata"]
        spec, st = obj.get("spec") or {}, obj.get("status") or {}
        age = parse_iso(md.get("creationTimestamp"))
        age = human_duration(time.time() - age) if age else "<unknown>"
        if k.crd is not None:
            if cols is None:
                return [md["name"], age]
            out = [md["name"]]
            for c in cols:
                vals = jsonpath(obj, c["jsonPath"])
                if not vals:
                    out.append(None)
                    continue
                v = vals[0]
                if c.get("type") == "date":
                    t = parse_iso(v)
                    v = human_duration(time.time() - t) if t else v
                out.append(v)
            return out
        p = k.plural
        if p == "pods":
            cs = st.get("containerStatuses") or []
            ready = sum(1 for c in cs if c.get("ready"))
            return [md["name"], "%d/%d" % (ready, len(spec.get("containers") or [])),
                    st.get("phase", "Pending") if st.get("phase") != "Pending" or not cs
                    else "ContainerCreating", 0, age]
        if p == "services":
            ports = ",".join("%s/%s" % (x.get("port"), x.get("protocol", "TCP"))
                             for x in spec.get("ports") or [])
            return [md["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP", ""),
                    "<none>", ports or "<none>", age]
        if p == "deployments":
            return [md["name"], "%d/%d" % (st.get("readyReplicas", 0), spec.get("replicas", 1)),
                    st.get("updatedReplicas", 0), st.get("availableReplicas", 0), age]
        if p == "jobs":
            conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
            status = "Complete" if conds.get("Complete") == "True" else (
                "Failed" if conds.get("Failed") == "True" else "Running")
            return [md["name"], status, "%d/%d" % (st.get("succeeded", 0),
                                                   spec.get("completions", 1)),
                    "0s" if status != "Running" else age, age]
        if p == "horizontalpodautoscalers":
            ref = spec.get("scaleTargetRef") or {}
            return [md["name"], "%s/%s" % (ref.get("kind"), ref.get("name")),
                    "cpu: <unknown>/80%", spec.get("minReplicas", 1), spec.get("maxReplicas"),
                    st.get("currentReplicas", 0), age]
        return [md["name"], st.get("phase", "Active"), age]

    def table(self, items, meta):
        defs, cols = self.columns()
        include = self.q.get("includeObject", "Metadata")
        rows = []
        for o in items:
            row = {"cells": self.cells(o, cols)}
            if include == "Object":
                row["object"] = dict(o, apiVersion=self.kind.gv, kind=self.kind.kind)
            elif include != "None":
                row["object"] = {"kind": "PartialObjectMetadata",
                                 "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}
            rows.append(row)
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                "columnDefinitions": defs, "rows": rows}


class Server(faultserver.FaultServer):
    def __init__(self, addr, api, tls=None):
        self.allow_reuse_address = True
        super().__init__(addr, Handler, tls)
        self.api = api
        self.state = api.state


def default_crd_files():
    d = os.environ.get("LLMOPS_CRD_DIR")
    if not d:
        here = os.path.dirname(os.path.abspath(__file__))
        repo = os.path.dirname(os.path.dirname(here))
        d = os.path.join(os.path.dirname(repo), "shared", "contracts", "crds")
        if not os.path.isdir(d):
            d = "/work/shared/contracts/crds"
    return sorted(glob.glob(os.path.join(d, "*.yaml")))


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    port, ready, max_seconds, idle, token, crds, any_ns = 0, None, 600.0, 120.0, None, [], False
    with_parent, cert, key, polls, outcome = False, None, None, 2, "ready"
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
                token = args.pop(0)
            elif a == "--crd":
                crds.append(args.pop(0))
            elif a == "--any-namespace":
                any_ns = True
            elif a == "--exit-with-parent":
                with_parent = True
            elif a == "--tls-cert":
                cert = args.pop(0)
            elif a == "--tls-key":
                key = args.pop(0)
            elif a == "--polls":
                polls = int(args.pop(0))
            elif a == "--outcome":
                outcome = args.pop(0)
                if outcome not in ("ready", "failed", "stuck"):
                    raise ValueError(outcome)
            elif a == "--verbose":
                Handler.verbose = True
            else:
                raise ValueError(a)
    except (ValueError, IndexError):
        sys.stderr.write("usage: k8s_fake.py [--port N] [--ready-file F] [--token T] "
                         "[--crd FILE]... [--any-namespace] [--max-seconds S] "
                         "[--idle-timeout S] [--exit-with-parent] [--tls-cert PEM --tls-key "
                         "PEM] [--polls N] [--outcome ready|failed|stuck] [--verbose]\n")
        return 2
    api = Api(crd_schema.load_crds(crds or default_crd_files()), token, any_ns)
    api.store.defaults.update(polls=polls, outcome=outcome)
    started, parent = time.monotonic(), os.getppid()

    def watchdog():
        while True:
            time.sleep(0.2)
            t = time.monotonic()
            if (t - started > max_seconds or t - api.state.last_activity > idle
                    or (with_parent and os.getppid() != parent)):
                os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    tls = (cert, key) if cert else None
    faultserver.serve_refusable(lambda addr: Server(addr, api, tls), api, port, ready)


if __name__ == "__main__":
    sys.exit(main())
