#!/usr/bin/env python3
"""rayserve-fake: tests/fakes/rayserve_fake.py over HTTP — ServeDeploySchema validation (400
with pydantic's ValidationError repr), the ServeInstanceDetails shape, the application
lifecycle DEPLOYING -> RUNNING | DEPLOY_FAILED | UNHEALTHY, declarative deletion (DELETING),
DELETE shutting Serve down, and the faults."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

APPS = "/api/serve/applications/"


def app(name="llm", prefix="/llm", **extra):
    a = {"name": name, "route_prefix": prefix, "import_path": "serve_llm:app",
         "runtime_env": {"pip": ["vllm"], "env_vars": {"MODEL_ID": "gpt2"}},
         "deployments": [{"name": "LLMServer", "num_replicas": 1,
                          "ray_actor_options": {"num_gpus": 1}}]}
    a.update(extra)
    return a


class RayServe(unittest.TestCase):
    def setUp(self):
        self.fake = harness.Fake("rayserve_fake.py", tls=False, token=None).__enter__()

    def tearDown(self):
        self.fake.__exit__(None, None, None)

    def put(self, apps, **top):
        body = dict({"applications": apps}, **top)
        return self.fake.request("PUT", APPS, body)

    def details(self):
        st, hs, body = self.fake.json("GET", APPS)
        self.assertEqual((st, hs["Content-Type"].split(";")[0]), (200, "application/json"))
        return body

    def test_empty_before_the_first_put(self):
        self.assertEqual(self.details(), {"deploy_mode": "MULTI_APP", "controller_info": {},
                                          "proxies": {}, "applications": {},
                                          "target_capacity": None})
        st, _, body = self.fake.json("GET", "/api/version")
        self.assertEqual((st, body["version"]), (200, "4"))
        st, _, raw = self.fake.request("GET", "/api/serve/nothing")
        self.assertEqual((st, raw), (404, b"404: Not Found"))

    def test_lifecycle_running(self):
        st, hs, raw = self.put([app()])
        self.assertEqual((st, raw), (200, b""))
        d = self.details()
        self.assertEqual(sorted(d), ["applications", "controller_info", "deploy_mode",
                                     "grpc_options", "http_options", "proxies",
                                     "proxy_location", "target_capacity", "target_groups"])
        a = d["applications"]["llm"]
        self.assertEqual((a["status"], a["route_prefix"], a["source"]),
                         ("DEPLOYING", "/llm", "declarative"))
        dep = a["deployments"]["LLMServer"]
        self.assertEqual((dep["status"], dep["replicas"][0]["state"]), ("UPDATING", "STARTING"))
        self.assertEqual(a["deployed_app_config"], app())
        a = self.details()["applications"]["llm"]
        self.assertEqual(a["status"], "RUNNING")
        dep = a["deployments"]["LLMServer"]
        self.assertEqual((dep["status"], dep["status_trigger"], dep["target_num_replicas"],
                          dep["deployment_config"]["ray_actor_options"]["num_gpus"],
                          dep["required_resources"]),
                         ("HEALTHY", "CONFIG_UPDATE_COMPLETED", 1, 1, {"CPU": 1.0, "GPU": 1}))
        self.assertEqual(dep["replicas"][0]["state"], "RUNNING")
        self.assertEqual(d["http_options"]["port"], 8000)
        # the same config again changes nothing; a changed one deploys again
        self.put([app()])
        self.assertEqual(self.details()["applications"]["llm"]["status"], "RUNNING")
        self.put([app(args={"x": 1})])
        self.assertEqual(self.details()["applications"]["llm"]["status"], "DEPLOYING")

    def test_declarative_delete_and_shutdown(self):
        self.put([app(), app("emb", "/emb")])
        self.details()
        self.details()
        self.put([app()])
        apps = self.details()["applications"]
        self.assertEqual(apps["emb"]["status"], "DELETING")
        self.assertNotIn("emb", self.details()["applications"])
        st, _, raw = self.fake.request("DELETE", APPS)
        self.assertEqual((st, raw), (200, b""))
        self.assertEqual(self.details()["applications"], {})
        self.assertEqual(self.details()["controller_info"], {})

    def test_failed_unhealthy_stuck(self):
        self.fake.json("POST", "/_app", {"name": "bad", "outcome": "deploy_failed", "polls": 1})
        self.put([app("bad", "/bad"), app("sick", "/sick", runtime_env={"env_vars": {
            "FAKE_LLMOPS_OUTCOME": "unhealthy", "FAKE_LLMOPS_POLLS": "1"}}),
            app("slow", "/slow", runtime_env={"env_vars": {"FAKE_LLMOPS_OUTCOME": "stuck"}})])
        apps = self.details()["applications"]
        self.assertEqual(apps["bad"]["status"], "DEPLOY_FAILED")
        self.assertIn("ModuleNotFoundError: No module named 'serve_llm'", apps["bad"]["message"])
        self.assertEqual(apps["bad"]["deployments"]["LLMServer"]["status"], "DEPLOY_FAILED")
        self.assertEqual(apps["sick"]["status"], "RUNNING")
        apps = self.details()["applications"]
        self.assertEqual(apps["sick"]["status"], "UNHEALTHY")
        self.assertEqual(apps["sick"]["deployments"]["LLMServer"]["status_trigger"],
                         "HEALTH_CHECK_FAILED")
        for _ in range(4):
            apps = self.details()["applications"]
        self.assertEqual(apps["slow"]["status"], "DEPLOYING")

    def test_validation(self):
        cases = [
            ({"applications": [{"name": "x"}]},
             "{'loc': ('applications', 0, 'import_path'), 'msg': 'field required', "
             "'type': 'value_error.missing'}"),
            ({"applications": [app(), app()]}, "Found multiple configs for application 'llm'"),
            ({"applications": [app(prefix="llm")]}, "The route_prefix must start with a forward"),
            ({"applications": [app(import_path="nodots")]}, 'Got invalid import path "nodots"'),
            ({"applications": [app(deployments=[{"name": "D", "num_replicas": 0}])]},
             "ensure this value is greater than 0"),
            ({"applications": [app()], "proxy_location": "Everywhere"},
             "value is not a valid enumeration member"),
            ({}, "{'loc': ('applications',), 'msg': 'field required'"),
        ]
        for body, needle in cases:
            st, hs, raw = self.fake.request("PUT", APPS, body)
            text = raw.decode()
            self.assertEqual(st, 400, body)
            self.assertTrue(text.startswith("ValidationError(model='ServeDeploySchema', errors=["),
                            text)
            self.assertIn(needle, text)
            self.assertTrue(hs["Content-Type"].startswith("text/plain"))
        st, _, _ = self.fake.request("PUT", APPS, b"{oops")
        self.assertEqual(st, 500)
        st, _, raw = self.fake.request("GET", APPS + "?api_type=bogus")
        self.assertEqual(st, 400)
        self.assertEqual(self.details()["applications"], {}, "nothing was deployed")
        st, _, _ = self.put([app(num_replicas="auto")], proxy_location="HeadOnly")
        self.assertEqual(st, 200)

    def test_faults(self):
        self.fake.json("POST", "/_faults", {"path": APPS, "responses": [
            {"status": 503, "body": "Failed to get a response from the controller. The GCS may "
                                    "be down, please retry later: ..."},
            {"lost": True}]})
        st, _, raw = self.fake.request("GET", APPS)
        self.assertEqual(st, 503)
        self.assertTrue(raw.startswith(b"Failed to get a response from the controller."))
        with self.assertRaises(Exception):
            self.put([app()])
        st, _, state = self.fake.json("GET", "/_state")
        self.assertIn("llm", state["apps"], "the lost PUT was applied")


if __name__ == "__main__":
    unittest.main(verbosity=2)
