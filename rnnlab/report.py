"""``python -m rnnlab.report``: tables and plots of finished runs, grouped over seeds.

    python -m rnnlab.report runs/claims/negation-* --out=docs/results/negation

The work lives in :mod:`rnnlab.experiments.report` (use it from Python or a notebook).
"""

import os
import sys
from typing import Sequence

from absl import app, flags

from rnnlab.experiments.report import write_report


def main(argv: Sequence[str]) -> None:
    """absl entry: ``argv[1:]`` are run directories."""
    workdirs = [w for w in argv[1:] if os.path.isdir(w)]
    if not workdirs:
        raise app.UsageError("give run directories")
    f = flags.FLAGS
    result = write_report(workdirs, f.out, split=f.split, curve_key=f.curve or None, gates=f.gates,
                          targets=f.target)
    sys.stdout.write(result["table"])


def _define_flags() -> None:
    flags.DEFINE_string("out", None, "output folder (docs/results/NAME)", required=True)
    flags.DEFINE_string("split", "test", "results split in the tables")
    flags.DEFINE_string("curve", "", "metric over steps (default valid/accuracy or valid/loss)")
    flags.DEFINE_bool("gates", True, "trace gates of recurrent models (histograms, heat maps)")
    flags.DEFINE_multi_string("target", [], "METRIC>=VALUE or METRIC<=VALUE: seeds reaching it, steps, time")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
