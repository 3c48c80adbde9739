"""``python -m rnnlab behaviour``: a behavioural test suite (CheckList-style) on a trained classifier.

    python -m rnnlab behaviour --workdir=runs/sst --suite=studies/sst/checklist.py
    python -m rnnlab behaviour --workdir=runs/sst --suite=my_suite.json --out=behaviour.json --examples=10

Prints a table of each group's failure rate (group, kind, n, failures, failure rate) and, with
``--out``, writes the whole result as JSON: per group the counts, the counts per template and the
worst failing cases. The suite is a ``.py`` file defining ``get_suite()`` or a ``.json`` file; what a
suite holds, and how each kind of group fails, is in :mod:`rnnlab.analysis.behaviour`, where the work
lives. A separate command, not a flag of ``predict``: ``predict`` serves a model's outputs on inputs;
this one judges them against expectations. Words outside the run's vocabulary are an error that lists
them unless ``--allow_unknown``. Every error a user can cause prints one line and exits with status 1.
"""

import sys
from typing import Optional, Sequence

from absl import app, flags

from rnnlab.analysis.behaviour import behaviour_report
from rnnlab.commands.common import run_app, run_command


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--workdir`` and ``--suite`` in, the failure table out (and ``--out`` JSON)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS
    result = run_command("rnnlab behaviour", lambda: behaviour_report(
        f.workdir, f.suite, f.out, batch_size=f.batch_size, examples=f.examples, allow_unknown=f.allow_unknown),
        all_setup=True)
    sys.stdout.write(result["markdown"])


def _define_flags() -> None:
    flags.DEFINE_string("workdir", None, "run directory of a trained text classifier", required=True)
    flags.DEFINE_string("suite", None, "a .py file defining get_suite(), or a .json suite", required=True)
    flags.DEFINE_string("out", "", "write the result as JSON here")
    flags.DEFINE_integer("batch_size", 256, "texts per forward pass (a positive integer)")
    flags.DEFINE_integer("examples", 5, "the worst failing cases kept per group")
    flags.DEFINE_bool("allow_unknown", False, "score texts with words outside the run's vocabulary (as <unk>)")


def run(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m rnnlab behaviour`` (``argv`` defaults to ``sys.argv``)."""
    run_app("rnnlab behaviour", main, _define_flags, argv)


if __name__ == "__main__":
    run()
