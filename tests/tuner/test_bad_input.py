"""Bad input never starts anything: hypothesis generates hundreds of malformed specs, each must be
refused with the file and the offending key named; YAML is loaded safely; pre-flight checks
(tracking server, GPUs) refuse before any trial starts, with exit 2 and no traceback."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import MlflowServer, launch_cmd, sweep_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainables.config import FIELDS
from trainables.presets import PRESETS
from tuner.spec.schema import DATA_FIELDS, SAMPLERS, TOP_LEVEL, SpecError, load_spec, parse_spec

REPO = Path(__file__).resolve().parents[2]
SMOKE = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
SECTION_KEYS = {
    "data": set(DATA_FIELDS), "train": set(FIELDS) | {"preset"}, "objective": {"metric", "mode", "second"},
    "searcher": {"sampler", "seed", "initial_points"}, "scheduler": {"type", "time_attr", "grace_period", "reduction_factor", "max_t"},
    "resources": {"cpu", "gpu"},
    "run": {"num_samples", "max_concurrent", "storage_path", "checkpoint_every", "keep_checkpoints", "max_failures"},
    "tracking": {"uri", "experiment", "register_model", "model_name"},
}
NUMERIC = ["run.num_samples", "run.checkpoint_every", "run.keep_checkpoints", "run.max_failures", "scheduler.grace_period",
           "scheduler.reduction_factor", "resources.cpu", "resources.gpu", "train.epochs", "train.batch_size",
           "train.warmup_epochs", "search.lr.low", "search.lr.high", "search.reslt_alpha.high"]
SEARCHED_FLOATS = {"lr": (1e-4, 5.0), "reslt_alpha": (0.0, 1.0), "train_exit_threshold": (0.01, 0.99),
                   "inference_exit_threshold": (0.01, 0.99)}
VALID_CHOICES = {
    "searcher.sampler": set(SAMPLERS), "scheduler.type": {"asha", "fifo"}, "objective.metric": {"val_acc"},
    "train.loss": set(FIELDS["loss"].metadata["choices"]), "train.head": set(FIELDS["head"].metadata["choices"]),
}
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=3, max_size=14)
not_numbers = st.one_of(names, st.booleans(), st.lists(st.integers(), max_size=2), st.dictionaries(names, st.integers(), max_size=1))


def _set(doc: dict, dotted: str, value) -> dict:
    *parents, last = dotted.split(".")
    node = doc
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return doc


@st.composite
def malformed(draw) -> tuple[dict, str]:
    """(a spec that must be refused, a fragment its message must contain)."""
    doc = yaml.safe_load(yaml.safe_dump(SMOKE))
    kind = draw(st.sampled_from(["unknown_key", "not_a_number", "inverted", "log_low", "threshold", "preset", "dataset",
                                 "data_dir", "boolean", "choice", "section_type", "gpu", "negative"]))
    if kind == "unknown_key":
        section = draw(st.sampled_from(["(top)"] + sorted(SECTION_KEYS)))
        known = set(TOP_LEVEL) if section == "(top)" else SECTION_KEYS[section]
        key = draw(names.filter(lambda k: k not in known))
        if section == "(top)":
            doc[key] = 1
            return doc, f"{key}: unknown key"
        return _set(doc, f"{section}.{key}", 1), f"{section}.{key}: unknown"
    if kind == "not_a_number":
        path = draw(st.sampled_from(NUMERIC))
        return _set(doc, path, draw(not_numbers)), f"{path}: expected"
    if kind == "inverted":
        name = draw(st.sampled_from(sorted(SEARCHED_FLOATS)))
        lo, hi = SEARCHED_FLOATS[name]
        a = draw(st.floats(lo + 1e-3, hi - 1e-3))
        b = draw(st.floats(lo + 1e-3, a))
        doc["search"][name] = {"type": "uniform", "low": a, "high": b}
        return doc, f"search.{name}"
    if kind == "log_low":
        doc["search"]["lr"] = {"type": "loguniform", "low": draw(st.floats(-10, 0)), "high": 0.1}
        return doc, "search.lr.low"
    if kind == "threshold":
        name = draw(st.sampled_from(["train_exit_threshold", "inference_exit_threshold"]))
        end = draw(st.sampled_from(["low", "high"]))
        bad = draw(st.floats(1.0001, 50)) if end == "high" else draw(st.floats(-50, 0))
        doc["search"][name] = {"type": "uniform", "low": 0.2 if end == "high" else bad, "high": 0.8 if end == "low" else bad}
        return doc, f"search.{name}.{end}"
    if kind == "preset":
        return _set(doc, "train.preset", draw(names.filter(lambda n: n not in PRESETS))), "train.preset: unknown preset"
    if kind == "dataset":
        return _set(doc, "data.dataset", draw(names.filter(lambda n: n not in ("cifar10", "cifar100", "synthetic")))), "data.dataset"
    if kind == "data_dir":
        return _set(doc, "data.data_dir", "/nonexistent/" + draw(names)), "data.data_dir: folder"
    if kind == "boolean":
        path = draw(st.sampled_from(["tracking.register_model", "train.horizontal_flip", "train.nesterov"]))
        return _set(doc, path, draw(st.one_of(st.integers(), names))), path
    if kind == "choice":
        path = draw(st.sampled_from(sorted(VALID_CHOICES)))
        return _set(doc, path, draw(names.filter(lambda n: n not in VALID_CHOICES[path]))), path
    if kind == "section_type":
        section = draw(st.sampled_from(["data", "objective", "searcher", "scheduler", "resources", "run", "tracking"]))
        doc[section] = draw(st.one_of(st.integers(), names, st.lists(st.integers(), min_size=1, max_size=2)))
        return doc, f"{section}: expected a mapping"
    if kind == "gpu":
        return _set(doc, "resources.gpu", draw(st.floats(1.01, 7.99).filter(lambda g: g != int(g)))), "resources.gpu"
    path = draw(st.sampled_from(["train.lr", "train.momentum", "run.num_samples", "resources.cpu", "train.epochs"]))
    return _set(doc, path, draw(st.integers(-100, -1))), path


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(malformed())
def test_every_generated_malformed_spec_is_refused_naming_file_and_key(case) -> None:
    doc, fragment = case
    with pytest.raises(SpecError) as err:
        parse_spec(doc, "gen.yaml")
    message = str(err.value)
    assert message.startswith("gen.yaml: ") and fragment in message, message


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(evil)
    assert not marker.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stale_ray_address():
    """The address file a `ray start` leaves behind, pointing at a cluster that is gone (a TEST-NET address).

    Ray's own default would try to join it and hang for minutes; the launcher must start its own Ray instead.
    """
    from ray._common.utils import get_ray_address_file

    path = Path(get_ray_address_file(None))
    before = path.read_text() if path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("192.0.2.1:6379")
    yield
    if before is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(before)


@pytest.mark.slow
def test_a_tracking_server_that_refuses_its_host_name_is_one_line_before_any_trial(tmp_path: Path) -> None:
    """MLflow 3 answers /health to anyone but the API only to the Host names it was given (--allowed-hosts):
    in the compose stack every call to http://mlflow:5000 was a 403 and the launch a traceback."""
    (tmp_path / "server").mkdir()
    server = MlflowServer(tmp_path / "server", "--allowed-hosts", "mlflow,mlflow:*")
    (tmp_path / "smoke.yaml").write_text((REPO / "search_spaces" / "smoke.yaml").read_text())
    server.start()
    try:
        res = subprocess.run(launch_cmd("smoke.yaml"), cwd=tmp_path, env=sweep_env(MLFLOW_TRACKING_URI=server.uri),
                             capture_output=True, text=True, timeout=180)
    finally:
        server.stop()
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert "refuses the tracking API" in lines[0] and f"--allowed-hosts naming 127.0.0.1:{server.port}" in lines[0], lines[0]
    assert not (tmp_path / "experiments").exists()


@pytest.mark.xdist_group("ray_address_file")  # stale_ray_address rewrites /tmp/ray/ray_current_cluster
@pytest.mark.parametrize("change, message", [
    ({"tracking": {"uri": "http://127.0.0.1:PORT", "register_model": True}}, "tracking: cannot reach the MLflow tracking server"),
    # These two start Ray to read the cluster's resources (about 10 s each).
    pytest.param({"resources": {"cpu": 1, "gpu": 0.5}}, "resources.gpu: 0.5 GPU per trial asked for, but the Ray cluster has no GPU",
                 marks=pytest.mark.slow),
    pytest.param({"resources": {"cpu": 64, "gpu": 0}}, "resources.cpu: 64.0 per trial, but the largest node has", marks=pytest.mark.slow),
])
def test_preflight_refuses_before_any_trial_starts(tmp_path: Path, change: dict, message: str,
                                                  stale_ray_address: None) -> None:
    import torch

    if "gpu" in message and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    doc = yaml.safe_load(yaml.safe_dump(SMOKE))
    for key, value in change.items():
        doc[key] = yaml.safe_load(yaml.safe_dump(value).replace("PORT", str(_free_port())))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(doc))
    res = subprocess.run(launch_cmd("s.yaml"), cwd=tmp_path, env=sweep_env(), capture_output=True, text=True, timeout=180)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "experiments").exists()
