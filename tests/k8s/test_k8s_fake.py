#!/usr/bin/env python3
"""k8s-fake-schema: unit tests of tests/fakes/crd_schema.py (the YAML subset, pruning,
defaulting, validation against the contract's CRDs) and of tests/fakes/k8s_fake.py over HTTP:
the Status shapes the contract records, metadata rules, patches, lists, the simulated
controller's states and the fault injection."""

import os
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

sys.path.insert(0, harness.FAKES)
import crd_schema  # noqa: E402
import k8s_fake  # noqa: E402

CRDS = k8s_fake.default_crd_files()
ISVC_PATH = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"
WF_PATH = "/apis/argoproj.io/v1alpha1/namespaces/default/workflows"
DEP_PATH = "/apis/apps/v1/namespaces/default/deployments"


def isvc(name="llama", **pred):
    p = {"model": {"modelFormat": {"name": "huggingface"}, "storageUri": "hf://org/m"}}
    p.update(pred)
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name}, "spec": {"predictor": p}}


def deployment(name="m1", labels=None):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": "i:1"}]}}}}


class YamlSubset(unittest.TestCase):
    def test_constructs(self):
        text = ("a: 1\nb: -2.5\nc: \"x: y\"\nd: 'it''s'\ne: {}\nf: []\ng:\n- 1\n- two\n"
                "h:\n  - k: v\n    l: [\nx: |-\n  line 1\n  line 2\ny: >-\n  folded\n  text\n"
                "z: plain\n  continued\nn: null\nt: true\n---\nsecond: doc\n")
        with self.assertRaises(ValueError):  # a flow sequence with content is not supported
            crd_schema.load_yaml(text)
        text = text.replace("    l: [\n", "    l: ''\n")
        docs = crd_schema.load_yaml(text)
        self.assertEqual(docs, [{"a": 1, "b": -2.5, "c": "x: y", "d": "it's", "e": {}, "f": [],
                                 "g": [1, "two"], "h": [{"k": "v", "l": ""}],
                                 "x": "line 1\nline 2", "y": "folded text",
                                 "z": "plain continued", "n": None, "t": True},
                                {"second": "doc"}])

    def test_indentless_sequence_and_errors(self):
        self.assertEqual(crd_schema.load_yaml("k:\n- a\n- b\nm: 1\n"),
                         [{"k": ["a", "b"], "m": 1}])
        with self.assertRaises(ValueError):
            crd_schema.load_yaml("a: 1\na: 2\n")
        with self.assertRaises(ValueError):
            crd_schema.load_yaml("a: &anchor 1\n")

    def test_same_as_pyyaml_on_the_contract_crds(self):
        try:
            import yaml
        except ImportError:
            self.skipTest("PyYAML is not installed")
        for path in CRDS:
            with open(path) as f:
                ref = [d for d in yaml.safe_load_all(f) if d is not None]
            self.assertEqual(crd_schema.load_yaml_file(path), ref, path)


class Schema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.crds = crd_schema.load_crds(CRDS)
        cls.isvc = cls.crds[("serving.kserve.io", "inferenceservices")]
        cls.wf = cls.crds[("argoproj.io", "workflows")]

    def test_names(self):
        self.assertEqual((self.isvc.kind, self.isvc.plural, self.isvc.short_names,
                          self.isvc.storage_version), ("InferenceService", "inferenceservices",
                                                       ["isvc"], "v1beta1"))
        self.assertTrue(self.isvc.has_status_subresource())
        self.assertFalse(self.wf.has_status_subresource())

    def test_missing_predictor_and_type_errors(self):
        self.assertEqual(self.isvc.validate({"spec": {}}),
                         [("FieldValueRequired", "spec.predictor", "Required value")])
        o = isvc(minReplicas="x")
        o["spec"]["canary"] = [{"predictor": isvc()["spec"]["predictor"], "trafficPercent": 101}]
        errs = self.isvc.validate(o)
        self.assertIn(("FieldValueTypeInvalid", "spec.predictor.minReplicas",
                       'Invalid value: "string": spec.predictor.minReplicas in body must be of '
                       'type integer: "string"'), errs)
        self.assertIn(("FieldValueInvalid", "spec.canary[0].trafficPercent",
                       "Invalid value: 101: spec.canary[0].trafficPercent in body should "
                       "be less than or equal to 100"), errs)
        self.assertEqual([e[1] for e in errs], sorted(e[1] for e in errs))

    def test_enum_and_int_or_string(self):
        o = isvc()
        o["spec"]["predictor"]["model"]["resources"] = {"limits": {"nvidia.com/gpu": 1,
                                                                   "cpu": "8"}}
        self.assertEqual(self.isvc.validate(o), [])
        o["spec"]["predictor"]["model"]["resources"]["limits"]["cpu"] = True
        errs = self.isvc.validate(o)
        self.assertEqual([e[:2] for e in errs],
                         [("FieldValueTypeInvalid", "spec.predictor.model.resources.limits[cpu]")])
        o = isvc()
        o["spec"]["predictor"]["model"]["ports"] = [{"containerPort": 8080, "protocol": "TCP"},
                                                    {"containerPort": 8080, "protocol": "TCP"}]
        self.assertEqual([e[0] for e in self.isvc.validate(o)], ["FieldValueDuplicate"])
        o = isvc(scaleMetric="bogus")
        errs = self.isvc.validate(o)
        self.assertEqual(errs[0][:2], ("FieldValueNotSupported", "spec.predictor.scaleMetric"))
        self.assertTrue(errs[0][2].startswith('Unsupported value: "bogus": supported values: '
                                              '"cpu", "memory"'), errs[0][2])

    def test_pruning_and_defaults(self):
        o = isvc(bogusField=1)
        o["metadata"]["junk"] = 2
        o["spec"]["predictor"]["model"]["ports"] = [{"containerPort": 8080}]
        o["spec"]["extra"] = {"x": 1}
        dropped = self.isvc.prune(o)
        self.assertEqual(dropped, ["metadata.junk", "spec.extra", "spec.predictor.bogusField"])
        self.assertNotIn("bogusField", o["spec"]["predictor"])
        self.isvc.default(o)
        self.assertEqual(o["spec"]["predictor"]["model"]["ports"][0]["protocol"], "TCP")
        st = {"status": {"anything": {"goes": 1}}}
        self.assertEqual(self.isvc.prune(st), [], "status preserves unknown fields")

    def test_workflow_is_barely_checked(self):
        md = {"name": "w"}
        self.assertEqual(self.wf.validate({"metadata": md,
                                           "spec": {"anything": [1, {"x": None}]}}), [])
        self.assertEqual(self.wf.validate({"metadata": md}),
                         [("FieldValueRequired", "spec", "Required value")])
        self.assertEqual(self.wf.validate({"metadata": md, "spec": "x"})[0][:2],
                         ("FieldValueTypeInvalid", "spec"))
        w = {"spec": {"a": {"b": 1}}, "status": {"phase": "Running"}, "other": 1}
        self.assertEqual(self.wf.prune(w), ["other"])


# what `kubectl create service clusterip web --tcp=80:8080` (v1.32) sends
SERVICE_PB = bytes.fromhex(
    "6b3873000a0d0a02763112075365727669636512690a1f0a0377656212001a0022002a003200380042005a0a"
    "0a03617070120377656212420a1b0a0738302d38303830120354435018502207080010903f1a002800120a0a"
    "0361707012037765621a002209436c757374657249503a00420052005a00600068001a020a001a002200")


class Protobuf(unittest.TestCase):
    def test_service_from_kubectl(self):
        class Kind:
            group, plural = "", "services"
        self.assertEqual(k8s_fake.decode_protobuf(SERVICE_PB, Kind), {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80,
                                "targetPort": 8080}],
                     "selector": {"app": "web"}, "type": "ClusterIP"}})
        Kind.plural = "pods"
        with self.assertRaises(ValueError):
            k8s_fake.decode_protobuf(SERVICE_PB, Kind)
        with self.assertRaises(ValueError):
            k8s_fake.decode_protobuf(b"k8s\x00\x0a\xff", Kind)


class Http(unittest.TestCase):
    """The fake over plain HTTP (the token still required)."""

    @classmethod
    def setUpClass(cls):
        cls.fake = harness.Fake(tls=False).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.fake.__exit__(None, None, None)

    def setUp(self):
        self.req = self.fake.json

    def test_auth_and_public_paths(self):
        st, _, body = self.req("GET", "/api", token=False)
        self.assertEqual(st, 401)
        self.assertEqual(body, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "message": "Unauthorized",
                                "reason": "Unauthorized", "code": 401})
        st, _, body = self.req("GET", "/api", headers={"Authorization": "Bearer bad"},
                               token=False)
        self.assertEqual(st, 401)
        st, _, body = self.req("GET", "/version", token=False)
        self.assertEqual((st, body["gitVersion"]), (200, "v1.32.4"))
        st, hs, raw = self.fake.request("GET", "/healthz", token=False)
        self.assertEqual((st, raw), (200, b"ok"))

    def test_discovery_documents(self):
        agg = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList," \
              "application/json"
        st, hs, body = self.req("GET", "/apis", headers={"Accept": agg})
        self.assertEqual(st, 200)
        self.assertEqual(hs["Content-Type"], "application/json",
                         "the plain answer that makes client-go fall back")
        self.assertEqual(body["kind"], "APIGroupList")
        groups = {g["name"]: g for g in body["groups"]}
        self.assertEqual(groups["serving.kserve.io"]["preferredVersion"],
                         {"groupVersion": "serving.kserve.io/v1beta1", "version": "v1beta1"})
        self.assertEqual(sorted(groups), ["apps", "argoproj.io", "autoscaling", "batch",
                                          "serving.kserve.io"])
        st, _, body = self.req("GET", "/api")
        self.assertEqual((body["kind"], body["versions"]), ("APIVersions", ["v1"]))
        st, _, body = self.req("GET", "/api/v1")
        self.assertEqual(body["kind"], "APIResourceList")
        self.assertNotIn("apiVersion", body, "the core group's list has no apiVersion")
        names = [r["name"] for r in body["resources"]]
        self.assertIn("pods/log", names)
        st, _, body = self.req("GET", "/apis/apps/v1")
        self.assertEqual((body["apiVersion"], body["groupVersion"]), ("v1", "apps/v1"))
        dep = next(r for r in body["resources"] if r["name"] == "deployments")
        self.assertEqual((dep["kind"], dep["namespaced"], dep["shortNames"]),
                         ("Deployment", True, ["deploy"]))
        scale = next(r for r in body["resources"] if r["name"] == "deployments/scale")
        self.assertEqual((scale["group"], scale["version"], scale["kind"]),
                         ("autoscaling", "v1", "Scale"))
        st, _, body = self.req("GET", "/apis/autoscaling")
        self.assertEqual((body["kind"], body["name"]), ("APIGroup", "autoscaling"))
        st, hs, raw = self.fake.request("GET", "/apis/not.installed/v1")
        self.assertEqual((st, raw), (404, b"404 page not found\n"))
        self.assertTrue(hs["Content-Type"].startswith("text/plain"))
        st, _, body = self.req("GET", "/openapi/v3")
        self.assertIn("apis/serving.kserve.io/v1beta1", body["paths"])
        url = body["paths"]["apis/apps/v1"]["serverRelativeURL"]
        st, _, body = self.req("GET", url)
        patch = body["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
        self.assertIn("fieldValidation", [p["name"] for p in patch["parameters"]])

    def test_create_conflicts_and_errors(self):
        st, hs, body = self.req("POST", ISVC_PATH, isvc("c1", bogusField=1))
        self.assertEqual(st, 201)
        self.assertEqual(hs.get_all("Warning"),
                         ['299 - "unknown field \\"spec.predictor.bogusField\\""'])
        md = body["metadata"]
        self.assertEqual((md["generation"], md["namespace"]), (1, "default"))
        self.assertRegex(md["creationTimestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertNotIn("bogusField", body["spec"]["predictor"])
        st, _, body = self.req("POST", ISVC_PATH, isvc("c1"))
        self.assertEqual((st, body["reason"], body["message"]),
                         (409, "AlreadyExists",
                          'inferenceservices.serving.kserve.io "c1" already exists'))
        self.assertEqual(body["details"], {"name": "c1", "group": "serving.kserve.io",
                                           "kind": "inferenceservices"})
        bad = isvc("c2", minReplicas="x")
        del bad["spec"]["predictor"]["model"]
        bad["spec"]["predictor"]["maxReplicas"] = "y"
        st, _, body = self.req("POST", ISVC_PATH, bad)
        self.assertEqual((st, body["reason"], body["details"]["kind"]),
                         (422, "Invalid", "InferenceService"))
        self.assertEqual(len(body["details"]["causes"]), 2)
        self.assertRegex(body["message"], r'^InferenceService.serving.kserve.io "c2" is invalid: '
                                          r'\[spec.predictor.maxReplicas: .*, '
                                          r'spec.predictor.minReplicas: .*\]$')
        st, _, body = self.req("POST", ISVC_PATH + "?fieldValidation=Strict",
                               isvc("c3", bogusField=1))
        self.assertEqual((st, body["reason"]), (400, "BadRequest"))
        st, _, body = self.req("POST", ISVC_PATH, dict(isvc("Bad_Name")))
        self.assertEqual(body["details"]["causes"][0]["field"], "metadata.name")
        st, _, body = self.req("POST", WF_PATH, {"apiVersion": "argoproj.io/v1alpha1",
                                                 "kind": "Workflow", "metadata": {"name": "w"}})
        self.assertEqual(st, 422)
        self.assertEqual([(c["reason"], c["field"]) for c in body["details"]["causes"]],
                         [("FieldValueRequired", "spec"), ("FieldValueInvalid", "<nil>")])
        st, _, body = self.req("POST", "/api/v1/namespaces/default/pods", b"k8s\x00\x0a\x01",
                               {"Content-Type": "application/vnd.kubernetes.protobuf"})
        self.assertEqual((st, body["reason"]), (415, "UnsupportedMediaType"))
        st, _, body = self.req("POST", ISVC_PATH, b"{not json")
        self.assertEqual((st, body["reason"]), (400, "BadRequest"))
        obj = isvc("c4")
        obj["apiVersion"] = "serving.kserve.io/v1alpha1"
        st, _, body = self.req("POST", ISVC_PATH, obj)
        self.assertEqual((st, body["reason"]), (400, "BadRequest"))
        st, _, body = self.req("POST", "/apis/serving.kserve.io/v1beta1/namespaces/nope/"
                                       "inferenceservices", isvc("c5"))
        self.assertEqual((st, body["message"], body["details"]),
                         (404, 'namespaces "nope" not found',
                          {"name": "nope", "kind": "namespaces"}))
        st, _, body = self.req("POST", ISVC_PATH + "?dryRun=All", isvc("dry"))
        self.assertEqual(st, 201)
        st, _, _ = self.req("GET", ISVC_PATH + "/dry")
        self.assertEqual(st, 404, "dryRun stores nothing")

    def test_update_patch_generation_and_status(self):
        st, _, o = self.req("POST", ISVC_PATH, isvc("u1"))
        rv1 = o["metadata"]["resourceVersion"]
        merge = {"Content-Type": "application/merge-patch+json"}
        st, _, o = self.req("PATCH", ISVC_PATH + "/u1", {"metadata": {"labels": {"a": "b"}}},
                            merge)
        self.assertEqual((st, o["metadata"]["generation"]), (200, 1), "metadata: no bump")
        self.assertGreater(int(o["metadata"]["resourceVersion"]), int(rv1))
        st, _, o = self.req("PATCH", ISVC_PATH + "/u1",
                            {"spec": {"predictor": {"minReplicas": 3}}}, merge)
        self.assertEqual(o["metadata"]["generation"], 2)
        st, _, same = self.req("PATCH", ISVC_PATH + "/u1",
                               {"spec": {"predictor": {"minReplicas": 3}}}, merge)
        self.assertEqual(same["metadata"]["resourceVersion"], o["metadata"]["resourceVersion"],
                         "a no-op patch keeps the resourceVersion")
        st, _, body = self.req("PATCH", ISVC_PATH + "/u1", {"spec": {}},
                               {"Content-Type": "application/strategic-merge-patch+json"})
        self.assertEqual((st, body["reason"]), (415, "UnsupportedMediaType"))
        st, _, o = self.req("PATCH", ISVC_PATH + "/u1/status",
                            {"status": {"url": "http://x"}, "spec": {"predictor": None}}, merge)
        self.assertEqual((st, o["status"]["url"], o["metadata"]["generation"]), (200, "http://x",
                                                                                 2))
        self.assertIn("predictor", o["spec"], "the status subresource leaves spec alone")
        o["status"] = {"url": "http://ignored"}
        o["spec"]["predictor"]["minReplicas"] = 4
        st, _, o2 = self.req("PUT", ISVC_PATH + "/u1", o)
        self.assertEqual((st, o2["status"]["url"]), (200, "http://x"),
                         "the main resource ignores status")
        st, _, body = self.req("PUT", ISVC_PATH + "/u1", o)
        self.assertEqual((st, body["reason"]), (409, "Conflict"))
        self.assertEqual(body["message"], 'Operation cannot be fulfilled on '
                         'inferenceservices.serving.kserve.io "u1": the object has been '
                         'modified; please apply your changes to the latest version and try '
                         'again')
        st, _, o3 = self.req("PATCH", ISVC_PATH + "/u1",
                             [{"op": "remove", "path": "/spec/predictor/minReplicas"}],
                             {"Content-Type": "application/json-patch+json"})
        self.assertNotIn("minReplicas", o3["spec"]["predictor"])
        st, _, o = self.req("POST", DEP_PATH, deployment("u2"))
        st, _, o = self.req("PATCH", DEP_PATH + "/u2", {"spec": {"template": {"spec": {
            "containers": [{"name": "side", "image": "s:1"}]}}}},
            {"Content-Type": "application/strategic-merge-patch+json"})
        self.assertEqual([c["name"] for c in o["spec"]["template"]["spec"]["containers"]],
                         ["main", "side"], "strategic merge appends by merge key")
        st, _, body = self.req("PATCH", DEP_PATH + "/u2", {"spec": {"selector": {
            "matchLabels": {"app": "other"}}}}, merge)
        self.assertEqual(st, 422)
        self.assertEqual(sorted(c["field"] for c in body["details"]["causes"]),
                         ["spec.selector", "spec.template.metadata.labels"])

    def test_pod_replace_as_written(self):
        """A PUT of the manifest as written (without the server's defaults) may change an
        image and nothing else, as a real apiserver's pod update validation."""
        pods = "/api/v1/namespaces/default/pods"
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rp"},
               "spec": {"containers": [{"name": "m", "image": "a:1"}]}}
        self.assertEqual(self.req("POST", pods, pod)[0], 201)
        pod["spec"]["containers"][0]["image"] = "a:2"
        st, _, body = self.req("PUT", pods + "/rp", pod)
        self.assertEqual((st, body["spec"]["containers"][0]["image"],
                          body["spec"]["dnsPolicy"]), (200, "a:2", "ClusterFirst"))
        pod["spec"]["containers"][0]["name"] = "other"
        st, _, body = self.req("PUT", pods + "/rp", pod)
        self.assertEqual((st, body["details"]["causes"][0]["reason"]),
                         (422, "FieldValueForbidden"))

    def test_lists_selectors_paging(self):
        for n, tier in (("l1", "a"), ("l2", "b"), ("l3", "a")):
            self.req("POST", DEP_PATH, deployment(n, {"app": "lst", "tier": tier}))
        st, _, body = self.req("GET", DEP_PATH + "?labelSelector=app%3Dlst%2Ctier%20in%20(a)")
        self.assertEqual((body["kind"], body["apiVersion"]), ("DeploymentList", "apps/v1"))
        self.assertEqual([i["metadata"]["name"] for i in body["items"]], ["l1", "l3"])
        self.assertTrue(all(i["kind"] == "Deployment" for i in body["items"]))
        st, _, p1 = self.req("GET", DEP_PATH + "?labelSelector=app%3Dlst&limit=2")
        self.assertEqual(len(p1["items"]), 2)
        self.assertEqual(p1["metadata"]["remainingItemCount"], 1)
        st, _, p2 = self.req("GET", DEP_PATH + "?labelSelector=app%3Dlst&limit=2&continue="
                             + p1["metadata"]["continue"])
        self.assertEqual([i["metadata"]["name"] for i in p2["items"]], ["l3"])
        self.assertNotIn("continue", p2["metadata"])
        st, _, body = self.req("GET", DEP_PATH + "?continue=garbage")
        self.assertEqual((st, body["reason"]), (400, "BadRequest"))
        st, _, body = self.req("GET", "/apis/apps/v1/deployments?fieldSelector=metadata.name%3Dl2")
        self.assertEqual([i["metadata"]["name"] for i in body["items"]], ["l2"])
        st, _, t = self.req("GET", DEP_PATH + "?labelSelector=app%3Dlst", headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
        self.assertEqual((t["kind"], t["apiVersion"]), ("Table", "meta.k8s.io/v1"))
        self.assertEqual([c["name"] for c in t["columnDefinitions"]],
                         ["Name", "Ready", "Up-to-date", "Available", "Age"])
        self.assertEqual(t["rows"][0]["object"]["kind"], "PartialObjectMetadata")
        st, _, body = self.req("DELETE", DEP_PATH + "?labelSelector=app%3Dlst")
        self.assertEqual(len(body["items"]), 3)

    def test_delete_shapes_and_finalizers(self):
        st, _, o = self.req("POST", ISVC_PATH, isvc("d1"))
        st, _, body = self.req("DELETE", ISVC_PATH + "/d1")
        self.assertEqual(body, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Success", "details": {
                                    "name": "d1", "group": "serving.kserve.io",
                                    "kind": "inferenceservices", "uid": o["metadata"]["uid"]}})
        st, _, body = self.req("DELETE", ISVC_PATH + "/d1")
        self.assertEqual((st, body["reason"]), (404, "NotFound"))
        obj = isvc("d2")
        obj["metadata"]["finalizers"] = ["serving.kserve.io/cleanup"]
        self.req("POST", ISVC_PATH, obj)
        st, _, body = self.req("DELETE", ISVC_PATH + "/d2")
        self.assertEqual(st, 200)
        self.assertIn("deletionTimestamp", body["metadata"])
        st, _, body = self.req("GET", ISVC_PATH + "/d2")
        self.assertEqual(st, 200, "a finalizer keeps it")
        st, _, body = self.req("PATCH", ISVC_PATH + "/d2", {"metadata": {"finalizers": None}},
                               {"Content-Type": "application/merge-patch+json"})
        st, _, body = self.req("GET", ISVC_PATH + "/d2")
        self.assertEqual(st, 404, "gone once the finalizer is removed")

    def test_generate_name_and_pod_logs(self):
        st, _, o = self.req("POST", WF_PATH, {"apiVersion": "argoproj.io/v1alpha1",
                                              "kind": "Workflow",
                                              "metadata": {"generateName": "ft-"},
                                              "spec": {"entrypoint": "main"}})
        self.assertRegex(o["metadata"]["name"], r"^ft-[bcdfghjklmnpqrstvwxz2456789]{5}$")
        pods = "/api/v1/namespaces/default/pods"
        self.req("POST", pods, {"metadata": {"name": "lp", "annotations": {
            "fake.llm-ops/polls": "5"}}, "spec": {"containers": [
                {"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}})
        st, _, body = self.req("GET", pods + "/lp/log")
        self.assertEqual((st, body["message"]), (400, "a container name must be specified for "
                                                      "pod lp, choose one of: [a b]"))
        st, _, body = self.req("GET", pods + "/lp/log?container=a")
        self.assertEqual(body["message"], 'container "a" in pod "lp" is waiting to start: '
                                          'ContainerCreating')
        self.req("POST", "/_logs", {"namespace": "default", "pod": "lp", "container": "b",
                                    "lines": ["x1", "x2", "x3"]})
        st, hs, raw = self.fake.request("GET", pods + "/lp/log?container=b&tailLines=2")
        self.assertEqual((st, raw, hs["Content-Type"]), (200, b"x2\nx3\n", "text/plain"))
        st, _, body = self.req("GET", pods + "/lp/log?container=zz")
        self.assertEqual(body["message"], "container zz is not valid for pod lp")

    def test_faults(self):
        path = ISVC_PATH + "/f1"
        self.req("POST", "/_faults", {"path": path, "responses": [
            {"status": 429, "retry_after": 2}, {"status": 503}, {"delay_ms": 300, "pass": True},
            {"drop": True}]})
        st, hs, body = self.req("GET", path)
        self.assertEqual((st, hs["Retry-After"], body["reason"], body["details"]),
                         (429, "2", "TooManyRequests", {"retryAfterSeconds": 2}))
        st, _, body = self.req("GET", path)
        self.assertEqual((st, body["reason"], body["kind"]), (503, "ServiceUnavailable", "Status"))
        t = time.monotonic()
        st, _, body = self.req("GET", path)
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        self.assertEqual((st, body["reason"]), (404, "NotFound"))
        with self.assertRaises(Exception):
            self.fake.request("GET", path)
        self.req("POST", "/_faults", {"path": ISVC_PATH, "responses": [{"lost": True}]})
        with self.assertRaises(Exception):
            self.fake.request("POST", ISVC_PATH, isvc("lost1"))
        st, _, _ = self.req("GET", ISVC_PATH + "/lost1")
        self.assertEqual(st, 200, "the write happened although its answer was lost")

    def test_zz_refuse_last(self):
        self.req("POST", "/_refuse", {"seconds": 2})
        refused, deadline = False, time.monotonic() + 1.5
        while not refused and time.monotonic() < deadline:
            s = socket.socket()
            s.settimeout(1)
            try:
                s.connect(("127.0.0.1", self.fake.port))
                time.sleep(0.05)  # still listening: the refusal takes a moment to begin
            except OSError:
                refused = True
            finally:
                s.close()
        self.assertTrue(refused, "connections refused during /_refuse")
        st = None
        for _ in range(100):
            time.sleep(0.1)
            try:
                st, _, _ = self.req("GET", "/version", token=False)
                break
            except OSError:
                continue
        self.assertEqual(st, 200, "listening again after the refusal")


class Controller(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = harness.Fake(tls=False, token=None).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.fake.__exit__(None, None, None)

    def get(self, path):
        st, _, o = self.fake.json("GET", path)
        self.assertEqual(st, 200)
        return o

    @staticmethod
    def cond(o, t):
        return next((c for c in (o.get("status") or {}).get("conditions") or []
                     if c["type"] == t), {})

    def test_isvc_ready_after_polls_serverless(self):
        obj = isvc("r1")
        obj["metadata"]["annotations"] = {"fake.llm-ops/polls": "3"}
        st, _, o = self.fake.json("POST", ISVC_PATH, obj)
        self.assertEqual(self.cond(o, "Ready")["status"], "Unknown")
        self.assertEqual(o["status"]["modelStatus"]["transitionStatus"], "InProgress")
        for _ in range(2):
            self.assertEqual(self.cond(self.get(ISVC_PATH + "/r1"), "Ready")["status"],
                             "Unknown")
        o = self.get(ISVC_PATH + "/r1")
        self.assertEqual(self.cond(o, "Ready")["status"], "True")
        s = o["status"]
        self.assertEqual((s["url"], s["address"]["url"], s["deploymentMode"],
                          s["observedGeneration"]),
                         ("http://r1.default.example.com",
                          "http://r1.default.svc.cluster.local", "Serverless", 1))
        self.assertEqual(s["components"]["predictor"]["traffic"],
                         [{"latestRevision": True, "percent": 100,
                           "revisionName": "r1-predictor-00001"}])
        self.assertEqual(sorted(c["type"] for c in s["conditions"]),
                         ["IngressReady", "LatestDeploymentReady", "PredictorConfigurationReady",
                          "PredictorReady", "PredictorRouteReady", "Ready", "RoutesReady"])
        self.assertEqual(s["modelStatus"]["transitionStatus"], "UpToDate")

    def test_isvc_failed_and_stuck_and_raw(self):
        self.fake.json("POST", "/_controller", {"namespace": "default",
                                                "plural": "inferenceservices", "name": "f1",
                                                "outcome": "failed", "polls": 1,
                                                "message": "OOMKilled"})
        self.fake.json("POST", ISVC_PATH, isvc("f1"))
        o = self.get(ISVC_PATH + "/f1")
        ready = self.cond(o, "Ready")
        self.assertEqual((ready["status"], ready["reason"], ready["message"]),
                         ("False", "RevisionFailed", "OOMKilled"))
        self.assertEqual(o["status"]["modelStatus"]["transitionStatus"], "BlockedByFailedLoad")
        self.assertEqual(o["status"]["modelStatus"]["lastFailureInfo"]["message"], "OOMKilled")
        obj = isvc("s1")
        obj["metadata"]["annotations"] = {"fake.llm-ops/outcome": "stuck"}
        self.fake.json("POST", ISVC_PATH, obj)
        for _ in range(6):
            o = self.get(ISVC_PATH + "/s1")
        self.assertEqual(self.cond(o, "Ready")["status"], "Unknown")
        obj = isvc("raw1")
        obj["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "RawDeployment",
                                          "fake.llm-ops/polls": "1"}
        self.fake.json("POST", ISVC_PATH, obj)
        o = self.get(ISVC_PATH + "/raw1")
        self.assertEqual((o["status"]["url"], o["status"]["deploymentMode"]),
                         ("http://raw1-default.example.com", "RawDeployment"))
        self.assertNotIn("traffic", o["status"]["components"]["predictor"])

    def test_isvc_new_generation_rolls_out_with_canary(self):
        obj = isvc("c1")
        obj["metadata"]["annotations"] = {"fake.llm-ops/polls": "1"}
        self.fake.json("POST", ISVC_PATH, obj)
        self.get(ISVC_PATH + "/c1")
        self.fake.json("PATCH", ISVC_PATH + "/c1", {"spec": {"predictor": {
            "canaryTrafficPercent": 10}}}, {"Content-Type": "application/merge-patch+json"})
        st, _, o = self.fake.json("GET", "/_state")
        o = o["serving.kserve.io/inferenceservices"]["default/c1"]
        self.assertEqual(o["status"]["modelStatus"]["transitionStatus"], "InProgress")
        o = self.get(ISVC_PATH + "/c1")
        p = o["status"]["components"]["predictor"]
        self.assertEqual(o["status"]["observedGeneration"], 2)
        self.assertEqual([(t["revisionName"], t["percent"], t.get("tag")) for t in p["traffic"]],
                         [("c1-predictor-00002", 10, "latest"), ("c1-predictor-00001", 90,
                                                                 "prev")])

    def test_deployment_job_pod_workflow_outcomes(self):
        self.fake.json("POST", "/_controller", {"polls": 1})
        d = deployment("dfail")
        d["metadata"]["annotations"] = {"fake.llm-ops/outcome": "failed"}
        self.fake.json("POST", DEP_PATH, d)
        o = self.get(DEP_PATH + "/dfail")
        self.assertEqual(self.cond(o, "Progressing")["reason"], "ProgressDeadlineExceeded")
        self.fake.json("POST", DEP_PATH, deployment("dok"))
        o = self.get(DEP_PATH + "/dok")
        self.assertEqual((o["status"]["readyReplicas"], self.cond(o, "Available")["status"]),
                         (1, "True"))
        self.fake.json("POST", "/apis/batch/v1/namespaces/default/jobs", {
            "metadata": {"name": "j"}, "spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "m", "image": "x"}]}}}})
        o = self.get("/apis/batch/v1/namespaces/default/jobs/j")
        self.assertEqual((o["status"]["succeeded"], self.cond(o, "Complete")["status"]),
                         (1, "True"))
        self.assertEqual(o["spec"]["template"]["metadata"]["labels"]["job-name"], "j")
        wf = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
              "metadata": {"name": "wf1", "annotations": {"fake.llm-ops/polls": "2"}},
              "spec": {"entrypoint": "main", "templates": [{"name": "main",
                                                            "container": {"image": "x"}}]}}
        self.fake.json("POST", WF_PATH, wf)
        o = self.get(WF_PATH + "/wf1")
        self.assertEqual(o["status"]["phase"], "Running")
        o = self.get(WF_PATH + "/wf1")
        self.assertEqual((o["status"]["phase"], o["status"]["progress"]), ("Succeeded", "1/1"))
        self.assertGreater(o["metadata"]["generation"], 1, "no status subresource: bumps")
        pods = [n for n in o["status"]["nodes"].values() if n["type"] == "Pod"]
        self.assertEqual(pods[0]["podName"].split("-")[:2], ["wf1", "main"])
        wf["metadata"] = {"name": "wf2", "annotations": {"fake.llm-ops/outcome": "stuck"}}
        self.fake.json("POST", WF_PATH, wf)
        self.get(WF_PATH + "/wf2")
        self.fake.json("PATCH", WF_PATH + "/wf2", {"spec": {"shutdown": "Terminate"}},
                       {"Content-Type": "application/merge-patch+json"})
        o = self.get(WF_PATH + "/wf2")
        self.assertEqual((o["status"]["phase"], o["status"]["message"]),
                         ("Failed", "Stopped with strategy 'Terminate'"))
        self.fake.json("POST", "/_controller", {"polls": 2})


if __name__ == "__main__":
    unittest.main(verbosity=2)
