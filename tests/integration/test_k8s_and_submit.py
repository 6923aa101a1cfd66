"""Cluster state validates strictly offline; submission speaks the Argo Server API correctly."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.helpers import run_pipeline_cli
from tests.strict import REPO, strict_errors
from workflows.config import load_config
from workflows.graph import pipeline_graph
from workflows.render import generated_objects

K8S_VERSION = "1.33"


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def core_objects() -> list[tuple[str, dict]]:
    out = []
    for path in sorted((REPO / "k8s").rglob("*.yaml")):
        out += [
            (path.name, d)
            for d in docs(path)
            if not d["apiVersion"].startswith(("argoproj.io", "helm.cattle.io"))
        ]
    return out


@pytest.mark.parametrize(
    ("name", "obj"), core_objects(), ids=lambda v: v if isinstance(v, str) else v["kind"]
)
def test_core_objects_validate_strictly(name: str, obj: dict) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_argo_install_is_pinned() -> None:
    [chart] = docs(REPO / "k8s" / "base" / "argo-helmchart.yaml")
    assert chart["kind"] == "HelmChart" and chart["spec"]["version"] == "2.0.1"
    values = yaml.safe_load(chart["spec"]["valuesContent"])
    assert values["images"]["tag"] == "v4.1.2"
    assert "projections" in values["controller"]["workflowNamespaces"]


def test_least_privilege_and_hardened_pods() -> None:
    everything = [d for p in REPO.joinpath("k8s").rglob("*.yaml") for d in docs(p)]
    assert not [d for d in everything if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    [role] = [d for d in everything if d["kind"] == "Role"]
    assert all("*" not in r["verbs"] and "*" not in r["resources"] for r in role["rules"])
    for obj in generated_objects(pipeline_graph(), load_config()).values():
        if obj["kind"] == "ConfigMap":
            continue
        spec = obj["spec"].get("workflowSpec", obj["spec"])
        assert spec["securityContext"]["runAsNonRoot"] is True
        for template in spec["templates"]:
            if "container" in template:
                sc = template["container"]["securityContext"]
                assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
                assert {"name": "scratch", "mountPath": "/tmp"} in template["container"]["volumeMounts"]
                for env in template["container"]["env"]:
                    if any(word in env["name"] for word in ("KEY", "SECRET", "PASSWORD", "TOKEN")):
                        assert "valueFrom" in env and "value" not in env, env


def test_no_credentials_in_cluster_state() -> None:
    # Chart templates are Helm syntax; their output equals k8s/generated (test_argo), scanned here.
    chart_files = [REPO / "charts" / "projections" / "values.yaml"]
    for path in list(REPO.joinpath("k8s").rglob("*.yaml")) + chart_files:
        for obj in docs(path):
            assert obj.get("kind") != "Secret", f"{path}: Secrets are created out of band, never committed"
            for env in _envs(obj):
                if any(word in env["name"] for word in ("PASSWORD", "SECRET", "ACCESS_KEY", "ROOT_USER")):
                    assert "value" not in env, f"{path}: {env['name']} has a literal value"


def _envs(node):  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        if "env" in node and isinstance(node["env"], list):
            yield from node["env"]
        for value in node.values():
            yield from _envs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _envs(value)


class FakeArgoServer:
    """Records requests; answers like the Argo Server's REST API for the calls we make."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict]] = []
        self.crons: dict[str, dict] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                outer.requests.append(("GET", self.path, {}))
                name = self.path.rstrip("/").split("/")[-1].split("?")[0]
                if "/cron-workflows/" in self.path and name in outer.crons:
                    self._send(200, outer.crons[name])
                else:
                    self._send(404, {"code": 5, "message": "not found"})

            def do_POST(self) -> None:
                body = self._body()
                outer.requests.append(("POST", self.path, body))
                if "/cron-workflows/" in self.path:
                    cron = body["cronWorkflow"]
                    cron["metadata"]["resourceVersion"] = "1"
                    outer.crons[cron["metadata"]["name"]] = cron
                    self._send(200, cron)
                else:
                    wf = body["workflow"]
                    wf["metadata"]["name"] = wf["metadata"]["generateName"] + "abcde"
                    self._send(200, wf)

            def do_PUT(self) -> None:
                body = self._body()
                outer.requests.append(("PUT", self.path, body))
                cron = body["cronWorkflow"]
                outer.crons[cron["metadata"]["name"]] = cron
                self._send(200, cron)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def argo_server():  # type: ignore[no-untyped-def]
    server = FakeArgoServer()
    yield server
    server.close()


def test_submit_posts_a_strictly_valid_range_workflow(seeded: str, argo_server: FakeArgoServer) -> None:
    result = run_pipeline_cli(
        "submit",
        "--start",
        "2024-11-14",
        "--end",
        "2024-11-16",
        "--store",
        seeded,
        "--argo-server",
        argo_server.url,
        "--token",
        "t0ken",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 partition(s) in 1 chunk(s)" in result.stdout
    [(_method, path, body)] = [r for r in argo_server.requests if r[0] == "POST"]
    assert path == "/api/v1/workflows/projections"
    workflow = body["workflow"]
    assert strict_errors(workflow) == []
    chunks = json.loads(workflow["spec"]["arguments"]["parameters"][0]["value"])
    assert [p["game_date"] for p in chunks[0]] == ["2024-11-14", "2024-11-15", "2024-11-16"]
    correlation = workflow["metadata"]["labels"]["projections/correlation-id"]
    from steps.runtime.store import open_store

    assert open_store(seeded).exists(f"backfills/{correlation}/plan.json")


def test_submit_dry_run_prints_yaml_and_sends_nothing(seeded: str, argo_server: FakeArgoServer) -> None:
    result = run_pipeline_cli(
        "submit", "--start", "2024-11-14", "--store", seeded, "--argo-server", argo_server.url, "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    workflow = yaml.safe_load(result.stdout)
    assert workflow["kind"] == "Workflow" and strict_errors(workflow) == []
    assert argo_server.requests == []


def test_cron_apply_creates_then_updates(argo_server: FakeArgoServer) -> None:
    first = run_pipeline_cli("cron", "apply", "--argo-server", argo_server.url)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "created CronWorkflow projections/projections-daily" in first.stdout
    second = run_pipeline_cli("cron", "apply", "--argo-server", argo_server.url)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "updated" in second.stdout
    bodies = [b["cronWorkflow"] for m, _, b in argo_server.requests if m in ("POST", "PUT")]
    assert len(bodies) == 2
    for cron in bodies:
        assert strict_errors(cron) == []
        assert (
            cron["spec"]["concurrencyPolicy"] == "Forbid" and cron["spec"]["timezone"] == "America/New_York"
        )


def test_submit_without_server_is_a_clear_error(seeded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARGO_SERVER", raising=False)
    result = run_pipeline_cli("submit", "--start", "2024-11-14", "--store", seeded)
    assert result.returncode == 2 and "no Argo Server" in result.stderr
