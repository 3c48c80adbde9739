"""``python -m rnnlab.predict``: a trained classifier on new sentences, one JSON line each.

    python -m rnnlab.predict --workdir=runs/sst < sentences.txt
    python -m rnnlab.predict --workdir=runs/sst --input=sentences.txt --gates

The work lives in :mod:`rnnlab.experiments.predict`; its public functions are
named here too, so ``rnnlab.predict.load(workdir)`` restores a run for use in Python.
"""

import sys
from typing import Sequence

from rnnlab.experiments.predict import Predictor, TrainedRun, load, predict_file, read_config, restore

__all__ = ["Predictor", "TrainedRun", "load", "read_config", "restore"]


def main(argv: Sequence[str]) -> None:
    """absl entry: reads sentences from ``--input`` or stdin, writes JSON lines to stdout."""
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS
    try:
        predict_file(f.workdir, f.input, gates=f.gates, batch_size=f.batch_size)
    except (ValueError, FileNotFoundError) as e:  # a clear sentence, not a traceback
        sys.exit(f"rnnlab.predict: {e}")


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("workdir", None, "run directory of a trained classifier", required=True)
    flags.DEFINE_string("input", None, "file of one sentence per line (default: stdin)")
    flags.DEFINE_bool("gates", False, "add every layer's gate activations per token")
    flags.DEFINE_integer("batch_size", 64, "sentences per forward pass")


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
