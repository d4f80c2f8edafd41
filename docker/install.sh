#!/usr/bin/env sh
# The install steps of the image (docker/Dockerfile), in two cache-friendly phases.
#
#   docker/install.sh deps      dependencies only: needs pyproject.toml and constraints.txt (no code yet)
#   docker/install.sh project   the project itself, after the code is copied
#
# Run from the project root with the target Python first on PATH. Versions are those of
# constraints.txt (what the test suite passed with). TORCH_INDEX_URL picks the torch build
# (https://download.pytorch.org/whl/cpu for the CPU image); empty: PyPI's, with its CUDA 13 wheels.
set -eu
phase=${1:?usage: docker/install.sh deps|project}
case "$phase" in
  deps)
    python -m pip install --no-cache-dir --upgrade pip
    if [ -n "${TORCH_INDEX_URL:-}" ]; then
      python -m pip install --no-cache-dir -c constraints.txt --extra-index-url "$TORCH_INDEX_URL" torch torchvision
    else
      python -m pip install --no-cache-dir -c constraints.txt torch torchvision
    fi
    # pyproject.toml is the one list of dependencies, read here so that this layer needs nothing else
    # (a README or code change does not reinstall gigabytes).
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/deps.txt
    python -m pip install --no-cache-dir -c constraints.txt -r /tmp/deps.txt
    rm /tmp/deps.txt
    ;;
  project)
    python -m pip install --no-cache-dir --no-deps --force-reinstall .
    python -c "import trainables.loop, tuner.launch"
    ;;
  *)
    echo "docker/install.sh: unknown phase '$phase' (deps or project)" >&2
    exit 2
    ;;
esac
