"""The image build of tests/tuner/test_images.py: docker/Dockerfile as shipped, built with podman on a
Debian base made here (no registry serves base images on this machine).

`make test` runs it in the background while the parallel phase runs (python tests/image_build.py
FOLDER: it writes FOLDER/build.json), and the serial phase's image tests take that image
(TUNER_PREBUILT_IMAGE=FOLDER). The build keeps one core busy for about 3 minutes and leaves the other
idle; run alone in the serial phase it was that phase's longest step (189 s of 455, 2026-12-07). A
`pytest` run without make builds the image in the fixture, as before.

What this machine needs for it, kept here (a user's `docker build` stays the plain command): a
containers.conf whose ulimits match this machine's, runc with cgroupfs, and the host's package
configuration (pip.conf, its local indexes, the CA bundle of the proxy, resolv.conf) mounted into the build.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE = "localhost/tuner-test-python:3.11"
IMAGE = "localhost/tuner:test"
TOOLS = ("podman", "mmdebstrap", "runc")
# The host's package configuration, forwarded into the build when present (read-only).
PACKAGE_CONFIG = ["/etc/pip.conf", "/etc/xdg/pip", "/opt/pypi", "/opt/pypi-more", "/opt/wheels", "/etc/resolv.conf",
                  os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"]
RECORD = "build.json"  # what the background build leaves in its folder: {"image", "seconds", "size"} or {"error"}


class Podman:
    def __init__(self, root: Path):
        self.root = root
        conf = root / "containers.conf"
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)  # what a build may set here (more: EPERM)
        conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
                        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def __call__(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert res.returncode == 0, f"podman {' '.join(args[:6])}...\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        return res

    def build(self, dockerfile: Path, tag: str, *extra: str, context: Path = REPO,
              timeout: float = 1800) -> subprocess.CompletedProcess:
        return self("build", "--isolation", "chroot", "--network", "host", "--pull=never", "-f", str(dockerfile),
                    "-t", tag, *extra, str(context), timeout=timeout)


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if not shutil.which(tool)]


def make_base(pm: Podman) -> None:
    """A Debian base that behaves like python:3.11-slim (python 3.11, venv and pip, a `python` command),
    unless podman has it already."""
    if pm("image", "exists", BASE, check=False).returncode == 0:
        return
    tar = pm.root / "base.tar"
    res = subprocess.run(["mmdebstrap", "--variant=minbase", "--include=python3,python3-venv,python3-pip,ca-certificates",
                          "bookworm", str(tar)], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    pm("import", str(tar), f"{BASE}-debian")
    (pm.root / "Base.Dockerfile").write_text(
        f"FROM {BASE}-debian\nRUN ln -sf /usr/bin/python3 /usr/local/bin/python && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED\n")
    pm.build(pm.root / "Base.Dockerfile", BASE, context=pm.root)
    tar.unlink()


def _pip_extra_index() -> str:
    res = subprocess.run(["python3", "-m", "pip", "config", "get", "global.extra-index-url"], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else ""


def build_image(pm: Podman) -> dict:
    """docker/Dockerfile as shipped, with its default torch (PyPI's, CUDA 13 wheels): the GPU image."""
    mounts = [a for p in PACKAGE_CONFIG if Path(p).exists() for a in ("-v", f"{p}:{p}:ro")]
    started = time.time()
    pm.build(REPO / "docker" / "Dockerfile", IMAGE, "--build-arg", f"BASE_IMAGE={BASE}",
             "--build-arg", f"PIP_EXTRA_INDEX_URL={_pip_extra_index()}", *mounts)
    size = int(pm("image", "inspect", IMAGE, "--format", "{{.Size}}").stdout.strip())
    return {"image": IMAGE, "seconds": round(time.time() - started), "size": size}


def prebuilt(folder: Path, wait: float = 1800) -> dict:
    """The background build's record: waits for it (make waits first), and fails with its error."""
    record = folder / RECORD
    deadline = time.time() + wait
    while not record.is_file():
        assert time.time() < deadline, f"no {record} after {wait:.0f} s: the background image build did not finish"
        time.sleep(2)
    done = json.loads(record.read_text())
    assert "error" not in done, f"the background image build failed (log: {folder / 'build.log'}):\n{done['error']}"
    return done


def main(folder: Path) -> int:
    """Build the base and the image, and record how it went in FOLDER/build.json (written last, whole)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        missing = missing_tools()
        assert not missing, f"{', '.join(missing)} missing: .ci/run installs podman, mmdebstrap and runc"
        pm = Podman(folder)
        make_base(pm)
        done = build_image(pm)
    except BaseException:  # noqa: BLE001 - any failure is the serial phase's to report, with its text
        done = {"error": traceback.format_exc()[-6000:]}
    (folder / f"{RECORD}.partial").write_text(json.dumps(done))
    (folder / f"{RECORD}.partial").replace(folder / RECORD)
    print(json.dumps(done)[:6000])
    return 0 if "error" not in done else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve()))
