"""``python -m rnnlab.predict``: a trained run of any task on new inputs, one JSON line each.

    python -m rnnlab.predict --workdir=runs/sst < sentences.txt
    python -m rnnlab.predict --workdir=runs/sst --input=sentences.txt --gates
    python -m rnnlab.predict --workdir=runs/jsb --input=new.npz

Runs over tokens read raw text, one input per line; runs over feature vectors
an ``.npz`` file holding ``inputs``. Each JSON record ends with ``"step"``, the
checkpoint step that served it (also logged to stderr, with a warning when a
damaged newer checkpoint was skipped). The records per task, and how inputs
are read, are in :mod:`rnnlab.experiments.predict`, where the work lives; its
public functions are named here too, so ``rnnlab.predict.load(workdir)``
restores a run for use in Python. Every error a user can cause prints one line
``rnnlab.predict: <message>`` and exits with status 1.
"""

import os
import sys
from typing import Optional, Sequence

from rnnlab.experiments.predict import Predictor, TrainedRun, load, predict_file, read_config, restore
from rnnlab.training.command import fail

__all__ = ["Predictor", "TrainedRun", "load", "read_config", "restore"]


def run(workdir: str, input_path: Optional[str], gates: bool, batch_size: int) -> None:
    """:func:`predict_file`, with every error a user can cause as one line on stderr and exit status 1."""
    try:
        predict_file(workdir, input_path, gates=gates, batch_size=batch_size)
    except (ValueError, OSError) as e:  # a clear sentence, not a traceback (OSError: missing or unreadable files)
        if isinstance(e, BrokenPipeError):  # stdout closed early (`| head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        fail("rnnlab.predict", e)


def main(argv: Sequence[str]) -> None:
    """absl entry: reads inputs from ``--input`` or stdin, writes JSON lines to stdout."""
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS
    run(f.workdir, f.input, f.gates, f.batch_size)


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("workdir", None, "run directory of a trained model (any task)", required=True)
    flags.DEFINE_string("input", None, "text file of one input per line (default: stdin), or an .npz file "
                        "holding 'inputs' for runs over feature vectors")
    flags.DEFINE_bool("gates", False, "add every layer's gate activations per step")
    flags.DEFINE_integer("batch_size", 64, "inputs per forward pass (a positive integer)")


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
