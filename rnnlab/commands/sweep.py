"""``python -m rnnlab sweep``: a grid of configs x seeds into sibling workdirs, resumably.

    python -m rnnlab sweep configs/negation.py configs/negation.py:cell=gru --seeds=0,1,2 --out=runs/mine

The work lives in :mod:`rnnlab.experiments.sweep`.
"""

import sys
from typing import Optional, Sequence

from absl import app, flags

from rnnlab.experiments.sweep import sweep
from rnnlab.commands.common import run_app, run_command


def main(argv: Sequence[str]) -> None:
    """absl entry: ``argv[1:]`` are the config specs."""
    if len(argv) < 2:
        raise app.UsageError("give at least one config file")
    f = flags.FLAGS
    work = lambda: sweep(list(argv[1:]), f.out, seeds=f.seeds, also=f.also, dry_run=f.dry_run)  # noqa: E731
    if not run_command("rnnlab sweep", work, all_setup=True):
        sys.exit(1)


def _define_flags() -> None:
    flags.DEFINE_string("out", None, "parent folder of the workdirs", required=True)
    flags.DEFINE_string("seeds", "0,1,2", "comma list (0,1,2) or range (0-4)")
    flags.DEFINE_string("also", "", "variant appended to every run, e.g. smoke")
    flags.DEFINE_bool("dry_run", False, "list the runs and whether they are done")



def run(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m rnnlab sweep`` (``argv`` defaults to ``sys.argv``)."""
    run_app("rnnlab sweep", main, _define_flags, argv)


if __name__ == "__main__":
    run()
