"""One training run with its training time measured without compilation; writes the curve as JSON.

    python studies/music/timed_run.py --config=configs/music.py:dataset=nottingham,cell=gru \\
        --workdir=runs/chunked/whole --out=docs/results/music/chunked/whole.json --max_seconds=600

The run is ``train_and_evaluate`` as ``launch.py`` runs it. Around it, every backend compilation is
timed (a ``jax.monitoring`` listener) and every training window (``loop.train_steps``: the steps
between two logs, evaluations or checkpoints) too; the training time at a step is the sum of
the windows up to it minus the compilations inside them. After ``--max_seconds`` the run gets
SIGTERM (it saves and stops). The JSON holds, per validation: step, training seconds and NLL.
"""

import json
import os
import signal
import threading
import time

import jax
from absl import app, flags
from ml_collections import config_flags

from rnnlab.training import loop, train
from rnnlab.training.workdir import read_metrics

config_flags.DEFINE_config_file("config", None, "config file (with :variants)")
flags.DEFINE_string("workdir", None, "the run's workdir")
flags.DEFINE_string("out", None, "the JSON file to write")
flags.DEFINE_float("max_seconds", 600.0, "wall seconds before the run is stopped (SIGTERM)")
FLAGS = flags.FLAGS


def main(argv):
    compiles, windows = [], []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **kw: compiles.append((time.time(), duration))
        if event == "/jax/core/compile/backend_compile_duration" else None)
    steps = loop.train_steps

    def timed(*args, **kwargs):
        start = time.time()
        state, step, checks = steps(*args, **kwargs)
        jax.block_until_ready(state.params)
        windows.append((start, time.time(), step))
        return state, step, checks

    loop.train_steps = timed
    timer = threading.Timer(FLAGS.max_seconds, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    started = time.time()
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    timer.cancel()
    seconds, at_step = 0.0, {0: 0.0}
    for start, end, step in windows:
        compiled = sum(d for t, d in compiles if start <= t <= end)
        seconds += end - start - compiled
        at_step[step] = seconds
    rows = read_metrics(FLAGS.workdir)
    curve = [{"step": r["step"], "train_seconds": round(at_step[r["step"]], 2), "valid_nll": r["valid/nll"]}
             for r in rows if "valid/nll" in r and r["step"] in at_step]
    result = {"config": FLAGS.config.to_dict(), "wall_seconds": round(time.time() - started, 1),
              "compile_seconds_in_training": round(sum(d for t, d in compiles
                                                       if any(s <= t <= e for s, e, _ in windows)), 2),
              "steps": windows[-1][2] if windows else 0, "curve": curve,
              "train_rows": [r for r in rows if "train/loss" in r]}
    with open(FLAGS.out, "w") as f:
        json.dump(result, f, indent=1, default=str)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir", "out"])
    app.run(main)
