"""The Kubernetes manifests under deploy/k8s/: valid against the Kubernetes API's own schemas (offline,
kubeconform through scripts/validate-k8s), a broken one refused, and what they promise an operator
holding against the code: calls outlive the grace period, readiness asks the health endpoint, and the
autoscaler reads a metric the worker serves."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from prometheus_client import values

from agent.brain import load_brains
from agent.metrics import WorkerMetrics
from agent.settings import Settings, load_settings
from tests.agent.test_metrics import scrape

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


VALIDATE = "scripts/validate-k8s"  # as the README shows it, from the checkout's root


def validate(*files: Path) -> subprocess.CompletedProcess[str]:
    # the first run builds kubeconform (cached afterwards under ~/.cache/receptionist)
    return subprocess.run(
        [*shlex.split(VALIDATE), *map(str, files)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def objects(file: str = "worker.yaml") -> dict[str, dict]:
    """The objects of one file, by kind, and by kind/name."""
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if path.name == file or doc["kind"] not in found:
                found[doc["kind"]] = doc
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def test_the_shipped_manifests_are_valid() -> None:
    out = validate()
    assert out.returncode == 0, out.stdout + out.stderr
    shipped = sum(len(list(yaml.safe_load_all(p.read_text()))) for p in K8S.glob("*.yaml"))
    assert f"{shipped} resources found" in out.stdout and "Invalid: 0, Errors: 0" in out.stdout, (
        out.stdout
    )


def test_a_misspelt_field_or_a_wrong_type_is_refused(tmp_path: Path) -> None:
    worker = (K8S / "worker.yaml").read_text()
    misspelt = tmp_path / "misspelt.yaml"
    misspelt.write_text(
        worker.replace("terminationGracePeriodSeconds:", "terminationGracePeriodSecond:")
    )
    wrong_type = tmp_path / "wrong-type.yaml"
    wrong_type.write_text(re.sub(r"replicas: \d+", "replicas: two", worker))
    unknown_kind = tmp_path / "unknown-kind.yaml"
    shutil.copy(K8S / "retention.yaml", unknown_kind)
    unknown_kind.write_text(unknown_kind.read_text().replace("kind: CronJob", "kind: CronJobs"))
    for broken, why in [
        (misspelt, "terminationGracePeriodSecond"),
        (wrong_type, "/spec/replicas"),
        (unknown_kind, "CronJobs"),
    ]:
        out = validate(broken)
        assert out.returncode != 0 and why in out.stdout + out.stderr, out.stdout + out.stderr


def test_a_drained_pod_outlives_its_longest_call_and_is_ready_by_the_health_endpoint() -> None:
    pod = objects()["Deployment"]["spec"]["template"]["spec"]
    longest_call_s = (
        max(brain.calls.max_duration_minutes for brain in load_brains(ROOT / "brains").all) * 60
    )
    assert pod["terminationGracePeriodSeconds"] > longest_call_s
    [worker] = pod["containers"]
    env = {e["name"]: e["value"] for e in worker["env"]}
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    probe = worker["readinessProbe"]["httpGet"]
    assert probe["path"] == "/health" and ports[probe["port"]] == int(env["HEALTH_PORT"])
    liveness = worker["livenessProbe"]["httpGet"]
    assert ports[liveness["port"]] == int(env["WORKER_PORT"])
    assert ports["metrics"] == int(env["METRICS_PORT"])
    assert env["JOURNAL_SPILL_DIR"].startswith(worker["volumeMounts"][0]["mountPath"])
    # the image's user (Dockerfile USER) is the one the pod runs as
    dockerfile_user = re.findall(r"^USER (\S+)", (ROOT / "Dockerfile").read_text(), re.M)[-1]
    assert str(pod["securityContext"]["runAsUser"]) == dockerfile_user
    assert [c["command"] for c in pod["initContainers"]] == [["receptionist", "db", "migrate"]]


async def test_the_autoscaler_scales_on_a_metric_the_worker_serves(
    tmp_path: Path, monkeypatch
) -> None:
    [metric] = objects()["HorizontalPodAutoscaler"]["spec"]["metrics"]
    name = metric["pods"]["metric"]["name"]
    target = float(metric["pods"]["target"]["averageValue"])
    # below the calls a pod takes, so new pods start while the others still have room
    [worker] = objects()["Deployment"]["spec"]["template"]["spec"]["containers"]
    slots = Settings(_env_file=None, openai_api_key="x", **{"worker_max_calls": next(  # type: ignore[call-arg]
        e["value"] for e in worker["env"] if e["name"] == "WORKER_MAX_CALLS")}).worker_max_calls
    assert 0 < target < slots
    # prometheus-adapter turns the worker's series of that name into the pods metric
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "adapter-rules.yaml").read_text())
    [rule] = rules["rules"]["custom"]
    assert rule["name"]["as"] == name and rule["seriesQuery"].startswith(name + "{")
    # ... and the worker serves it: one round of its metrics watch, scraped as /metrics would be
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(
        values, "ValueClass", values.ValueClass
    )  # WorkerMetrics switches it; undone after
    watched = asyncio.Event()

    def active_calls() -> int:
        watched.set()
        return 3

    watch = asyncio.create_task(
        WorkerMetrics(
            load_settings(openai_api_key="test", metrics_port=9, database_url=None)
        ).watch(active_calls)
    )
    try:
        await asyncio.wait_for(watched.wait(), 30)
    finally:
        watch.cancel()
    assert scrape(tmp_path)[name] == 3


def test_the_owner_side_pods_run_their_commands_and_answer_their_probes(db_url: str, tmp_path: Path) -> None:
    """Each container of owner-side.yaml, its command and env as written (the image's /app/var a
    temporary folder), started against a migrated database: ready by its own probe, on its own port;
    each Service reaches a port its pods name."""
    shipped = objects("owner-side.yaml")
    deployments = [d for d in yaml.safe_load_all((K8S / "owner-side.yaml").read_text()) if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {
        "receptionist-notify", "receptionist-inbound", "receptionist-console"}  # fmt: skip
    for deployment in deployments:
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        command = container["command"]
        assert command[0] == "receptionist"
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT), "DATABASE_URL": db_url,
               "BRAIN_PATH": str(ROOT / "brains"), "TWILIO_AUTH_TOKEN": "test-token",
               **{e["name"]: e["value"].replace("/app/var", str(tmp_path / "var")) for e in container.get("env", [])}}  # fmt: skip
        log = tmp_path / f"{deployment['metadata']['name']}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "agent.cli", *command[1:]], cwd=tmp_path, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            probe = container.get("readinessProbe", {}).get("httpGet")
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, f"{command} exited:\n{log.read_text()}"
                if probe is None:  # the sender serves nothing: it runs once it delivers
                    if "delivering notifications by" in log.read_text():
                        break
                else:
                    try:
                        url = f"http://127.0.0.1:{ports[probe['port']]}{probe['path']}"
                        with urllib.request.urlopen(url, timeout=5) as answer:
                            assert answer.status == 200
                        break
                    except (urllib.error.URLError, ConnectionError):
                        pass
                assert time.monotonic() < deadline, f"{command} never became ready:\n{log.read_text()}"
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(30)
        # a clean stop; uvicorn (the console) raises the SIGTERM again once it has stopped serving
        assert proc.returncode == (-signal.SIGTERM if command[1] == "web" else 0), log.read_text()
        # its Service, if it has one, sends traffic to a port the pod names
        service = shipped.get(f"Service/{deployment['metadata']['name']}")
        if service is not None:
            assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
            assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)
