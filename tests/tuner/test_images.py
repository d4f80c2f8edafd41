"""The image, built and run for real: docker/Dockerfile as shipped, built with podman on a Debian base
made here (tests/image_build.py; under make test, in the background while the parallel phase runs),
then run: the smoke sweep against an MLflow container, and the compose stack's services (MLflow, a Ray
head, a Ray worker, the launcher) as docker/compose.yaml writes them, with the trials on the worker.

What this machine needs to run them, the test keeps to itself: host networking with the compose
service names mapped to 127.0.0.1 (and image_build.py's containers.conf and package configuration).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import MLFLOW_SERVER_ENV, write_small_smoke
from image_build import Podman, build_image, make_base, missing_tools, prebuilt
from mlflow import MlflowClient

REPO = Path(__file__).resolve().parents[2]
# serial: make test runs these after the rest, beside the lease test only: the compose stack's Ray head,
# on the host's network, missed its worker's connection while the other xdist worker ran a soak beside it
# (the first parallel CI run; the fault tests kill Ray's processes machine-wide by their titles, and a
# container's are on this machine's process list). The build (pip installs 7 GB into a layer) runs in the
# background from the start of make test. One xdist_group: the module's fixtures (podman, the image) once.
pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.xdist_group("images")]
STACK = ("mlflow", "ray-head", "ray-worker", "launcher")
# The sweep in the containers: the small smoke sweep of the integration tests (write_small_smoke: 4 epochs on 549
# images), 2 trials, its spec mounted in. What these tests prove is the image and the stack (a sweep from start to a
# registered model, its trials on the worker), not smoke.yaml's 8 epochs on 915 images, which they ran until
# 2026-12-07 (issue 29: the image tests were half of the serial phase, 222 to 241 s).
SWEEP_TRIALS = 2
PREBUILT = os.environ.get("TUNER_PREBUILT_IMAGE")  # make test: the folder of the build it ran beside the parallel phase


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    missing = missing_tools()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} missing: .ci/run installs podman, mmdebstrap and runc")
        pytest.skip(f"no {', '.join(missing)} here (apt-get install podman mmdebstrap runc)")
    return Podman(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="module")
def image(podman: Podman):
    """docker/Dockerfile as shipped, built with its default torch (PyPI's, CUDA 13 wheels): the GPU image;
    under make test, the one its background build made (tests/image_build.py)."""
    if PREBUILT:
        built = prebuilt(Path(PREBUILT))
    else:
        make_base(podman)
        built = build_image(podman)
    print(f"\nimage {built['image']}: built in {built['seconds']} s, {built['size'] / 1e9:.2f} GB")
    yield built["image"]
    podman("rmi", "-f", built["image"], check=False)


def test_the_image_is_the_dockerfile_as_shipped_a_non_root_launcher(podman: Podman, image: str) -> None:
    config = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "1000" and config["Entrypoint"] == ["python", "-m", "tuner.launch"]
    who = podman("run", "--rm", "--entrypoint", "id", image, "-u").stdout.strip()
    assert who == "1000"
    versions = podman("run", "--rm", "--entrypoint", "python", image, "-c",
                      "import torch, ray, mlflow, optuna; print(torch.__version__, ray.__version__, mlflow.__version__, "
                      "optuna.__version__)").stdout.split()
    pinned = dict(re.findall(r"^([a-z]+)==(\S+)$", (REPO / "constraints.txt").read_text(), flags=re.M))
    expected = [pinned["torch"], pinned["ray"], pinned["mlflow"], pinned["optuna"]]
    assert [v.split("+")[0] for v in versions] == expected, versions  # torch says 2.14.1+cu130


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until(ready, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not ready():
        if time.time() > deadline:
            raise AssertionError(f"{what} not ready after {seconds:.0f} s")
        time.sleep(1)


def _wait_healthy(url: str, seconds: float = 120) -> None:
    import urllib.request

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} never answered")


def test_the_image_runs_the_smoke_sweep_to_the_end_against_an_mlflow_container(podman: Podman, image: str,
                                                                              tmp_path: Path) -> None:
    port = _free_port()
    store = tmp_path / "mlflow"
    store.mkdir(mode=0o777)
    store.chmod(0o777)  # the image's user (1000) writes it
    name = f"tuner-test-mlflow-{port}"
    podman("run", "-d", "--name", name, "--network", "host", "-v", f"{store}:/mlflow",
           *[a for k, v in MLFLOW_SERVER_ENV.items() for a in ("-e", f"{k}={v}")], "--entrypoint", "mlflow", image,
           "server", "--backend-store-uri", "sqlite:////mlflow/mlflow.db", "--artifacts-destination", "/mlflow/artifacts",
           "--serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health")
        write_small_smoke(tmp_path / "small", trials=SWEEP_TRIALS)
        res = podman("run", "--rm", "--network", "host", "--shm-size", "2g", "-e", f"MLFLOW_TRACKING_URI=http://127.0.0.1:{port}",
                     "-v", f"{tmp_path / 'small'}:/home/tuner/work/small:ro", image, "small/smoke.yaml", check=False, timeout=900)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "registered model smoke version 1" in res.stdout
        versions = MlflowClient(f"http://127.0.0.1:{port}").search_model_versions("name='smoke'")
        assert len(versions) == 1 and versions[0].status == "READY"
    finally:
        podman("rm", "-f", name, check=False)


def _interpolate(value, env: dict[str, str]):
    """Compose's ${NAME}, ${NAME:?message} and ${NAME:-default} in strings, lists and mappings."""
    def one(m: re.Match) -> str:
        name, op, rest = m[1], m[2], m[3]
        if op == ":?":
            assert name in env, f"compose needs {name}: {rest}"
        return env.get(name) or (rest if op == ":-" else "")

    if isinstance(value, str):  # and $$ is a literal $
        return re.sub(r"\$\{(\w+)(?:(:[?-])([^}]*))?\}", one, value).replace("$$", "$")
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    return value


def _run_args(service: dict, name: str, image: str, volumes: dict[str, str], hosts: list[str]) -> list[str]:
    """`podman run` arguments for a compose service as written: entrypoint, command, environment, volumes,
    shared memory; host networking with the other services' names on 127.0.0.1 (ports need no mapping)."""
    args = ["--name", name, "--network", "host", *[a for h in hosts for a in ("--add-host", f"{h}:127.0.0.1")]]
    for key, value in (service.get("environment") or {}).items():
        args += ["-e", f"{key}={value}"]
    for mount in service.get("volumes", []):
        source, target, *mode = mount.split(":")
        args += ["-v", ":".join([volumes.get(source, source), target, *mode])]
    if service.get("shm_size"):
        args += ["--shm-size", str(service["shm_size"])]
    if service.get("entrypoint"):
        args += ["--entrypoint", json.dumps(service["entrypoint"])]
    return [*args, image, *service.get("command", [])]


def test_the_compose_stack_runs_the_smoke_sweep_with_its_trials_on_the_worker(podman: Podman, image: str,
                                                                             tmp_path: Path) -> None:
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    cifar = os.environ.get("TUNER_DATA_DIR", str(REPO.parent / "shared" / "data" / "cifar10"))
    env = {"RAY_AUTH_TOKEN": secrets.token_hex(32), "CIFAR_DIR": cifar}  # what a user puts in docker/.env
    services = {name: _interpolate(compose["services"][name], env) for name in STACK}
    assert "devices" in json.dumps(services["ray-worker"].get("deploy", {}))  # a GPU on a GPU host; none here
    tag = secrets.token_hex(3)
    volumes = {}
    for volume in compose["volumes"]:
        volumes[volume] = f"tuner-test-{volume}-{tag}"
        podman("volume", "create", volumes[volume])
    names = {s: f"tuner-test-{s}-{tag}" for s in STACK}
    hosts = list(STACK)
    try:
        podman("run", "-d", *_run_args(services["mlflow"], names["mlflow"], image, volumes, hosts))
        _wait_healthy("http://127.0.0.1:5000/health")
        podman("run", "-d", *_run_args(services["ray-head"], names["ray-head"], image, volumes, hosts))
        _wait_until(lambda: podman("exec", names["ray-head"], "ray", "status", check=False, timeout=60).returncode == 0,
                    120, "the Ray head")
        podman("run", "-d", *_run_args(services["ray-worker"], names["ray-worker"], image, volumes, hosts))
        # The worker finds the CIFAR folder of docker/.env where the image looks (TUNER_DATA_DIR=/data/cifar).
        found = podman("exec", names["ray-worker"], "python", "-c",
                       "from trainables.config import TrainConfig; from trainables.data.datasets import load_long_tailed; "
                       "d = load_long_tailed(TrainConfig(dataset='cifar10', download=False)); "
                       "print(d.source, d.describe()['train_images'])").stdout.split()
        assert found[0].endswith(":/data/cifar") and int(found[-1]) > 10_000, found
        shared = Path(podman("volume", "inspect", volumes["shared"], "--format", "{{.Mountpoint}}").stdout.strip())
        write_small_smoke(shared / "small", trials=SWEEP_TRIALS)  # on the volume the launcher mounts at /shared
        launcher = {**services["launcher"], "command": ["/shared/small/smoke.yaml", *services["launcher"]["command"][1:]]}
        res = podman("run", "--rm", *_run_args(launcher, names["launcher"], image, volumes, hosts), check=False, timeout=1200)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "registered model smoke version 1" in res.stdout, res.stdout[-2000:]
        worker_node = podman("exec", names["ray-worker"], "python", "-c",  # a driver there attaches to the worker's node
                             "import ray; ray.init(address='auto', logging_level='ERROR'); "
                             "print(ray.get_runtime_context().get_node_id())").stdout.strip().splitlines()[-1]
        table = pq.read_table(shared / "experiments" / "smoke" / "trials.parquet").to_pylist()
        assert len(table) == SWEEP_TRIALS and {row["node_id"] for row in table} == {worker_node}, (table, worker_node)
        assert len(MlflowClient("http://127.0.0.1:5000").search_model_versions("name='smoke'")) == 1
    finally:
        for name in names.values():
            podman("rm", "-f", name, check=False)
        for volume in volumes.values():
            podman("volume", "rm", "-f", volume, check=False)
