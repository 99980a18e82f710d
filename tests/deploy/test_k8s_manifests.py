"""The Kubernetes manifests under deploy/k8s/: valid against the Kubernetes API's own schemas (offline,
kubeconform through scripts/validate-k8s), a broken one refused, and what they promise an operator
holding against the code: calls outlive the grace period, readiness asks the health endpoint, and the
autoscaler reads a metric the worker serves."""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
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


def objects() -> dict[str, dict]:
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[doc["kind"]] = doc
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
