"""``python -m rnnlab.sweep``: a grid of configs x seeds into sibling workdirs, resumably.

    python -m rnnlab.sweep configs/claims/negation.py configs/claims/long_memory.py \\
        --seeds=0,1,2 --out=runs/claims

The work lives in :mod:`rnnlab.experiments.sweep`.
"""

import sys
from typing import Sequence

from absl import app, flags

from rnnlab.experiments.sweep import sweep
from rnnlab.training.command import parse_flags_or_exit, run_command


def main(argv: Sequence[str]) -> None:
    """absl entry: ``argv[1:]`` are the config specs."""
    if len(argv) < 2:
        raise app.UsageError("give at least one config file")
    f = flags.FLAGS
    work = lambda: sweep(list(argv[1:]), f.out, seeds=f.seeds, also=f.also, dry_run=f.dry_run)  # noqa: E731
    if not run_command("rnnlab.sweep", work, all_setup=True):
        sys.exit(1)


def _define_flags() -> None:
    flags.DEFINE_string("out", None, "parent folder of the workdirs", required=True)
    flags.DEFINE_string("seeds", "0,1,2", "comma list (0,1,2) or range (0-4)")
    flags.DEFINE_string("also", "", "variant appended to every run, e.g. smoke")
    flags.DEFINE_bool("dry_run", False, "list the runs and whether they are done")


if __name__ == "__main__":
    _define_flags()
    app.run(main, flags_parser=parse_flags_or_exit("rnnlab.sweep"))
