"""SST-2, the optimizer axis of issue 24's goal: Flax ``examples/sst2``'s SGD on the augmented last-step LSTM.

Flax's example, whose 85.2% on the GLUE SST-2 dev set is the goal, trains with SGD (momentum 0.9,
learning rate 0.1, weight decay 3e-6 added to the gradient); every rnnlab round used Adam. This round
changes only the optimizer of the best-dev model so far, the last-step LSTM trained also on the
augmentation (:mod:`studies.sst.augment_plan`): SGD with Flax's momentum and weight decay, gradients
still clipped at 1, and the step cap doubled (24,000 steps, as :mod:`studies.sst.size_plan`: SGD may
need more steps; early stopping with the same patience ends it sooner). Same tuning effort: its own
3-rate grid bracketing Flax's 0.1 (:data:`RATES`) on dev with seed 0, then the best rate with seeds
1, 2, 3. The best was the grid's bottom, 0.05, so the plan ends with one trial at 0.025::

    python -m studies.sst.augment --out=runs/sst_augment/extra_train.tsv
    python -m rnnlab plan studies/sst/sgd_plan.py --out=runs/sst_sgd
"""

from rnnlab.experiments.plan import Search
from studies.sst.above_grid_plan import outside_grid
from studies.sst.augment_plan import MODELS as AUGMENTED
from studies.sst.plan import searches
from studies.sst.size_plan import LONGER_CAP

RATES = (0.05, 0.1, 0.2)  # Flax's 0.1 in the middle
FLAX_SGD = "optim.name=sgd,optim.momentum=0.9,optim.weight_decay=3e-6"
MODELS = {"lstm_last_augmented_sgd": f"{AUGMENTED['lstm_last_augmented']},{FLAX_SGD},{LONGER_CAP}"}


BELOW_GRID = 0.025  # the grid's bottom, 0.05, was chosen: one trial below it


def get_plan() -> list[Search]:
    """One search: the augmented last-step LSTM with Flax's SGD, on its own grid of :data:`RATES`; then its one
    trial at :data:`BELOW_GRID` (the chosen rate was the grid's bottom;
    :func:`studies.sst.above_grid_plan.outside_grid`)."""
    plan = searches(MODELS, rates=RATES)
    return plan + [outside_grid(plan[0], BELOW_GRID)]
