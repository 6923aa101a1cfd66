"""Cluster state validates strictly offline; submission speaks the Argo Server API correctly."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kubernetes_validate
import pytest
import yaml

from steps.runtime import layout
from steps.runtime.store import open_store
from tests.chart import by_kind, chart_objects
from tests.helpers import run_pipeline_cli
from tests.strict import strict_errors
from workflows.argo.render import generated_objects
from workflows.dag.config import load_config
from workflows.dag.graph import pipeline_graph

CONFIG = load_config()
K8S_VERSION = "1.33"
SECRET_WORDS = ("PASSWORD", "SECRET", "ACCESS_KEY", "ROOT_USER")


def core_objects() -> list[dict]:
    return [d for d in chart_objects() if not d["apiVersion"].startswith("argoproj.io")]


@pytest.mark.parametrize("obj", core_objects(), ids=lambda o: f"{o['kind']}-{o['metadata']['name']}")
def test_core_objects_validate_strictly(obj: dict) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_least_privilege_and_hardened_pods() -> None:
    everything = chart_objects()
    assert not [d for d in everything if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    roles = by_kind(everything, "Role")
    assert set(roles) == {CONFIG.argo.service_account, CONFIG.argo.operator_service_account}
    for role in roles.values():
        assert all("*" not in r["verbs"] and "*" not in r["resources"] for r in role["rules"])
        for rule in role["rules"]:  # secrets: only the store's, only read
            if "secrets" in rule["resources"]:
                assert rule["verbs"] == ["get"] and rule["resourceNames"] == [CONFIG.argo.s3_secret]
    seen_sets = 0
    for obj in generated_objects(pipeline_graph(), CONFIG).values():
        spec = obj["spec"].get("workflowSpec", obj["spec"])
        assert spec["securityContext"]["runAsNonRoot"] is True
        for template in spec["templates"]:
            containers = [template["container"]] if "container" in template else []
            if "containerSet" in template:  # every container of a pack, and the pack's /tmp
                seen_sets += 1
                containers += template["containerSet"]["containers"]
                assert {"name": "scratch", "mountPath": "/tmp"} in template["containerSet"]["volumeMounts"]
            for container in containers:
                sc = container["securityContext"]
                assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
                assert sc["capabilities"] == {"drop": ["ALL"]}
                if "container" in template:
                    assert {"name": "scratch", "mountPath": "/tmp"} in container["volumeMounts"]
                for env in container.get("env", []):
                    if any(word in env["name"] for word in ("KEY", "SECRET", "PASSWORD", "TOKEN")):
                        assert "valueFrom" in env and "value" not in env, env
    assert seen_sets == 2  # the slate pack and the draft-group pack


def test_no_credentials_in_cluster_state() -> None:
    for obj in chart_objects():
        if obj["kind"] == "Secret":
            # Only the operator's token Secret: Kubernetes fills it in; it carries no data.
            assert obj["type"] == "kubernetes.io/service-account-token", obj["metadata"]["name"]
            assert not obj.get("data") and not obj.get("stringData")
        for env in _envs(obj):
            if any(word in env["name"] for word in SECRET_WORDS):
                assert "value" not in env, (
                    f"{obj['kind']}/{obj['metadata']['name']}: {env['name']} is literal"
                )


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
        self.auth: list[str] = []
        self.refuse: int | None = None  # answer every POST with this status (e.g. 403)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> dict:
                outer.auth.append(self.headers.get("Authorization") or "")
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
                if outer.refuse:
                    self._send(outer.refuse, {"code": 7, "message": "workflows.argoproj.io is forbidden"})
                    return
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
    [dag] = [t["dag"] for t in workflow["spec"]["templates"] if "dag" in t]
    tasks = {t["name"]: t for t in dag["tasks"]}
    chunk = tasks["chunk-001-2024-11-14-to-2024-11-16"]
    partitions = json.loads(chunk["arguments"]["parameters"][0]["value"])
    assert [p["game_date"] for p in partitions] == ["2024-11-14", "2024-11-15", "2024-11-16"]
    assert {p["month"] for p in partitions} == {"2024-11"}
    assert {p["month_run_id"] for p in partitions} == {partitions[0]["run_id"]}  # the first slate's
    # The window slates the range reads run first, once each, and hold nothing back.
    shared = tasks["shared"]
    assert chunk["depends"] == "shared" and shared["continueOn"] == {"failed": True, "error": True}
    scrapes = json.loads(shared["arguments"]["parameters"][0]["value"])
    assert [s["game_date"] for s in scrapes] == [f"2024-11-{d:02d}" for d in range(1, 16)]
    correlation = workflow["metadata"]["labels"]["projections/correlation-id"]
    assert open_store(seeded).exists(f"backfills/{correlation}/plan.json")


def test_submit_dry_run_prints_yaml_and_sends_nothing(seeded: str, argo_server: FakeArgoServer) -> None:
    result = run_pipeline_cli(
        "submit", "--start", "2024-11-14", "--store", seeded, "--argo-server", argo_server.url, "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    workflow = yaml.safe_load(result.stdout)
    assert workflow["kind"] == "Workflow" and strict_errors(workflow) == []
    assert argo_server.requests == []
    assert not open_store(seeded).exists(layout.first_tips_key(2024))  # nor the store's memory


def test_a_refused_submit_leaves_no_plan(seeded: str, argo_server: FakeArgoServer) -> None:
    argo_server.refuse = 403
    result = run_pipeline_cli(
        "submit", "--start", "2024-11-14", "--store", seeded, "--argo-server", argo_server.url
    )
    assert result.returncode == 1 and "Argo Server refused" in result.stderr, result.stderr
    assert [m for m, _, _ in argo_server.requests] == ["POST"]
    assert list(open_store(seeded).list("backfills/")) == []


def test_submit_reads_server_token_and_namespace_from_the_environment(
    seeded: str, argo_server: FakeArgoServer
) -> None:
    host = argo_server.url.removeprefix("http://")
    env = {"ARGO_SERVER": f"http://{host}", "ARGO_TOKEN": "Bearer op-token", "ARGO_NAMESPACE": "team-b"}
    result = run_pipeline_cli("submit", "--start", "2024-11-14", "--store", seeded, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    [(_, path, body)] = [r for r in argo_server.requests if r[0] == "POST"]
    assert path == "/api/v1/workflows/team-b" and body["workflow"]["metadata"]["namespace"] == "team-b"
    assert argo_server.auth == ["Bearer op-token"]


def test_argo_server_settings() -> None:
    from workflows.argo.cluster import ArgoServerSettings, ClusterError

    assert ArgoServerSettings.resolve("localhost:2746", None, None, None).url == "https://localhost:2746"
    skip = ArgoServerSettings.resolve("localhost:2746", "Bearer x", True, None)
    assert skip.verify is False and skip.token == "x"
    with pytest.raises(ClusterError, match="ARGO_CA_FILE"):
        ArgoServerSettings.resolve("localhost:2746", None, None, "/no/such/ca.pem")


def test_submit_without_server_is_a_clear_error(seeded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARGO_SERVER", raising=False)
    result = run_pipeline_cli("submit", "--start", "2024-11-14", "--store", seeded)
    assert result.returncode == 2 and "no Argo Server" in result.stderr


# ---- packed or one pod per step (docs/runbooks/backfill.md) ----------------------------------
def _child_entrypoint(workflow: dict) -> str | None:
    [run_chunk] = [t for t in workflow["spec"]["templates"] if "resource" in t]
    return yaml.safe_load(run_chunk["resource"]["manifest"])["spec"].get("entrypoint")


def test_pack_range_picks_by_size_unless_told() -> None:
    from workflows.argo.build import pack_range

    threshold = CONFIG.argo.pack_from_partitions
    assert pack_range(threshold - 1, CONFIG) == (
        False,
        f"{threshold - 1} partition(s) < argo.pack_from_partitions {threshold}",
    )
    assert pack_range(threshold, CONFIG)[0] is True
    assert pack_range(1, CONFIG, True) == (True, "--pack") and pack_range(500, CONFIG, False) == (
        False,
        "--no-pack",
    )


def test_submit_dry_run_says_which_mode_it_picked(seeded: str, argo_server: FakeArgoServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    common = ("submit", "--start", "2024-11-14", "--end", "2024-11-16", "--store", seeded, "--dry-run")
    small = run_pipeline_cli(*common)
    assert small.returncode == 0, small.stderr
    assert small.stdout.startswith("# mode: one pod per step (3 partition(s) < argo.pack_from_partitions 8)")
    workflow = yaml.safe_load(small.stdout)
    assert (
        _child_entrypoint(workflow) is None
        and workflow["metadata"]["labels"]["projections/mode"] == "unpacked"
    )
    forced = run_pipeline_cli(*common, "--pack")
    assert forced.stdout.startswith("# mode: packed (--pack)"), forced.stdout[:200]
    workflow = yaml.safe_load(forced.stdout)
    assert strict_errors(workflow) == [] and _child_entrypoint(workflow) == "chunk-packed"
    config = tmp_path / "pipeline.yaml"
    config.write_text("argo: {pack_from_partitions: 3}\n")
    by_size = run_pipeline_cli(*common, "--config", str(config))
    assert by_size.stdout.startswith("# mode: packed (3 partition(s) >= argo.pack_from_partitions 3)")
    told = run_pipeline_cli(*common, "--config", str(config), "--no-pack")
    assert told.stdout.startswith("# mode: one pod per step (--no-pack)")
    assert argo_server.requests == []


def test_a_packed_submit_posts_a_strictly_valid_packed_range(
    seeded: str, argo_server: FakeArgoServer
) -> None:
    result = run_pipeline_cli(
        "submit", "--start", "2024-11-14", "--store", seeded, "--argo-server", argo_server.url, "--pack"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 partition(s) in 1 chunk(s), packed (--pack)" in result.stdout
    [(_, _, body)] = [r for r in argo_server.requests if r[0] == "POST"]
    assert strict_errors(body["workflow"]) == [] and _child_entrypoint(body["workflow"]) == "chunk-packed"
