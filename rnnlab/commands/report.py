"""``python -m rnnlab report``: tables and plots of finished runs, grouped over seeds; or of a plan's output.

    python -m rnnlab report runs/claims/negation-* --out=docs/results/negation
    python -m rnnlab report --plan=my_plan.py --runs=runs/my_plan --out=reports/my_plan

The work lives in :mod:`rnnlab.analysis.report` (run directories) and
:mod:`rnnlab.analysis.tuned` (a plan: ``tuned.md``, ``ablation.md``, ``tuned.json``);
use them from Python or a notebook.
"""

import os
import sys
from typing import Optional, Sequence

from absl import app, flags

from rnnlab.analysis.report import write_report
from rnnlab.analysis.tuned import write_tuned_report
from rnnlab.commands.common import run_app, run_command


def main(argv: Sequence[str]) -> None:
    """absl entry: ``argv[1:]`` are run directories, or ``--plan`` and ``--runs`` name a plan's output."""
    f = flags.FLAGS
    if f.plan:
        if argv[1:] or not f.runs:
            raise app.UsageError("--plan takes --runs (the plan's output folder) and no run directories")
        result = run_command("rnnlab report", lambda: write_tuned_report(f.plan, f.runs, f.out), all_setup=True)
        sys.stdout.write(result["markdown"])
        return
    workdirs = [w for w in argv[1:] if os.path.isdir(w)]
    if not workdirs:
        raise app.UsageError("give run directories, or --plan and --runs")
    result = run_command("rnnlab report", lambda: write_report(workdirs, f.out, split=f.split, curve_key=f.curve or None,
                                                               gates=f.gates, targets=f.target), all_setup=True)
    sys.stdout.write(result["table"])


def _define_flags() -> None:
    flags.DEFINE_string("out", None, "output folder (docs/results/NAME)", required=True)
    flags.DEFINE_string("split", "test", "results split in the tables")
    flags.DEFINE_string("curve", "", "metric over steps (default valid/accuracy or valid/loss)")
    flags.DEFINE_bool("gates", True, "trace gates of recurrent models (histograms, heat maps)")
    flags.DEFINE_multi_string("target", [], "METRIC>=VALUE or METRIC<=VALUE: seeds reaching it, steps, time")
    flags.DEFINE_string("plan", "", "a plan file (my_plan.py): report its output folder --runs")
    flags.DEFINE_string("runs", "", "with --plan: the plan's output folder (runs/tuned)")



def run(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m rnnlab report`` (``argv`` defaults to ``sys.argv``)."""
    run_app("rnnlab report", main, _define_flags, argv)


if __name__ == "__main__":
    run()
