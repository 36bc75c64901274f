#!/usr/bin/env python3
"""crd_schema.py — CustomResourceDefinitions for the Kubernetes fake (k8s_fake.py), standard
library only.

- load_yaml(text): the subset of YAML that controller-gen and `kubectl get -o yaml` write
  (block mappings and sequences, indentless sequences, plain / quoted / `|` `>` block scalars,
  `{}` and `[]`, several documents). Not a general YAML parser: anchors, tags, flow
  collections with content and complex keys are refused with ValueError.
- Crd(doc): a CRD's names, versions, printer columns and its structural OpenAPI v3 schema, with
  what apiextensions-apiserver does to a custom resource before it is stored:
    prune(obj)    drop fields the schema does not declare (unless x-kubernetes-preserve-
                  unknown-fields), returning the dropped paths ("spec.predictor.bogusField")
    default(obj)  fill `default:` values into objects that are present
    validate(obj) [(reason, field, message)], sorted by field, as the apiserver's field errors
                  (FieldValueRequired,
                  FieldValueTypeInvalid, FieldValueNotSupported, FieldValueInvalid,
                  FieldValueTooLong, FieldValueDuplicate), messages worded as kube-openapi's
"""

import copy
import json
import re

__all__ = ["load_yaml", "load_yaml_file", "Crd", "load_crds", "go_quote"]


# ------------------------------------------------------------------------------- YAML subset

_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


class _Lines:
    def __init__(self, text):
        self.items = []  # [indent, content, lineno]
        for no, raw in enumerate(text.splitlines(), 1):
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise ValueError("line %d: tab in indentation" % no)
            stripped = raw.strip()
            if not stripped or stripped.startswith("#"):
                self.items.append([None, "", no])  # blank: only block scalars keep them
                continue
            self.items.append([len(raw) - len(raw.lstrip(" ")), raw.rstrip(), no])


def _scalar(text, no):
    t = text.strip()
    if t.startswith("#"):
        return None
    if t.startswith('"'):
        if not t.endswith('"') or len(t) < 2:
            raise ValueError("line %d: unterminated double-quoted scalar" % no)
        return json.loads(t)
    if t.startswith("'"):
        if not t.endswith("'") or len(t) < 2:
            raise ValueError("line %d: unterminated single-quoted scalar" % no)
        return t[1:-1].replace("''", "'")
    if " #" in t:
        t = t.split(" #", 1)[0].rstrip()
    if t == "{}":
        return {}
    if t == "[]":
        return []
    if t[:1] in ("&", "*", "!", "{", "[", "@", "`", "%"):
        raise ValueError("line %d: unsupported YAML construct %r" % (no, t))
    if t in ("null", "Null", "NULL", "~", ""):
        return None
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if _INT.match(t):
        return int(t)
    if _FLOAT.match(t) and any(c.isdigit() for c in t):
        return float(t)
    return t


def _split_key(content, no):
    """'key: value' -> (key, value-text) or None when the line is not a mapping entry."""
    if content.startswith(('"', "'")):
        q = content[0]
        end = content.find(q, 1)
        while q == "'" and end != -1 and content[end + 1: end + 2] == "'":
            end = content.find(q, end + 2)
        if end == -1:
            raise ValueError("line %d: unterminated quoted key" % no)
        rest = content[end + 1:]
        if rest == ":" or rest.startswith(": "):
            return _scalar(content[: end + 1], no), rest[1:].strip()
        return None
    m = re.match(r"^([^\s#'\"][^:]*?|[^\s#'\"]):(\s+(.*))?$", content)
    if not m:
        return None
    key = m.group(1)
    if key.startswith("- "):
        return None
    return key, (m.group(3) or "").strip()


class _Parser:
    def __init__(self, lines):
        self.l = lines.items
        self.n = len(self.l)

    def skip_blank(self, i):
        while i < self.n and self.l[i][0] is None:
            i += 1
        return i

    def node(self, i, indent):
        i = self.skip_blank(i)
        if i >= self.n:
            return None, i
        ind, content, _ = self.l[i]
        if content.lstrip() == "-" or content.lstrip().startswith("- "):
            return self.seq(i, ind)
        return self.mapping(i, ind)

    def block_scalar(self, i, parent_indent, style):
        lines, block_ind = [], None
        while i < self.n:
            ind, content, _ = self.l[i]
            if ind is None:
                lines.append("")
                i += 1
                continue
            if ind <= parent_indent:
                break
            if block_ind is None:
                block_ind = ind
            raw_line = " " * ind + content.strip() if ind >= block_ind else content.strip()
            lines.append(raw_line[block_ind:])
            i += 1
        while lines and lines[-1] == "":
            lines.pop()
        if style[0] == ">":
            out = ""
            for k, line in enumerate(lines):
                if k and line and lines[k - 1] and not line.startswith(" "):
                    out += " " + line
                else:
                    out += ("\n" if k else "") + line
            text = out
        else:
            text = "\n".join(lines)
        if not style.endswith("-") and lines:
            text += "\n"
        return text, i

    def value_after(self, i, ind, text, no, in_seq=False):
        """The value of a key (or a sequence item) whose text after ':' is `text`."""
        if text in ("|", "|-", "|+", ">", ">-", ">+"):
            return self.block_scalar(i + 1, ind, text)
        if text == "" or text.startswith("#"):
            j = self.skip_blank(i + 1)
            if j < self.n:
                cind, ccontent, _ = self.l[j]
                if cind > ind:
                    return self.node(j, cind)
                if (cind == ind and not in_seq
                        and (ccontent.lstrip() == "-" or ccontent.lstrip().startswith("- "))):
                    return self.seq(j, ind)  # an indentless sequence
            return None, i + 1
        # a plain scalar may go on over more-indented lines (folded with spaces)
        parts, j = [text], i + 1
        if not text.startswith(('"', "'")):
            while j < self.n and self.l[j][0] is not None and self.l[j][0] > ind:
                parts.append(self.l[j][1].strip())
                j += 1
        return _scalar(" ".join(parts), no), j

    def mapping(self, i, ind):
        out = {}
        while True:
            i = self.skip_blank(i)
            if i >= self.n:
                break
            lind, content, no = self.l[i]
            if lind < ind:
                break
            if lind > ind:
                raise ValueError("line %d: unexpected indentation" % no)
            c = content.strip()
            if c == "-" or c.startswith("- "):
                break
            kv = _split_key(c, no)
            if kv is None:
                raise ValueError("line %d: expected 'key: value', got %r" % (no, c))
            key, text = kv
            if key in out:
                raise ValueError("line %d: duplicate key %r" % (no, key))
            out[key], i = self.value_after(i, ind, text, no)
        return out, i

    def seq(self, i, ind):
        out = []
        while True:
            i = self.skip_blank(i)
            if i >= self.n:
                break
            lind, content, no = self.l[i]
            c = content.strip()
            if lind != ind or not (c == "-" or c.startswith("- ")):
                break
            rest = c[1:].lstrip()
            if not rest:
                v, i = self.value_after(i, ind, "", no, in_seq=True)
                out.append(v)
                continue
            inner = ind + (len(c) - len(rest))
            if _split_key(rest, no) is not None or rest.startswith("- "):
                # "- key: value": a mapping (or nested sequence) starting on this line
                self.l[i] = [inner, " " * inner + rest, no]
                v, i = self.node(i, inner)
                out.append(v)
            else:
                v, i = self.value_after(i, ind, rest, no, in_seq=True)
                out.append(v)
        return out, i


def load_yaml(text):
    """Every document of `text`, as a list (empty documents left out)."""
    docs, cur = [], []
    for line in text.splitlines():
        if line.rstrip() == "---" or line.startswith("--- "):
            docs.append("\n".join(cur))
            cur = []
        elif line.rstrip() == "...":
            continue
        else:
            cur.append(line)
    docs.append("\n".join(cur))
    out = []
    for d in docs:
        lines = _Lines(d)
        p = _Parser(lines)
        start = p.skip_blank(0)
        if start >= p.n:
            continue
        v, end = p.node(start, lines.items[start][0])
        end = p.skip_blank(end)
        if end < p.n:
            raise ValueError("line %d: unexpected content %r" % (lines.items[end][2],
                                                                   lines.items[end][1].strip()))
        out.append(v)
    return out


def load_yaml_file(path):
    with open(path, encoding="utf-8") as f:
        return load_yaml(f.read())


# ------------------------------------------------------------------------- structural schema

def go_quote(v):
    """A value as Go's %q / the apiserver's field errors print it."""
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


def _type_of(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "integer" if v == int(v) else "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _join(path, key):
    return "%s.%s" % (path, key) if path else key


# metadata fields an apiserver keeps (ObjectMeta); everything else under metadata is dropped
OBJECT_META = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
               "generation", "creationTimestamp", "deletionTimestamp",
               "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
               "finalizers", "managedFields")


class Crd:
    def __init__(self, doc):
        if doc.get("kind") != "CustomResourceDefinition":
            raise ValueError("not a CustomResourceDefinition: %r" % doc.get("kind"))
        spec = doc["spec"]
        self.name = doc["metadata"]["name"]
        self.group = spec["group"]
        names = spec["names"]
        self.kind = names["kind"]
        self.list_kind = names.get("listKind", self.kind + "List")
        self.plural = names["plural"]
        self.singular = names.get("singular", self.kind.lower())
        self.short_names = list(names.get("shortNames") or [])
        self.categories = list(names.get("categories") or [])
        self.namespaced = spec.get("scope", "Namespaced") == "Namespaced"
        self.versions = {}
        self.storage_version = None
        for v in spec["versions"]:
            if not v.get("served", True):
                continue
            self.versions[v["name"]] = {
                "schema": (v.get("schema") or {}).get("openAPIV3Schema") or {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "columns": list(v.get("additionalPrinterColumns") or []),
                "subresources": dict(v.get("subresources") or {}),
            }
            if v.get("storage"):
                self.storage_version = v["name"]
        if self.storage_version is None:
            self.storage_version = next(iter(self.versions))

    def schema(self, version=None):
        return self.versions[version or self.storage_version]["schema"]

    def has_status_subresource(self, version=None):
        return "status" in self.versions[version or self.storage_version]["subresources"]

    # -------------------------------------------------------------------- pruning

    def prune(self, obj, version=None):
        """Drops undeclared fields in place; returns the dropped paths (sorted as found)."""
        dropped = []
        schema = self.schema(version)
        for key in list(obj):
            if key in ("apiVersion", "kind"):
                continue
            if key == "metadata":
                if isinstance(obj[key], dict):
                    for mk in list(obj[key]):
                        if mk not in OBJECT_META:
                            dropped.append("metadata." + mk)
                            del obj[key][mk]
                continue
            self._prune(obj, key, schema, "", dropped)
        return sorted(dropped)

    def _prune(self, parent, key, schema, path, dropped):
        props = schema.get("properties")
        sub = (props or {}).get(key)
        if sub is None:
            addl = schema.get("additionalProperties")
            if isinstance(addl, dict):
                sub = addl
            elif addl is True or schema.get("x-kubernetes-preserve-unknown-fields"):
                return
            else:
                dropped.append(_join(path, key))
                del parent[key]
                return
        self._prune_value(parent[key], sub, _join(path, key), dropped)

    def _prune_value(self, value, schema, path, dropped):
        if isinstance(value, dict):
            for k in list(value):
                self._prune(value, k, schema, path, dropped)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for n, item in enumerate(value):
                self._prune_value(item, schema["items"], "%s[%d]" % (path, n), dropped)

    # -------------------------------------------------------------------- defaulting

    def default(self, obj, version=None):
        self._default(obj, self.schema(version), top=True)
        return obj

    def _default(self, value, schema, top=False):
        if isinstance(value, dict):
            for k, sub in (schema.get("properties") or {}).items():
                if top and k in ("metadata", "apiVersion", "kind"):
                    continue
                if (k not in value or value[k] is None) and "default" in sub and not (
                        value.get(k, 0) is None and sub.get("nullable")):
                    value[k] = copy.deepcopy(sub["default"])
                if k in value:
                    self._default(value[k], sub)
            addl = schema.get("additionalProperties")
            if isinstance(addl, dict):
                declared = schema.get("properties") or {}
                for k, v in value.items():
                    if k not in declared:
                        self._default(v, addl)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for item in value:
                self._default(item, schema["items"])

    # -------------------------------------------------------------------- validation

    def validate(self, obj, version=None):
        errs = []
        schema = self.schema(version)
        for k in schema.get("required") or []:
            if k not in obj or obj[k] is None:
                errs.append(("FieldValueRequired", k, "Required value"))
        for k, v in obj.items():
            if k in ("apiVersion", "kind", "metadata"):
                continue
            sub = (schema.get("properties") or {}).get(k)
            if sub is not None:
                self._validate(v, sub, k, errs)
        return sorted(errs, key=lambda e: e[1])

    def _validate(self, v, s, path, errs):
        if v is None:
            if s.get("nullable"):
                return
            if not s.get("x-kubernetes-preserve-unknown-fields") or s.get("type"):
                t = s.get("type") or ("string" if s.get("x-kubernetes-int-or-string") else "")
                if t:
                    errs.append(("FieldValueTypeInvalid", path,
                                 'Invalid value: "null": %s in body must be of type %s: "null"'
                                 % (path, t)))
            return
        actual = _type_of(v)
        if s.get("x-kubernetes-int-or-string"):
            if actual not in ("integer", "string"):
                errs.append(("FieldValueTypeInvalid", path,
                             'Invalid value: "%s": %s in body must be of type integer,string: '
                             '"%s"' % (actual, path, actual)))
                return
        else:
            t = s.get("type")
            ok = (t is None or actual == t or (t == "number" and actual == "integer"))
            if not ok:
                errs.append(("FieldValueTypeInvalid", path,
                             'Invalid value: "%s": %s in body must be of type %s: "%s"'
                             % (actual, path, t, actual)))
                return
        if "enum" in s and v not in s["enum"]:
            allowed = ", ".join(go_quote(e) for e in s["enum"])
            errs.append(("FieldValueNotSupported", path,
                         "Unsupported value: %s: supported values: %s" % (go_quote(v), allowed)))
        if isinstance(v, str):
            if "maxLength" in s and len(v) > s["maxLength"]:
                errs.append(("FieldValueTooLong", path,
                             "Too long: may not be more than %d bytes" % s["maxLength"]))
            if "minLength" in s and len(v) < s["minLength"]:
                errs.append(("FieldValueInvalid", path,
                             "Invalid value: %s: %s in body should be at least %d chars long"
                             % (go_quote(v), path, s["minLength"])))
            if "pattern" in s and not s.get("x-kubernetes-int-or-string") \
                    and re.search(s["pattern"], v) is None:
                errs.append(("FieldValueInvalid", path,
                             "Invalid value: %s: %s in body should match '%s'"
                             % (go_quote(v), path, s["pattern"])))
            if "pattern" in s and s.get("x-kubernetes-int-or-string") \
                    and re.search(s["pattern"], v) is None:
                errs.append(("FieldValueInvalid", path,
                             "Invalid value: %s: %s in body should match '%s'"
                             % (go_quote(v), path, s["pattern"])))
        if actual in ("integer", "number") and not isinstance(v, bool):
            if "maximum" in s and v > s["maximum"]:
                errs.append(("FieldValueInvalid", path,
                             "Invalid value: %s: %s in body should be less than or equal to %s"
                             % (go_quote(v), path, go_quote(s["maximum"]))))
            if "minimum" in s and v < s["minimum"]:
                errs.append(("FieldValueInvalid", path,
                             "Invalid value: %s: %s in body should be greater than or equal to "
                             "%s" % (go_quote(v), path, go_quote(s["minimum"]))))
        if isinstance(v, dict):
            for k in s.get("required") or []:
                if k not in v or v[k] is None:
                    errs.append(("FieldValueRequired", _join(path, k), "Required value"))
            props = s.get("properties") or {}
            addl = s.get("additionalProperties")
            for k, item in v.items():
                if k in props:
                    self._validate(item, props[k], _join(path, k), errs)
                elif isinstance(addl, dict):
                    self._validate(item, addl, "%s[%s]" % (path, k), errs)
        elif isinstance(v, list):
            if "minItems" in s and len(v) < s["minItems"]:
                errs.append(("FieldValueInvalid", path,
                             "Invalid value: %d: %s in body should have at least %d items"
                             % (len(v), path, s["minItems"])))
            if "maxItems" in s and len(v) > s["maxItems"]:
                errs.append(("FieldValueTooMany", path,
                             "Too many: %d: must have at most %d items" % (len(v), s["maxItems"])))
            items = s.get("items")
            if isinstance(items, dict):
                for n, item in enumerate(v):
                    self._validate(item, items, "%s[%d]" % (path, n), errs)
            lt = s.get("x-kubernetes-list-type")
            if lt == "set":
                seen = []
                for n, item in enumerate(v):
                    if item in seen:
                        errs.append(("FieldValueDuplicate", "%s[%d]" % (path, n),
                                     "Duplicate value: %s" % go_quote(item)))
                    seen.append(item)
            elif lt == "map":
                keys = s.get("x-kubernetes-list-map-keys") or []
                seen = []
                for n, item in enumerate(v):
                    if not isinstance(item, dict):
                        continue
                    kv = {k: item.get(k) for k in keys}
                    if kv in seen:
                        errs.append(("FieldValueDuplicate", "%s[%d]" % (path, n),
                                     "Duplicate value: %s" % go_quote(kv)))
                    seen.append(kv)


def load_crds(paths):
    """Every CRD in the given YAML files, keyed by (group, plural)."""
    out = {}
    for p in paths:
        for doc in load_yaml_file(p):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                crd = Crd(doc)
                out[(crd.group, crd.plural)] = crd
    return out
