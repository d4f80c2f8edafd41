"""Docker images and cluster configuration. No Docker engine runs here, so: hadolint on every
Dockerfile, the compose file and cluster configs parsed and checked, and the images' install
steps (docker/install.sh) run in a fresh virtual environment in the Dockerfiles' layer order."""

from __future__ import annotations

import os
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


def test_the_images_exist() -> None:
    assert {p.name for p in DOCKERFILES} >= {"Dockerfile.gpu", "Dockerfile.cpu", "Dockerfile.mlflow"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[p.name for p in DOCKERFILES])
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    res = subprocess.run([hadolint, "--failure-threshold", "info", str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("name", ["Dockerfile.gpu", "Dockerfile.cpu"])
def test_project_images_run_as_a_non_root_user_with_the_launcher(name: str) -> None:
    text = (DOCKER / name).read_text()
    assert re.search(r"^USER 1000$", text, re.M)
    assert 'ENTRYPOINT ["python", "-m", "tuner.launch"]' in text
    # dependencies are installed before the code is copied, so code changes reuse the dependency layer
    assert text.index("install.sh deps") < text.index("COPY trainables") < text.index("install.sh project")
    if name == "Dockerfile.gpu":
        assert "nvidia/cuda:13.0" in text and "whl/cu130" in text  # the CUDA of torch 2.14.1+cu130


def test_compose_names_the_services_binds_to_localhost_and_bakes_no_secrets() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "minio", "mlflow", "ray-head", "ray-worker", "launcher"} <= set(services)
    assert "postgresql://" in " ".join(services["mlflow"]["command"]) and "s3://" in " ".join(services["mlflow"]["command"])
    assert services["ray-worker"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "tuner.launch" not in services["launcher"].get("entrypoint", []) and "--address" in services["launcher"]["command"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
        env = svc.get("environment", {}) or {}
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET|TOKEN|KEY_ID", key):
                assert str(value).startswith("${"), f"{name}.{key} holds a literal secret"
        build = svc.get("build")
        if build:
            assert (REPO / build["dockerfile"]).is_file()
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


@pytest.mark.slow
def test_the_image_install_steps_work_in_a_fresh_virtual_environment(tmp_path: Path) -> None:
    """docker/install.sh in the Dockerfiles' order: dependencies from pyproject alone, then the code."""
    work = tmp_path / "opt-tuner"
    work.mkdir()
    for f in ("pyproject.toml", "README.md", "docker/install.sh"):
        shutil.copy(REPO / f, work / Path(f).name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv),
           "TORCH_INDEX_URL": "", "PYTHONPATH": ""}
    env.pop("PYTHONHOME", None)

    def sh(*args: str, cwd: Path = work, timeout: int = 1200) -> subprocess.CompletedProcess:
        res = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        assert res.returncode == 0, " ".join(args) + "\n" + res.stdout[-3000:] + res.stderr[-3000:]
        return res

    sh("sh", "install.sh", "deps")
    for d in ("trainables", "tuner", "search_spaces"):
        shutil.copytree(REPO / d, work / d, ignore=shutil.ignore_patterns("__pycache__"))
    sh("sh", "install.sh", "project")
    python = str(venv / "bin" / "python")
    elsewhere = tmp_path  # not the source folder: imports must come from the venv
    imports = "import torch, ray, optuna, mlflow, pyarrow, trainables, tuner.launch; print(trainables.__file__)"
    out = sh(python, "-c", imports, cwd=elsewhere)
    assert out.stdout.startswith(str(venv))
    sh(python, "-m", "tuner.launch", "--help", cwd=elsewhere)
    assert "hybrid_m8" in sh(python, "-m", "trainables.train", "--list-presets", cwd=elsewhere).stdout
