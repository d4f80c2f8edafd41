"""Members of one worker are their solo runs: three configurations (different lr, reslt_alpha, exit
thresholds, clip norm and seed; one made to diverge) trained together equal, epoch for epoch, what
`python -m trainables.train` prints for each alone: exactly with the streams strategy on CPU, to a
stated tolerance with the fused one. And the comparison fails when a member's random state or
schedule is shared, so it would catch a worker that mixes its members up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trainables.config import with_overrides
from trainables.data.datasets import cached_long_tailed
from trainables.members import Member, run_epoch
from trainables.presets import build_preset

BASE = build_preset("hybrid_m7", dataset="synthetic", backbone="resnet20", widths=(8, 16, 24), exit_channels=16,
                    autoaugment=False, epochs=3, warmup_epochs=1, lr_decay_epochs=(2,), batch_size=64,
                    synthetic_train_per_class=200, synthetic_test_per_class=40, device="cpu")
CONFIGS = [
    with_overrides(BASE, dict(lr=0.05, seed=1, reslt_alpha=0.9, train_exit_threshold=0.9, inference_exit_threshold=0.5)),
    with_overrides(BASE, dict(lr=0.2, seed=2, reslt_alpha=0.6, train_exit_threshold=0.6, inference_exit_threshold=0.7,
                              grad_clip_norm=1.0, mixup_alpha=0.4)),
    # lr 10 without clipping: its second batch's loss (about 4.8) passes the bound, so it diverges alone
    with_overrides(BASE, dict(lr=10.0, seed=3, reslt_alpha=0.8, grad_clip_norm=None, divergence_loss_bound=4.2)),
]
# The fused strategy sums its grouped convolutions in another order: the runs drift apart by float
# rounding, amplified by SGD (measured on 2 CPU cores, 3 epochs: train_loss within 0.1%, the mean
# gradient norm within 2%, one validation image of 100). Statuses, epochs and where a run diverged
# must agree exactly; the mean gradient norm gets 10 times the loss's tolerance.
# The held-out accuracies (200 images each) are compared at the last epoch only, after the decay: at the
# peak learning rate a drift that small flips images near the decision boundary, by how many depends on
# the CPU's vector units. On an AVX-512 Xeon (2026-12-07) member 1's epoch-2 test accuracy was 0.100 fused
# and 0.065 alone (7 images; train_loss within 0.4%), and the two agreed within 1 image at the last epoch.
FUSED_LOSS_RTOL, FUSED_ACC_ATOL = 5e-3, 0.03
HELD_OUT = ("val_acc", "test_acc")
GRAD_NORM_FACTOR = 10
COMPARED = ("train_loss", "train_acc", "val_acc", "test_acc", "flops_ratio", "lr", "grad_norm")
EXACT = ("epoch", "status", "diverged_epoch", "diverged_step", "lr")


MEMBERS = pytest.mark.xdist_group("members")


@pytest.fixture(scope="session")  # its users share one xdist group (MEMBERS), so it runs once per session
def solo_lines(tmp_path_factory: pytest.TempPathFactory) -> list[list[dict]]:
    """Each configuration's epochs from `python -m trainables.train --config`, one thread (as the members below)."""
    folder = tmp_path_factory.mktemp("solo")
    out = []
    for i, config in enumerate(CONFIGS):
        path = folder / f"config{i}.json"
        path.write_text(json.dumps({"config": config.to_dict()}))
        res = subprocess.run([sys.executable, "-m", "trainables.train", "--config", str(path)], capture_output=True, text=True,
                             timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert res.returncode == 0, res.stderr[-2000:]
        out.append([json.loads(line) for line in res.stdout.splitlines() if not json.loads(line).get("summary")])
    return out


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_members(strategy: str, configs=CONFIGS, join_late: int | None = None) -> dict[str, list[dict]]:
    """Every member's epochs, trained `strategy`-wise until all are done; member `join_late` joins after one epoch."""
    data = cached_long_tailed(configs[0])
    members = [Member(f"m{i}", c, data) for i, c in enumerate(configs) if i != join_late]
    lines: dict[str, list[dict]] = {f"m{i}": [] for i in range(len(configs))}
    rounds = 0
    while any(not m.done for m in members):
        for key, metrics in run_epoch([m for m in members if not m.done], strategy).items():
            lines[key].append(metrics)
        rounds += 1
        if rounds == 1 and join_late is not None:
            members.append(Member(f"m{join_late}", configs[join_late], data))
    return lines


def mismatch(solo: list[dict], member: list[dict], rtol: float = 0.0, atol: float = 0.0) -> str | None:
    """Where a member's epochs differ from its solo run's (None: they agree within the tolerance; with a
    tolerance, the held-out accuracies only at the last epoch)."""
    if len(solo) != len(member):
        return f"{len(member)} epochs, solo {len(solo)}"
    for n, (a, b) in enumerate(zip(solo, member), 1):
        for key in EXACT:
            if a.get(key) != b.get(key):
                return f"epoch {a['epoch']} {key}: {b.get(key)!r}, solo {a.get(key)!r}"
        for key in COMPARED:
            if key in HELD_OUT and (rtol or atol) and n < len(solo):
                continue
            x, y = a.get(key), b.get(key)
            if x is None and y is None:
                continue
            # accuracies and the FLOP ratio move in steps of a few images: absolute tolerances for them
            tolerance = atol if key.endswith("_acc") or key == "flops_ratio" else \
                rtol * abs(x) * (GRAD_NORM_FACTOR if key == "grad_norm" else 1)
            if x is None or y is None or abs(x - y) > tolerance:
                return f"epoch {a['epoch']} {key}: {y!r}, solo {x!r}"
    return None


@pytest.mark.slow
@MEMBERS
def test_streams_members_are_their_solo_runs_exactly(solo_lines, one_thread) -> None:
    lines = train_members("streams")
    assert [len(v) for v in lines.values()] == [3, 3, 1]  # the third diverged in its first epoch, alone
    assert lines["m2"][0]["status"] == "diverged" and "batch loss" in lines["m2"][0]["diverged_reason"]
    for i in range(3):
        assert mismatch(solo_lines[i], lines[f"m{i}"]) is None, mismatch(solo_lines[i], lines[f"m{i}"])  # no tolerance


@pytest.mark.slow
@MEMBERS
def test_fused_members_are_their_solo_runs_within_float_rounding(solo_lines, one_thread) -> None:
    lines = train_members("fused")
    for i in range(3):
        problem = mismatch(solo_lines[i], lines[f"m{i}"], FUSED_LOSS_RTOL, FUSED_ACC_ATOL)
        assert problem is None, f"member {i}: {problem}"
    assert lines["m2"][0]["diverged_step"] == solo_lines[2][0]["diverged_step"]


@pytest.mark.slow
@MEMBERS
def test_a_member_that_joins_later_starts_at_its_own_epoch_zero(solo_lines, one_thread) -> None:
    lines = train_members("fused", join_late=1)
    assert [m["epoch"] for m in lines["m1"]] == [1, 2, 3]
    for i in range(3):
        assert mismatch(solo_lines[i], lines[f"m{i}"], FUSED_LOSS_RTOL, FUSED_ACC_ATOL) is None


@pytest.mark.slow
@MEMBERS
def test_the_comparison_fails_when_members_share_a_seed_or_a_schedule(solo_lines, one_thread, monkeypatch) -> None:
    import contextlib

    # Shared random state: the members draw from one stream (no swap of random states).
    monkeypatch.setattr(Member, "own_random_state", lambda self: contextlib.nullcontext())
    shared = train_members("streams", configs=CONFIGS[:2])
    monkeypatch.undo()
    assert mismatch(solo_lines[1], shared["m1"]) is not None
    # A shared seed, or a shared schedule: a member trained with another's seed or lr is not its solo run.
    same_seed = train_members("streams", configs=[CONFIGS[0], with_overrides(CONFIGS[1], {"seed": CONFIGS[0].seed})])
    assert mismatch(solo_lines[1], same_seed["m1"]) is not None
    same_lr = train_members("streams", configs=[CONFIGS[0], with_overrides(CONFIGS[1], {"lr": CONFIGS[0].lr})])
    assert mismatch(solo_lines[1], same_lr["m1"], FUSED_LOSS_RTOL, FUSED_ACC_ATOL) is not None


def test_fused_members_update_their_batchnorm_statistics(one_thread) -> None:
    data = cached_long_tailed(CONFIGS[0])
    members = [Member(f"m{i}", c, data) for i, c in enumerate(CONFIGS[:2])]
    before = [{n: b.clone() for n, b in m.run.model.named_buffers() if n.endswith("running_mean")} for m in members]
    run_epoch(members, "fused")
    for m, old in zip(members, before):
        changed = [n for n, b in m.run.model.named_buffers() if n in old and not torch.equal(b, old[n])]
        assert len(changed) == len(old), f"{m.key}: running statistics that did not change: {sorted(set(old) - set(changed))}"


@pytest.mark.slow
@MEMBERS
def test_a_members_checkpoint_resumes_as_its_solo_run_would(solo_lines, one_thread, tmp_path: Path) -> None:
    data = cached_long_tailed(CONFIGS[0])
    first = Member("m0", CONFIGS[0], data)
    run_epoch([first], "streams")
    checkpoint = first.checkpoint()
    resumed = Member("m0", CONFIGS[0], data, resume=checkpoint)
    rest = []
    while not resumed.done:
        rest.append(run_epoch([resumed, Member("other", CONFIGS[1], data)], "streams")["m0"])
    assert mismatch(solo_lines[0][1:], rest) is None
