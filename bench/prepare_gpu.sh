#!/usr/bin/env bash
# Here, before a device call: the wheels the GPU machine lacks (Keras and what it needs
# beyond that machine's packages, and kagglesalt itself) into .whl/, and the real
# competition packed small into .devdata/tgs.npz (both git-ignored; never commit them).
#   bash bench/prepare_gpu.sh [--subset N]   (N training images: a trial on a CPU)
# Then bench/gpu_session.sh is the device call (its header says how; bench/RESULTS.md,
# "Waiting for a GPU", has the commands).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  keras==3.15.1 namex optree
# kagglesalt itself as a wheel: it installs the built-in models as kagglesalt_plugins, which a
# plain PYTHONPATH to the checkout does not provide.
python3 -m pip wheel -q --no-deps -w .whl .
python3 bench/gpu_data.py --out .devdata/tgs.npz "$@"
rm -f .devdata/run*.tar.gz  # a new measurement starts a new run
ls -la .whl .devdata
