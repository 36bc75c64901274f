#!/usr/bin/env python3
"""Checks the monitoring files of llm-ops against doc/metrics.md (Python 3 standard library).

  check-monitoring.py rules SOURCE_DIR      packaging/prometheus: promtool check rules and
                                            check config, promtool test rules (tests/prometheus),
                                            every alert tested firing and quiet, severity and
                                            summary/description on every alert
  check-monitoring.py dashboard SOURCE_DIR  packaging/grafana/llm-ops.json: valid JSON, the
                                            template variables, every expression valid PromQL
                                            (promtool check rules on a generated file), every
                                            series of doc/metrics.md shown

Both check every PromQL expression against the table of doc/metrics.md: metric names (a
histogram only as _bucket, _sum, _count), label names, the label values the table lists, and
counters only inside rate(), irate() or increase(). They need promtool (Debian package
prometheus) and fail without it. Exit 0 when every check passed, 1 otherwise.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Labels Prometheus adds to every series: job, and instance (the scraped target, not a plugin
# instance: that is the series label `plugin` of doc/metrics.md). `le` of histogram buckets
# is added where a histogram is.
TARGET_LABELS = {"job", "instance"}
COUNTER_FUNCS = {"rate", "irate", "increase", "resets"}
AGGREGATORS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk",
               "quantile", "count_values", "group"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "atan2", "start", "end"}
LABEL_LIST_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}

errors = []


def fail(msg):
    errors.append(msg)
    print("FAIL: " + msg)


# ------------------------------------------------------------------ doc/metrics.md

def parse_doc(path):
    """{name: {"type": counter|gauge|histogram, "labels": {label: set(values) or None}}}"""
    metrics = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\|\s*`(llmops_[a-z0-9_]+)`\s*\|([^|]*)\|([^|]*)\|(.*)\|\s*$", line)
            if not m:
                continue
            name, type_cell, label_cell, what = m.groups()
            kind = type_cell.strip().split()[0] if type_cell.strip() else ""
            if kind not in ("counter", "gauge", "histogram"):
                raise SystemExit(f"{path}: {name}: unknown type {type_cell.strip()!r}")
            labels = {}
            for lm in re.finditer(r"`([A-Za-z_][A-Za-z0-9_]*)`\s*(\(([^)]*)\))?", label_cell):
                values = re.findall(r"`([^`]+)`", lm.group(3)) if lm.group(3) else None
                labels[lm.group(1)] = set(values) if values else None
            # "`label` is `a`, `b` or `c`" in the description: an enumeration of plain words
            for seg in what.split(";"):
                sm = re.match(r"\s*`([A-Za-z_][A-Za-z0-9_]*)`(.*)", seg)
                if not sm or sm.group(1) not in labels or labels[sm.group(1)] is not None:
                    continue
                values = re.findall(r"`([^`]+)`", sm.group(2))
                if len(values) >= 2 and all(re.fullmatch(r"[A-Za-z0-9_]+", v) for v in values):
                    labels[sm.group(1)] = set(values)
            metrics[name] = {"type": kind, "labels": labels}
    if not metrics:
        raise SystemExit(f"{path}: no metric table found")
    return metrics


def series_names(doc):
    """Every series name a scrape can hold: {series: (metric, kind)}."""
    out = {}
    for name, d in doc.items():
        if d["type"] == "histogram":
            out[name + "_bucket"] = (name, "bucket")
            out[name + "_sum"] = (name, "counter")
            out[name + "_count"] = (name, "counter")
        else:
            out[name] = (name, d["type"])
    return out


# ------------------------------------------------------------------ PromQL scanning

TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<num>(?:0x[0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
  | (?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>=(){},@])
""", re.VERBOSE)


def tokenize(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot read {expr[pos:pos + 20]!r}")
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
        pos = m.end()
    return out


def unquote(s):
    if s[0] == "`":
        return s[1:-1]
    return re.sub(r"\\(.)", r"\1", s[1:-1])


def scan(expr):
    """The metric selectors and label lists of a PromQL expression.

    Returns (selectors, label_lists): selectors are (name, [(label, op, value)], function)
    with `function` the innermost function or aggregation around the selector (None at the
    top); label_lists are the label names of by/without/on/ignoring/group_* clauses."""
    toks = tokenize(expr)
    selectors, label_lists = [], []
    stack, pending = [], None
    i = 0

    def matchers(i):
        # toks[i] is "{": label op "value" [, ...] "}"
        ms = []
        i += 1
        while toks[i][1] != "}":
            if toks[i][0] != "ident" or toks[i + 1][0] != "op" or toks[i + 2][0] != "str":
                raise ValueError(f"bad label matcher near {toks[i][1]!r}")
            ms.append((toks[i][1], toks[i + 1][1], unquote(toks[i + 2][1])))
            i += 3
            if toks[i][1] == ",":
                i += 1
        return ms, i + 1

    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "ident" and text in LABEL_LIST_WORDS:
            if nxt == "(":
                j = i + 2
                while toks[j][1] != ")":
                    if toks[j][0] == "ident":
                        label_lists.append(toks[j][1])
                    j += 1
                i = j + 1
            else:
                i += 1
            continue
        if kind == "ident" and text.lower() in KEYWORDS:
            i += 1
            continue
        if kind == "ident" and text in AGGREGATORS and nxt != "(":
            pending = text  # sum by (x) (...)
            i += 1
            continue
        if kind == "ident" and nxt == "(":
            stack.append(text)
            i += 2
            continue
        if kind == "ident":
            func = next((f for f in reversed(stack) if f), None)
            ms = []
            i += 1
            if i < len(toks) and toks[i][1] == "{":
                ms, i = matchers(i)
            selectors.append((text, ms, func))
            continue
        if text == "{":
            raise ValueError("a selector without a metric name ({...})")
        if text == "(":
            stack.append(pending)
            pending = None
        elif text == ")":
            if not stack:
                raise ValueError("unbalanced )")
            stack.pop()
        i += 1
    if stack:
        raise ValueError("unbalanced (")
    return selectors, label_lists


def check_expr(where, expr, doc, allowed_extra=(), counter_rule=True):
    """Checks one PromQL expression; returns the doc metrics it uses."""
    names = series_names(doc)
    all_labels = set(TARGET_LABELS) | {"le"}
    for d in doc.values():
        all_labels |= set(d["labels"])
    used = set()
    try:
        selectors, label_lists = scan(expr)
    except (ValueError, IndexError) as e:
        fail(f"{where}: cannot read the expression ({e}): {expr}")
        return used
    for label in label_lists:
        if label not in all_labels:
            fail(f"{where}: label {label!r} is no label of doc/metrics.md: {expr}")
    for name, ms, func in selectors:
        if name in allowed_extra:
            continue
        if name not in names:
            hint = ""
            if name in doc and doc[name]["type"] == "histogram":
                hint = " (a histogram: use _bucket, _sum or _count)"
            fail(f"{where}: {name!r} is not a series of doc/metrics.md{hint}: {expr}")
            continue
        metric, kind = names[name]
        used.add(metric)
        labels = doc[metric]["labels"]
        for label, op, value in ms:
            ok = set(labels) | TARGET_LABELS | ({"le"} if kind == "bucket" else set())
            if label not in ok:
                fail(f"{where}: {name} has no label {label!r} (doc/metrics.md: "
                     f"{', '.join(sorted(labels)) or 'none'}): {expr}")
                continue
            values = labels.get(label)
            if values and "$" not in value:
                alts = value.split("|") if op in ("=~", "!~") else [value]
                for alt in alts:
                    if re.fullmatch(r"[A-Za-z0-9_]+", alt) and alt not in values:
                        fail(f"{where}: {name}: {label}={alt!r} is none of "
                             f"{', '.join(sorted(values))}: {expr}")
        if counter_rule and kind in ("counter", "bucket") and func not in COUNTER_FUNCS:
            fail(f"{where}: {name} is a counter: use it inside rate(), irate() or "
                 f"increase(), not {func or 'as it is'}: {expr}")
        if kind == "gauge" and func in COUNTER_FUNCS:
            fail(f"{where}: {name} is a gauge: {func}() makes no sense on it: {expr}")
    return used


def self_test(doc):
    """The scanner finds what it must, so that a passing check means something."""
    global errors
    saved, errors = errors, []
    cases = [
        ('sum by (route, le) (rate(llmops_http_request_duration_seconds_bucket{job=~"$j"}[$__rate_interval]))', 0),
        ('llmops_tool_up == 0 and on (job) llmops_database_up offset 5m > bool 0.5e1', 0),
        ('rate(llmops_no_such_metric_total[5m])', 1),
        ('rate(llmops_http_request_duration_seconds[5m])', 1),
        ('llmops_http_requests_total', 1),
        ('rate(llmops_http_requests_total{status="5xx"}[5m])', 1),
        ('rate(llmops_http_requests_total{code="500"}[5m])', 1),
        ('sum by (rout) (rate(llmops_http_requests_total[5m]))', 1),
        ('rate(llmops_tool_up[5m])', 1),
        ('llmops_outbox_rows{state=~"pending|gone"}', 1),
        ('{__name__="llmops_tool_up"}', 1),
        ('sum by (job, plugin) (llmops_tool_up{instance="web1:80", plugin="tracking-pg"})', 0),
        ('llmops_tool_up{exported_instance="tracking-pg"}', 1),
        ('sum by (host) (llmops_breaker_open)', 1),
    ]
    ok = True
    for expr, want in cases:
        errors = []
        with open(os.devnull, "w") as devnull:
            stdout, sys.stdout = sys.stdout, devnull
            try:
                check_expr("self-test", expr, doc)
            finally:
                sys.stdout = stdout
        if (len(errors) > 0) != (want > 0):
            ok = False
            saved.append(f"self-test: {expr!r}: expected {'an error' if want else 'no error'}, "
                         f"got {errors or 'none'}")
            print("FAIL: " + saved[-1])
    errors = saved
    return ok


# ------------------------------------------------------------------ a YAML subset

class YamlError(Exception):
    pass


def parse_yaml(text, path):
    """Block mappings and sequences, plain and quoted scalars, | and > block scalars, and
    empty or simple flow collections: what the rule files use. Anything else is an error."""
    lines = text.split("\n")

    def indent_of(s):
        return len(s) - len(s.lstrip(" "))

    def significant(i):
        while i < len(lines):
            s = lines[i].strip()
            if s and not s.startswith("#"):
                return i
            i += 1
        return i

    def scalar(v, lineno):
        v = v.strip()
        if v.startswith('"'):
            m = re.match(r'"((?:[^"\\]|\\.)*)"\s*(#.*)?$', v)
            if not m:
                raise YamlError(f"{path}:{lineno}: unsupported double-quoted scalar")
            return json.loads('"' + m.group(1) + '"')
        if v.startswith("'"):
            m = re.match(r"'((?:[^']|'')*)'\s*(#.*)?$", v)
            if not m:
                raise YamlError(f"{path}:{lineno}: unsupported single-quoted scalar")
            return m.group(1).replace("''", "'")
        v = re.sub(r"\s+#.*$", "", v)
        if v in ("[]", "{}"):
            return [] if v == "[]" else {}
        if v.startswith("[") and v.endswith("]"):
            return [scalar(x, lineno) for x in v[1:-1].split(",")]
        if v.startswith(("{", "[", "&", "*", "!", "|", ">", "%", "@")):
            raise YamlError(f"{path}:{lineno}: unsupported YAML: {v}")
        return v

    def split_key(s, lineno):
        m = re.match(r"""("(?:[^"\\]|\\.)*"|'[^']*'|[^\s'"#][^:#]*?)\s*:(?:\s+(.*)|$)""", s)
        if not m:
            raise YamlError(f"{path}:{lineno}: expected key: value, got {s!r}")
        key = m.group(1)
        if key[0] in "\"'":
            key = scalar(key, lineno)
        return key, (m.group(2) or "").strip()

    def block_scalar(i, parent_indent, header, lineno):
        style, chomp = header[0], header[1:2]
        body, block_indent = [], None
        while i < len(lines):
            s = lines[i]
            if s.strip() == "":
                body.append("")
                i += 1
                continue
            ind = indent_of(s)
            if ind <= parent_indent:
                break
            if block_indent is None:
                block_indent = ind
            if ind < block_indent:
                raise YamlError(f"{path}:{i + 1}: bad indentation in a block scalar")
            body.append(s[block_indent:])
            i += 1
        while body and body[-1] == "":
            body.pop()
        if style == "|":
            value = "\n".join(body)
        else:
            value, para = "", []
            for b in body:
                if b == "":
                    value += " ".join(para) + "\n"
                    para = []
                else:
                    para.append(b)
            value += " ".join(para)
        if chomp != "-":
            value += "\n"
        return value, i

    def block(i, ind):
        i = significant(i)
        if i >= len(lines):
            return None, i
        if lines[i].lstrip().startswith("- ") or lines[i].strip() == "-":
            return sequence(i, ind)
        return mapping(i, ind)

    def value_after(i, ind, rest, lineno):
        """The value of a key or item whose line had `rest` after it."""
        if rest[:1] in ("|", ">") and re.fullmatch(r"[|>][-+]?", rest.split(" #")[0].strip()):
            return block_scalar(i, ind, rest.split(" #")[0].strip(), lineno)
        if rest and not rest.startswith("#"):
            return scalar(rest, lineno), i
        j = significant(i)
        if j < len(lines) and (indent_of(lines[j]) > ind or
                               (indent_of(lines[j]) == ind and lines[j].lstrip().startswith("-"))):
            return block(j, indent_of(lines[j]))
        return None, i

    def mapping(i, ind):
        out = {}
        while True:
            i = significant(i)
            if i >= len(lines) or indent_of(lines[i]) < ind:
                return out, i
            if indent_of(lines[i]) > ind:
                raise YamlError(f"{path}:{i + 1}: unexpected indentation")
            s = lines[i].strip()
            if s.startswith("-"):
                return out, i
            key, rest = split_key(s, i + 1)
            if key in out:
                raise YamlError(f"{path}:{i + 1}: duplicate key {key!r}")
            out[key], i = value_after(i + 1, ind, rest, i + 1)

    def sequence(i, ind):
        out = []
        while True:
            i = significant(i)
            if i >= len(lines) or indent_of(lines[i]) != ind:
                return out, i
            s = lines[i].strip()
            if not (s.startswith("- ") or s == "-"):
                return out, i
            rest = s[1:].strip()
            if rest == "" or rest.startswith("#"):
                value, i = value_after(i + 1, ind, "", i + 1)
                out.append(value)
            elif re.match(r"""("[^"]*"|'[^']*'|[^\s'"#\[{][^:#]*?)\s*:(\s|$)""", rest):
                # "- key: value": a mapping whose keys line up after the dash
                lines[i] = " " * (ind + 2) + rest
                value, i = mapping(i, ind + 2)
                out.append(value)
            else:
                out.append(scalar(rest, i + 1))
                i += 1

    value, i = block(0, 0)
    i = significant(i)
    if i < len(lines):
        raise YamlError(f"{path}:{i + 1}: cannot read from here on")
    return value


# ------------------------------------------------------------------ promtool

def promtool():
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path:
        print("FAIL: promtool is not installed. It comes with the Debian package prometheus: "
              "run scripts/install-deps (as root) to install it.")
        sys.exit(1)
    return path


def run(cmd, cwd=None):
    print("$ " + " ".join(cmd))
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=300)
    out = r.stdout.rstrip()
    if out:
        print(re.sub(r"(?m)^", "    ", out))
    return r.returncode == 0


# ------------------------------------------------------------------ rules

def check_rules(src, tool):
    doc = parse_doc(os.path.join(src, "doc/metrics.md"))
    self_test(doc)
    rules_path = os.path.join(src, "packaging/prometheus/llm-ops.rules.yml")
    config_path = os.path.join(src, "packaging/prometheus/prometheus.yml")
    tests_path = os.path.join(src, "tests/prometheus/llm-ops.rules.test.yml")

    if not run([tool, "check", "rules", rules_path]):
        fail("promtool check rules failed (above)")
    if not run([tool, "check", "config", config_path]):
        fail("promtool check config failed (above)")
    if not run([tool, "test", "rules", os.path.basename(tests_path)],
               cwd=os.path.dirname(tests_path)):
        fail("promtool test rules failed (above)")

    try:
        with open(rules_path, encoding="utf-8") as f:
            rules = parse_yaml(f.read(), rules_path)
        with open(tests_path, encoding="utf-8") as f:
            tests = parse_yaml(f.read(), tests_path)
    except YamlError as e:
        fail(str(e))
        return

    all_labels = set(TARGET_LABELS) | {"le"}
    for d in doc.values():
        all_labels |= set(d["labels"])
    recorded, alerts = set(), []
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            if "record" in rule:
                name = rule["record"]
                if name.count(":") < 2 and not name.startswith("llmops_"):
                    fail(f"{rules_path}: recording rule {name}: name it level:metric:operations")
                recorded.add(name)
            else:
                alerts.append(rule)
    used = set()
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            where = f"{rules_path}: {rule.get('record') or rule.get('alert')}"
            used |= check_expr(where, rule.get("expr") or "", doc, allowed_extra=recorded)
    print(f"rules: {len(recorded)} recording rules, {len(alerts)} alerts, "
          f"{len(used)} series of doc/metrics.md used")

    for a in alerts:
        name = a.get("alert")
        labels, ann = a.get("labels") or {}, a.get("annotations") or {}
        if labels.get("severity") not in ("critical", "warning", "info"):
            fail(f"{rules_path}: {name}: needs a severity label critical, warning or info")
        for k in ("summary", "description"):
            if not (ann.get(k) or "").strip():
                fail(f"{rules_path}: {name}: needs a {k} annotation")
        for k, text in ann.items():
            for label in re.findall(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)", text or ""):
                if label not in all_labels and label not in labels:
                    fail(f"{rules_path}: {name}: annotation {k}: $labels.{label} is no label "
                         f"of doc/metrics.md nor one Prometheus adds")

    # The tests test this rule file, and every alert both fires and stays quiet.
    files = [os.path.realpath(os.path.join(os.path.dirname(tests_path), p))
             for p in tests.get("rule_files") or []]
    if os.path.realpath(rules_path) not in files:
        fail(f"{tests_path}: rule_files does not name {rules_path}")
    fires, quiet = {}, {}
    names = {a.get("alert") for a in alerts}
    for t in tests.get("tests") or []:
        for case in t.get("alert_rule_test") or []:
            name = case.get("alertname")
            if name not in names:
                fail(f"{tests_path}: test {t.get('name')!r}: no alert {name!r} in the rules")
            target = fires if case.get("exp_alerts") else quiet
            target[name] = target.get(name, 0) + 1
    for name in sorted(names):
        print(f"alert {name}: {fires.get(name, 0)} firing and {quiet.get(name, 0)} quiet test cases")
        if not fires.get(name):
            fail(f"{tests_path}: no test case where {name} fires")
        if not quiet.get(name):
            fail(f"{tests_path}: no test case where {name} does not fire")


# ------------------------------------------------------------------ dashboard

def grafana_to_promql(expr):
    """Grafana's variables replaced by values promtool accepts."""
    expr = re.sub(r"\$__rate_interval|\$\{__rate_interval\}", "5m", expr)
    expr = re.sub(r"\$__interval|\$\{__interval\}", "1m", expr)
    expr = re.sub(r"\$__range|\$\{__range\}", "1h", expr)
    return re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*(:[a-z]+)?\}?", ".*", expr)


def check_dashboard(src, tool):
    doc = parse_doc(os.path.join(src, "doc/metrics.md"))
    self_test(doc)
    path = os.path.join(src, "packaging/grafana/llm-ops.json")
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: not valid JSON: {e}")
        return
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        fail(f"{path}: schemaVersion must be 36 or more, is {dash.get('schemaVersion')!r}")
    for k in ("uid", "title"):
        if not dash.get(k):
            fail(f"{path}: no {k}")

    all_labels = set(TARGET_LABELS) | {"le"}
    for d in doc.values():
        all_labels |= set(d["labels"])
    used = set()
    variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list") or []}
    var_label = {}  # query variable -> the label whose values it holds
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        fail(f"{path}: needs a template variable datasource of type datasource, query prometheus")
    want = {"environment": ("llmops_flag_evaluations_total", "environment"),
            "plugin": ("llmops_tool_up", "plugin")}
    for name, v in variables.items():
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", q or "")
        if not m:
            fail(f"{path}: variable {name}: expected label_values(series, label), got {q!r}")
            continue
        where = f"{path}: variable {name}"
        var_label[name] = m.group(2)
        used |= check_expr(where, m.group(1), doc, counter_rule=False)
        series = scan(m.group(1))[0][0][0] if scan(m.group(1))[0] else None
        if series in doc and m.group(2) not in set(doc[series]["labels"]) | TARGET_LABELS:
            fail(f"{where}: {series} has no label {m.group(2)!r}")
        if name in want and (series, m.group(2)) != want[name]:
            fail(f"{where}: expected label_values({want[name][0]}, {want[name][1]})")
        if (v.get("datasource") or {}).get("uid") not in ("${datasource}", "$datasource"):
            fail(f"{where}: its datasource must be ${{datasource}}")
    for name in want:
        if name not in variables:
            fail(f"{path}: no template variable {name}")

    panels, exprs = [], []

    def walk(ps):
        for p in ps:
            panels.append(p)
            walk(p.get("panels") or [])
    walk(dash.get("panels") or [])
    ids = [p.get("id") for p in panels]
    for dup in sorted({i for i in ids if ids.count(i) > 1}, key=str):
        fail(f"{path}: panel id {dup} is used more than once")
    for p in panels:
        title = p.get("title") or f"panel {p.get('id')}"
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")) or \
                g["x"] < 0 or g["w"] <= 0 or g["x"] + g["w"] > 24:
            fail(f"{path}: {title}: bad gridPos {g}")
        if p.get("type") == "row":
            continue
        if (p.get("datasource") or {}).get("uid") not in ("${datasource}", "$datasource"):
            fail(f"{path}: {title}: its datasource must be ${{datasource}}")
        targets = p.get("targets") or []
        if not targets:
            fail(f"{path}: {title}: no query")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or None in refs:
            fail(f"{path}: {title}: refIds missing or not unique: {refs}")
        for t in targets:
            where = f"{path}: {title} ({t.get('refId')})"
            if (t.get("datasource") or {}).get("uid") not in ("${datasource}", "$datasource", None):
                fail(f"{where}: its datasource must be ${{datasource}}")
            expr = t.get("expr")
            if not expr:
                fail(f"{where}: no expr")
                continue
            used |= check_expr(where, expr, doc)
            exprs.append((where, expr))
            for var in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expr):
                if var not in variables and not var.startswith("__"):
                    fail(f"{where}: ${var} is no template variable of the dashboard: {expr}")
            # A variable's values go to the label they came from (not $plugin to instance).
            try:
                selectors = scan(expr)[0]
            except (ValueError, IndexError):
                selectors = []
            for _, ms, _ in selectors:
                for label, op, value in ms:
                    for var in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", value):
                        if var in var_label and var_label[var] != label:
                            fail(f"{where}: {label}{op}\"{value}\": ${var} holds values of the "
                                 f"label {var_label[var]!r}, not {label!r}: {expr}")
            for label in re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", t.get("legendFormat") or ""):
                if label not in all_labels:
                    fail(f"{where}: legend {{{{{label}}}}}: no such label in doc/metrics.md")
    print(f"dashboard: {len(panels)} panels, {len(exprs)} queries, "
          f"{len(used)} of the {len(doc)} series of doc/metrics.md used")
    for name in sorted(set(doc) - used):
        fail(f"{path}: series {name} of doc/metrics.md is on no panel")

    # PromQL syntax: every query as a recording rule of a generated file, for promtool.
    with tempfile.TemporaryDirectory(prefix="llmops-dashboard.") as tmp:
        rules = os.path.join(tmp, "dashboard.rules.yml")
        with open(rules, "w", encoding="utf-8") as f:
            f.write("# generated from packaging/grafana/llm-ops.json\ngroups:\n"
                    "  - name: dashboard\n    rules:\n")
            for n, (where, expr) in enumerate(exprs):
                f.write(f"      # {where}\n      - record: dashboard:query_{n}:expr\n"
                        f"        expr: {json.dumps(grafana_to_promql(expr))}\n")
        if not run([tool, "check", "rules", rules]):
            fail("a dashboard query is not valid PromQL (the comment above the failing rule "
                 "of the generated file names its panel): promtool check rules failed")
            with open(rules, encoding="utf-8") as f:
                print(f.read())


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("rules", "dashboard"):
        print(__doc__, file=sys.stderr)
        return 2
    src = os.path.abspath(sys.argv[2])
    tool = promtool()
    if sys.argv[1] == "rules":
        check_rules(src, tool)
    else:
        check_dashboard(src, tool)
    if errors:
        print(f"{sys.argv[1]}: FAILED, {len(errors)} problems")
        return 1
    print(f"{sys.argv[1]}: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
