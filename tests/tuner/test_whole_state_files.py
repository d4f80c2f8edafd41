"""A driver SIGKILLed while Ray Tune copies the sweep's saved state into a local experiment folder leaves
the last whole copy there, not a truncated file, and no experiment state newer than the searcher's
(tuner/sweep/whole_state_files.py).

Ray's own syncer in a child process (the driver's: `_FilesystemSyncer.sync_up`, then `wait`), with the
fix applied; the child's file copy stops half way through the searcher's state and says so, and the
test SIGKILLs it then, so the kill lands mid-copy every time, not by luck of timing."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from run_env import sweep_env

SCRIPT = textwrap.dedent('''
    import shutil, sys, time
    from pathlib import Path
    import pyarrow.fs
    from ray.train._internal.storage import _FilesystemSyncer
    from tuner.sweep.whole_state_files import upload_state_files_whole

    staging, folder, stall = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "stall"
    upload_state_files_whole()
    copy = shutil.copyfile

    def copy_half_then_stall(src, dst):
        data = Path(src).read_bytes()
        if stall and Path(src).name.startswith("searcher-state"):
            Path(dst).write_bytes(data[: len(data) // 2])
            print("mid-copy", flush=True)
            time.sleep(600)
        return copy(src, dst)

    shutil.copyfile = copy_half_then_stall
    syncer = _FilesystemSyncer(storage_filesystem=pyarrow.fs.LocalFileSystem(), sync_period=0, sync_timeout=60)
    syncer.sync_up(str(staging), str(folder))
    syncer.wait()
    print("synced", flush=True)
''')


def _sync(staging: Path, folder: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(staging), str(folder), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=sweep_env())


def test_a_driver_killed_mid_copy_leaves_the_last_whole_state_and_the_next_copy_replaces_it(tmp_path: Path) -> None:
    staging, folder = tmp_path / "staging", tmp_path / "experiment"
    staging.mkdir()
    (folder / "nested").mkdir(parents=True)
    old, new = b"old state " * 100_000, b"new state " * 200_000
    state, trials = "searcher-state-2026-12-07_07-51-20.pkl", "experiment_state-2026-12-07_07-51-20.json"
    (folder / state).write_bytes(old)
    (staging / state).write_bytes(new)
    (folder / trials).write_text('{"trials": 2}')
    (staging / trials).write_text('{"trials": 3}')
    (staging / "nested").mkdir()
    (staging / "nested" / "experiment_state.json").write_text('{"trial_data": []}')

    proc = _sync(staging, folder, "stall")
    assert proc.stdout.readline().strip() == "mid-copy", proc.stderr.read()[-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert (folder / state).read_bytes() == old  # Ray 2.60 alone leaves the first half of `new` here
    assert (folder / f".{state}.uploading").stat().st_size == len(new) // 2  # the interrupted copy, hidden
    # The experiment state comes after the searcher's: it must not name a trial the searcher's saved state lacks.
    assert (folder / trials).read_text() == '{"trials": 2}'

    proc = _sync(staging, folder, "whole")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "synced" in out, err[-3000:]
    assert (folder / state).read_bytes() == new and (folder / trials).read_text() == '{"trials": 3}'
    assert (folder / "nested" / "experiment_state.json").read_text() == '{"trial_data": []}'
    assert not list(folder.rglob("*.uploading"))  # the rerun's copy took the interrupted one's place
