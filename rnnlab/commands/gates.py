"""``python -m rnnlab gates``: per-unit keep-gate saturation of trained runs, grouped over seeds.

    python -m rnnlab gates runs/tuned/copy100/cell={lstm,gru}/best__seed{1,2,3} --out=docs/results/saturation \
        --target='valid/masked_accuracy>=0.95'

For each run, the gate that keeps the old state (the LSTM's forget gate, the GRU's update gate; any
cell's, from its definition) is traced over the first ``--max_examples`` examples of ``--split``, at
the first, best and last checkpoints; a unit whose keep value is near 1 on at least
``--memory_fraction`` of the valid steps is a memory unit. Writes ``saturation.md``, ``saturation.json``
and ``saturation.png`` (:func:`rnnlab.analysis.saturation_report.saturation_report`, where the work lives).
"""

import sys
from typing import Optional, Sequence

from absl import app, flags

from rnnlab.analysis.saturation_report import saturation_report
from rnnlab.commands.common import run_app, run_command


def main(argv: Sequence[str]) -> None:
    """absl entry: ``argv[1:]`` are run directories."""
    if len(argv) < 2:
        raise app.UsageError("give at least one run directory")
    f = flags.FLAGS
    result = run_command("rnnlab gates", lambda: saturation_report(
        list(argv[1:]), f.out, split=f.split, max_examples=f.max_examples, high=f.high, low=f.low,
        memory_fraction=f.memory_fraction, targets=f.target), all_setup=True)
    sys.stdout.write(result["markdown"])


def _define_flags() -> None:
    flags.DEFINE_string("out", None, "output folder (docs/results/saturation)", required=True)
    flags.DEFINE_string("split", "test", "split whose first examples are traced")
    flags.DEFINE_integer("max_examples", 256, "examples traced per run")
    flags.DEFINE_float("high", 0.9, "keep >= high is near 1")
    flags.DEFINE_float("low", 0.1, "keep <= low is near 0")
    flags.DEFINE_float("memory_fraction", 0.5, "memory unit: near 1 at >= this fraction of steps")
    flags.DEFINE_multi_string("target", [], "METRIC>=VALUE or METRIC<=VALUE on results.json: learned or not")


def run(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m rnnlab gates`` (``argv`` defaults to ``sys.argv``)."""
    run_app("rnnlab gates", main, _define_flags, argv)


if __name__ == "__main__":
    run()
