"""SST-2, the augmentation axis of issue 24's behaviour goal: the suite's rules shown on other words.

The treebank's training labels hold almost no "although" and no clausal negation of the suite's
frames (:mod:`studies.sst.coverage`). This round trains the last-step LSTM of
:mod:`studies.sst.pooling_plan`, and its two-layer form of :mod:`studies.sst.size_plan` (the best dev
accuracy so far), on the GLUE SST-2 phrases plus the 2,000 sentences of :mod:`studies.sst.augment`
(``data.extra_train``: the rules on words and frames outside the suite), with the same recipe and
tuning effort as every other round (the grid :data:`studies.sst.plan.RATES` on dev with seed 0, then
the best rate with seeds 1, 2, 3)::

    python -m studies.sst.augment --out=runs/sst_augment/extra_train.tsv
    python -m rnnlab plan studies/sst/augment_plan.py --out=runs/sst_augment

The one-layer model chose 2e-3, the grid's top, so the plan ends with its one trial at 4e-3 (as
:mod:`studies.sst.above_grid_plan` gave the earlier rounds' models at the top).
"""

from rnnlab.experiments.plan import Search
from studies.sst import above_grid_plan
from studies.sst.plan import searches
from studies.sst.size_plan import LONGER_CAP

EXTRA_TRAIN = "runs/sst_augment/extra_train.tsv"  # written by python -m studies.sst.augment; relative to the run's cwd
MODELS = {"lstm_last_augmented": f"lstm,pooling=last,data.extra_train={EXTRA_TRAIN}",
          "lstm_last_deep_augmented": f"lstm,pooling=last,{LONGER_CAP},model.num_layers=2,model.dropout=0.3,"
                                      f"data.extra_train={EXTRA_TRAIN}"}


def get_plan() -> list[Search]:
    """One search per model: the last-step LSTM trained on the phrases and the augmentation, then the same with
    two layers (the best dev accuracy of the size axis, :mod:`studies.sst.size_plan`); then one trial above the
    grid for the one-layer model, which chose the grid's top rate (:func:`studies.sst.above_grid_plan.outside_grid`)."""
    plan = searches(MODELS)
    return plan + [above_grid_plan.outside_grid(plan[0])]
