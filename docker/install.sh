#!/usr/bin/env sh
# The install steps of the Docker images, in two cache-friendly phases; a test runs the same
# steps in a fresh virtual environment (tests/tuner/test_docker.py), since images cannot be built
# on a machine without a Docker engine.
#
#   docker/install.sh deps      dependencies only: needs pyproject.toml and README.md (no code yet)
#   docker/install.sh project   the project itself, after the code is copied
#
# Run from the project root with the target Python first on PATH. TORCH_INDEX_URL picks the
# torch build (https://download.pytorch.org/whl/cu130 for the GPU image, .../whl/cpu for the CPU
# one); empty: pip's own configuration.
set -eu
phase=${1:?usage: docker/install.sh deps|project}
case "$phase" in
  deps)
    python -m pip install --no-cache-dir --upgrade pip
    if [ -n "${TORCH_INDEX_URL:-}" ]; then
      python -m pip install --no-cache-dir --extra-index-url "$TORCH_INDEX_URL" torch==2.14.1 torchvision==0.29.1
    else
      python -m pip install --no-cache-dir torch==2.14.1 torchvision==0.29.1
    fi
    # pyproject.toml is the one list of dependencies: installing the (still code-less) project pulls them in.
    python -m pip install --no-cache-dir .
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
