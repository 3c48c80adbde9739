"""``python -m rnnlab plan``: a study's searches (trials, then seeds of the best), resumably, in lanes.

    python -m rnnlab plan my_plan.py --out=runs/my_plan --lane=0 --lanes=2 &
    python -m rnnlab plan my_plan.py --out=runs/my_plan --lane=1 --lanes=2 &
    python -m rnnlab plan my_plan.py --out=runs/my_plan --dry_run

The work lives in :mod:`rnnlab.experiments.plan`.
"""

import re
import sys
from typing import Optional, Sequence

from absl import app, flags

from rnnlab.experiments.plan import load_plan, run_lane, status
from rnnlab.commands.common import fail, run_app


def main(argv: Sequence[str]) -> None:
    """absl entry: ``argv[1]`` is the plan file."""
    if len(argv) != 2:
        raise app.UsageError("give one plan file, e.g. my_plan.py (a get_plan() returning rnnlab.experiments.plan.Search items)")
    f = flags.FLAGS
    try:
        full = load_plan(argv[1])
    except (ValueError, FileNotFoundError) as e:  # no get_plan(), duplicate names, unknown or cyclic `after`
        fail("rnnlab plan", e)
    chosen = {item.name for item in full if re.search(f.only, item.name)}
    chosen |= {dep for item in full if item.name in chosen for dep in item.after}  # what they need
    plan = [item for item in full if item.name in chosen]
    if f.dry_run:
        for name, state in status(plan, f.out):
            print(f"{state:8s} {name}")
        return
    try:
        failed = run_lane(plan, f.out, lane=f.lane, lanes=f.lanes, poll=f.poll)
    except ImportError as e:  # Optuna: the experiments extra
        fail("rnnlab plan", e)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        sys.exit(1)


def _define_flags() -> None:
    flags.DEFINE_string("out", None, "parent folder of the searches", required=True)
    flags.DEFINE_integer("lane", 0, "this process's lane")
    flags.DEFINE_integer("lanes", 1, "lanes (processes) sharing the plan")
    flags.DEFINE_string("only", "", "regular expression: run only the searches whose name matches")
    flags.DEFINE_float("poll", 30.0, "seconds between checks while waiting for another lane's search")
    flags.DEFINE_bool("dry_run", False, "print each search's state and exit")



def run(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m rnnlab plan`` (``argv`` defaults to ``sys.argv``)."""
    run_app("rnnlab plan", main, _define_flags, argv)


if __name__ == "__main__":
    run()
