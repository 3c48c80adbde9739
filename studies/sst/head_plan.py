"""SST-2, the head and embedding axes of issue 24's goal: Flax ``examples/sst2``'s two sizes untried so far.

The augmented last-step LSTM (:mod:`studies.sst.augment_plan`) passes the behaviour goal with dev
85.1 +- 0.2, under Flax's 85.2. Two of the choices of Flax's model are still untried on it (its SGD
was, :mod:`studies.sst.sgd_plan`): its classifier is an MLP with one hidden layer as wide as the LSTM
(rnnlab's :class:`rnnlab.training.models.MLP` uses ReLU where Flax uses tanh), and its embeddings are
300 wide, three times rnnlab's 100. This round gives each its own model, changing that one thing of the
augmented last-step LSTM, with the same tuning effort as every round (the grid
:data:`studies.sst.plan.RATES` on dev with seed 0, then the best rate with seeds 1, 2, 3). The MLP head
chose 2e-3, the grid's top, and the 300-wide embeddings 5e-4, its bottom, so the plan ends with one
trial beyond each edge, 4e-3 and 2.5e-4 (:func:`studies.sst.above_grid_plan.outside_grid`)::

    python -m studies.sst.augment --out=runs/sst_augment/extra_train.tsv
    python -m rnnlab plan studies/sst/head_plan.py --out=runs/sst_head
"""

from rnnlab.experiments.plan import Search
from studies.sst.above_grid_plan import outside_grid
from studies.sst.augment_plan import MODELS as AUGMENTED
from studies.sst.plan import searches

TWIN = AUGMENTED["lstm_last_augmented"]
MODELS = {"lstm_last_augmented_mlp": f"{TWIN},model.mlp_sizes=(150,)",  # one hidden layer of H = 150 units
          "lstm_last_augmented_embed300": f"{TWIN},model.embed_size=300"}

BEYOND_THE_EDGE = {"sst2/lstm_last_augmented_mlp": 4e-3,  # chose 2e-3, the grid's top
                   "sst2/lstm_last_augmented_embed300": 2.5e-4}  # chose 5e-4, the grid's bottom


def get_plan() -> list[Search]:
    """One search per model of :data:`MODELS`: the augmented last-step LSTM with an MLP head, then with
    300-wide embeddings; then each one's trial beyond the edge of the grid it chose (:data:`BEYOND_THE_EDGE`)."""
    plan = searches(MODELS)
    return plan + [outside_grid(search, BEYOND_THE_EDGE[search.name]) for search in plan]
