"""The image's files, read: hadolint on the Dockerfile, its base and versions pinned, the compose file and
cluster configs parsed and checked. tests/tuner/test_images.py builds the image and runs it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile*"))


def test_one_dockerfile_on_a_pinned_plain_python_base() -> None:
    assert [p.name for p in DOCKERFILES] == ["Dockerfile"]
    text = (DOCKER / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    # a patch-pinned Docker Official Image; torch's own wheels bring CUDA, so no nvidia/cuda base
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base[1]) and "nvidia/cuda" not in text
    for arg in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "TORCH_INDEX_URL"):
        assert re.search(rf"^ARG {arg}=", text, re.M), arg


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[p.name for p in DOCKERFILES])
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    res = subprocess.run([hadolint, "--failure-threshold", "info", str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_image_runs_as_a_non_root_user_with_the_launcher_and_pinned_versions() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^USER 1000$", text, re.M)
    assert 'ENTRYPOINT ["python", "-m", "tuner.launch"]' in text
    # dependencies are installed before the code is copied, so code changes reuse the dependency layer
    assert text.index("install.sh deps") < text.index("COPY trainables") < text.index("install.sh project")
    assert "constraints.txt" in text.split("install.sh deps")[0]
    install = (DOCKER / "install.sh").read_text()
    assert install.count("-c constraints.txt") >= 2  # torch and the project's dependencies


def test_constraints_pin_what_the_suite_runs_with() -> None:
    from importlib.metadata import version

    pinned = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (REPO / "constraints.txt").read_text(), flags=re.M))
    for package in ("torch", "torchvision", "ray", "mlflow", "optuna", "pyarrow"):
        assert pinned[package] == version(package).split("+")[0], package
    assert "-c constraints.txt" in (REPO / "Makefile").read_text()


def test_compose_names_only_images_it_builds_binds_to_localhost_and_bakes_no_secrets() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"mlflow", "ray-head", "ray-worker", "launcher"}  # no S3 server: MLflow serves its artifacts
    assert {svc["image"] for svc in services.values()} == {"tuner:gpu"} and all(svc.get("build") for svc in services.values())
    assert "--serve-artifacts" in services["mlflow"]["entrypoint"]
    assert services["ray-worker"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    joins, runs = services["launcher"]["entrypoint"][2].split(" && ")  # joins the cluster as a node, then runs the sweep
    assert joins.startswith("ray start --address=ray-head:6379 --num-cpus=0 --num-gpus=0")
    assert runs.startswith("exec python -m tuner.launch")
    assert "--address" in services["launcher"]["command"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
        env = svc.get("environment", {}) or {}
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET|TOKEN|KEY_ID", key):
                assert str(value).startswith("${"), f"{name}.{key} holds a literal secret"
        assert (REPO / "docker" / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
    example = (DOCKER / ".env.example").read_text()
    assert all(line.endswith("=") for line in example.splitlines() if line and not line.startswith("#"))


def test_cluster_launcher_and_kuberay_configs() -> None:
    cluster = yaml.safe_load((DOCKER / "cluster.yaml").read_text())
    assert cluster["provider"]["type"] == "aws" and cluster["head_node_type"] in cluster["available_node_types"]
    workers = [t for n, t in cluster["available_node_types"].items() if n != cluster["head_node_type"]]
    assert workers and all(re.match(r"(g|p)\d", t["node_config"]["InstanceType"]) for t in workers)  # GPU instances
    assert "tuner:gpu" in cluster["docker"]["image"]
    job = yaml.safe_load((DOCKER / "kuberay-rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert job["spec"]["entrypoint"].startswith("python -m tuner.launch") and "s3://" in job["spec"]["entrypoint"]
    worker = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_the_multi_gpu_rayjob_can_place_its_spec_trials() -> None:
    """The headline-scale RayJob's spec has trials of several GPUs, and its pods can hold them: each worker's
    GPUs on one pod, a trial's GPUs within the cluster, the trials at once within all of them."""
    from tuner.spec.schema import load_spec

    job = yaml.safe_load((DOCKER / "kuberay-rayjob-imagenet-lt.yaml").read_text())
    entry = job["spec"]["entrypoint"].split()
    assert entry[:3] == ["python", "-m", "tuner.launch"] and "s3://" in job["spec"]["entrypoint"]
    spec = load_spec(REPO / entry[3])
    group = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    pod = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    pod_gpus, pod_cpus = int(pod["nvidia.com/gpu"]), float(pod["cpu"])
    res = spec.resources
    assert res.train_workers > 1 and res.gpu <= pod_gpus and res.cpu <= pod_cpus
    cpus, gpus = res.per_trial
    assert gpus * spec.run.max_concurrent <= pod_gpus * group["replicas"]
    assert cpus * spec.run.max_concurrent <= pod_cpus * group["replicas"]
