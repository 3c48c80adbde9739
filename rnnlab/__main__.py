"""``python -m rnnlab COMMAND [flags]``: every command of rnnlab, from one place.

    python -m rnnlab launch --config=configs/negation.py --workdir=runs/negation
    python -m rnnlab sweep configs/negation.py:cell=gru --seeds=0-2 --out=runs/sweep
    python -m rnnlab search configs/music.py:dataset=jsb --trials=10 --out=runs/search
    python -m rnnlab plan PLAN.py --out=runs/plan
    python -m rnnlab predict --workdir=runs/negation < sentences.txt
    python -m rnnlab report runs/sweep/* --out=reports/sweep
    python -m rnnlab gates runs/sweep/* --out=reports/gates
    python -m rnnlab behaviour --workdir=runs/sst --suite=studies/sst/checklist.py

Each command is a module of :mod:`rnnlab.commands` (flags in, one call into the layer that does the
work); ``python -m rnnlab COMMAND --help`` lists its flags.
"""

import importlib
import sys
from typing import Optional, Sequence

from rnnlab.commands import COMMANDS


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Runs ``rnnlab.commands.<argv[1]>`` with the remaining arguments (``argv`` defaults to ``sys.argv``)."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] not in COMMANDS:
        given = f"unknown command {argv[1]!r}; " if len(argv) > 1 and not argv[1].startswith("-") else ""
        sys.exit(f"usage: python -m rnnlab COMMAND [flags]: {given}commands: {', '.join(COMMANDS)}")
    command = importlib.import_module(f"rnnlab.commands.{argv[1]}")
    command.run([f"rnnlab {argv[1]}", *argv[2:]])


if __name__ == "__main__":
    main()
