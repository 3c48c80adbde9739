"""SST-2, the weight-averaging axis of issue 24's goal: the augmented last-step LSTM evaluated at its averaged params.

The augmented last-step LSTM (:mod:`studies.sst.augment_plan`) passes the behaviour goal with dev
85.1 +- 0.2, under the goal's 85.2; no setting of Flax's recipe lifted it (:mod:`studies.sst.sgd_plan`,
:mod:`studies.sst.head_plan`). This round changes one thing of a different kind: the run evaluates, keeps
and serves an exponential moving average of its params (Polyak averaging, ``optim.average_decay``:
:func:`rnnlab.training.optim.average_params`) with decay :data:`DECAY`, a horizon of about a thousand
steps (half an epoch of the GLUE phrases), fixed beforehand and not tuned. The training steps are those
of the augmented model. Same tuning effort as every round (the grid :data:`studies.sst.plan.RATES` on
dev with seed 0, then the best rate with seeds 1, 2, 3). It chose 2e-3, the grid's top, so the plan goes on
with its one trial at 4e-3 (:func:`studies.sst.above_grid_plan.outside_grid`). That trial beat the chosen
one (85.4 against 83.9 on dev), so the optimum lies above the grid: the plan ends with a search of its
own above it (:data:`ABOVE`: 4e-3 again, which reruns deterministically, and 8e-3), whose better rate gets
seeds 1, 2, 3 in turn. The two rates then disagreed between seed 0 and seeds 1-3, so the plan ends with held-out
seeds: the rate with the better mean dev accuracy over seeds 0-3 (:data:`HELD_OUT_RATE`, 2e-3: 84.9 against
84.7 for 4e-3) on seeds 4, 5, 6, which took no part in any choice (its search's config has ``train.seed=3``:
its one trial reruns seed 3, its seed runs are seeds 4, 5, 6)::

    python -m studies.sst.augment --out=runs/sst_augment/extra_train.tsv
    python -m rnnlab plan studies/sst/average_plan.py --out=runs/sst_average
"""

from rnnlab.experiments.plan import Search
from studies.sst.above_grid_plan import outside_grid
from studies.sst.augment_plan import MODELS as AUGMENTED
from studies.sst.plan import searches

DECAY = 0.999
MODELS = {"lstm_last_augmented_average": f"{AUGMENTED['lstm_last_augmented']},optim.average_decay={DECAY}"}
ABOVE = (4e-3, 8e-3)  # the rates above the grid, after the trial at 4e-3 beat the grid's best
HELD_OUT_RATE = 2e-3  # the better mean dev accuracy over seeds 0-3 (2e-3: 84.91, 4e-3: 84.65)


def get_plan() -> list[Search]:
    """One search: the augmented last-step LSTM evaluated at its params' moving average (:data:`DECAY`); then its
    one trial above the grid (it chose the grid's top rate); then, that trial being better, the search of
    :data:`ABOVE` with its seeds (``sst2/lstm_last_augmented_average_above``); then :data:`HELD_OUT_RATE` on the
    held-out seeds 4, 5, 6 (``sst2/lstm_last_augmented_average_held_out``)."""
    plan = searches(MODELS)
    above = searches({f"{name}_above": variants for name, variants in MODELS.items()}, rates=ABOVE)
    held_out = searches({f"{name}_held_out": f"{variants},train.seed=3" for name, variants in MODELS.items()},
                        rates=(HELD_OUT_RATE,))
    return plan + [outside_grid(plan[0])] + above + held_out
