#!/usr/bin/env bash
# The lowest versions pyproject.toml allows, installed and tested: a venv
# resolved with uv's `--resolution lowest-direct` (each direct requirement
# at its lower bound), then the suite on it. Run from the repository root;
# needs uv (pip install uv). Extra arguments go to pytest, e.g.
#   tools/lowest_versions.sh -n 2 -m "not slow"
set -eu
venv=${LOWEST_VENV:-/tmp/xpnet-lowest}
uv venv -q --clear -p "${PYTHON:-python3}" "$venv"
uv pip install -q -p "$venv/bin/python" --resolution lowest-direct ".[test,sklearn]" "pytest-xdist>=3.5"
uv pip list -p "$venv/bin/python" | grep -iE "^(numpy|pandas|scikit-learn|array-api-[a-z]+|safetensors|tqdm|matplotlib) "
"$venv/bin/python" -m pytest -q -p no:randomly "$@"
