#!/usr/bin/env bash
# Here, before a device call: the wheels the GPU machine lacks (Keras and what it needs
# beyond that machine's packages) into .whl/, and the real training set packed small into
# .devdata/tgs.npz (both git-ignored; never commit them). Then, with the device tool:
#   run(carry=[".whl", ".devdata"], timeout_s=420, command=
#     "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade
#      --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit;
#      KERAS_BACKEND=jax PYTHONUNBUFFERED=1 python3 bench/bench_gpu.py --npz .devdata/tgs.npz
#      --out $OUT --stop-after-folds 1 --fold1-floor 0.83")
# and at once (the machine stays warm 30 s, and the run folder with it) the same command
# without --stop-after-folds, which resumes the run with folds 2-5.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  keras==3.15.1 namex optree
# kagglesalt itself as a wheel: it installs the built-in models as kagglesalt_plugins, which a
# plain PYTHONPATH to the checkout does not provide.
python3 -m pip wheel -q --no-deps -w .whl .
python3 - <<'PY'
from pathlib import Path
import tempfile
import numpy as np
from kagglesalt import data

source = Path("..") / "shared" / "tgs-salt"
with tempfile.TemporaryDirectory() as cache:
    train = data.load_train(source, cache_dir=cache)
Path(".devdata").mkdir(exist_ok=True)
np.savez_compressed(".devdata/tgs.npz", ids=train.ids, images=train.images,
                    masks=train.masks, depths=train.depths)
print(f"{len(train)} images into .devdata/tgs.npz")
PY
ls -la .whl .devdata
