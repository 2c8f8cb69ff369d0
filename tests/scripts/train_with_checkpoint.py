"""A training run that a test kills with SIGKILL and resumes.

usage: train_with_checkpoint.py CHECKPOINT RESULT [--slow-fsync SECONDS]
Resumes from CHECKPOINT when it exists; writes the final model to RESULT and
its History to RESULT.json.
"""

import json
import os
import sys
import time

import numpy as np

import xpnet
import xpnet.serialization

checkpoint, result = sys.argv[1], sys.argv[2]
if "--slow-fsync" in sys.argv:
    delay = float(sys.argv[sys.argv.index("--slow-fsync") + 1])
    real_fsync = os.fsync

    def slow_fsync(fd):  # widen the window in which a kill lands mid-save
        time.sleep(delay)
        real_fsync(fd)

    xpnet.serialization.os.fsync = slow_fsync

rng = np.random.default_rng(0)
X = rng.normal(size=(90, 5))
y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 1).astype(int)
net = xpnet.MLP([5, 16, 3], "relu", "softmax", backend="numpy", dtype="float64", seed=1)
resume = checkpoint if os.path.exists(checkpoint) else None
hist = net.fit(X, y, loss="cross_entropy", optimizer="adam", lr=0.01, epochs=30, batch_size=16, seed=7,
               checkpoint=checkpoint, resume=resume)
net.save(result)
with open(result + ".json", "w") as f:
    json.dump(hist.to_dict(), f)
