"""Breakdowns of trained runs: negation accuracy by tail length, future-context runs against their ceiling.

    python -m studies.claims.breakdown runs/tuned/negation_tail/*/best__seed* --out=docs/results/by_tail
    python -m studies.claims.breakdown --by=ceiling studies/claims/configs/future_context.py \\
        runs/tuned/future_context/*/best__seed* --fresh=20000 --out=docs/results/ceilings

``--by=tail`` (claim 1 with tails, the ``tail`` variant of ``studies/claims/configs/negation.py``):
each run's best checkpoint (:func:`rnnlab.inference.trained_run.restore`) is
evaluated on its test split, read as training evaluates it, and its accuracy
is broken down by the number of neutral filler tokens after the sentence
(:func:`tail_length`, recovered from the tokens: the generated data is not
touched) in the buckets :data:`TAIL_BUCKETS`, and within each bucket by the
dataset's ``negated`` flag. Writes ``by_tail.md``, ``by_tail.json`` (per seed
and mean +- std per group) and ``by_tail.png``.

``--by=ceiling`` (claim 2): the Bayes-optimal left-to-right tagger of
:mod:`rnnlab.data.ceilings` scored on the test split of each config file
(``path[:variant]``) and each run's own data (from its ``config.json``;
regenerated and checked against the run's recorded data fingerprint), beside
the run's test accuracy on the sentiment words. Writes ``ceilings.md`` and
``ceilings.json``. With ``--fresh=N`` each run and the optimal rule also tag N
new sentences of the run's generator, where sampling luck is small.

Groups are run directories that differ only in their ``__seedS`` suffix
(:func:`rnnlab.experiments.sweep.group_name`); when directories of different
parents share that name (``.../cell=gru/best__seed1``, ``.../bow/best__seed1``),
the parent's name goes in front: ``cell=gru/best``.

The work lives in :mod:`studies.claims.by_tail` and :mod:`studies.claims.ceilings`.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from studies.claims.by_tail import write_by_tail
from studies.claims.ceilings import write_ceilings
from rnnlab.training.workdir import CONFIG_FILE


# ----------------------------------------------------------------------------- command line


def main(argv: Sequence[str]) -> None:
    """absl entry: ``argv[1:]`` are run directories (and, with ``--by=ceiling``, config files)."""
    from absl import app, flags

    f = flags.FLAGS
    sources = list(argv[1:])
    if not sources:
        raise app.UsageError("give run directories (and, with --by=ceiling, config files)")
    if f.by == "tail":
        missing = [s for s in sources if not os.path.isfile(os.path.join(s, CONFIG_FILE))]
        if missing:
            raise app.UsageError(f"not run directories: {missing}")
        sys.stdout.write(write_by_tail(sources, f.out, f.split)["markdown"])
    else:
        sys.stdout.write(write_ceilings(sources, f.out, f.split, fresh=f.fresh)["markdown"])


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("out", None, "output folder (docs/results/by_tail or docs/results/ceilings)", required=True)
    flags.DEFINE_enum("by", "tail", ["tail", "ceiling"], "negation runs by tail length, or the left-to-right "
                      "ceiling of future_context configs and runs")
    flags.DEFINE_string("split", "test", "the split evaluated")
    flags.DEFINE_integer("fresh", 0, "--by=ceiling: also tag this many fresh sentences per run (model vs ceiling)")


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
