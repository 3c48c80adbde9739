"""SST-2, the head and embedding axes of issue 24's goal: Flax ``examples/sst2``'s two sizes untried so far.

The augmented last-step LSTM (:mod:`studies.sst.augment_plan`) passes the behaviour goal with dev
85.1 +- 0.2, under Flax's 85.2. Two of the choices of Flax's model are still untried on it (its SGD
was, :mod:`studies.sst.sgd_plan`): its classifier is an MLP with one hidden layer as wide as the LSTM
(rnnlab's :class:`rnnlab.training.models.MLP` uses ReLU where Flax uses tanh), and its embeddings are
300 wide, three times rnnlab's 100. This round gives each its own model, changing that one thing of the
augmented last-step LSTM, with the same tuning effort as every round (the grid
:data:`studies.sst.plan.RATES` on dev with seed 0, then the best rate with seeds 1, 2, 3)::

    python -m studies.sst.augment --out=runs/sst_augment/extra_train.tsv
    python -m rnnlab plan studies/sst/head_plan.py --out=runs/sst_head
"""

from rnnlab.experiments.plan import Search
from studies.sst.augment_plan import MODELS as AUGMENTED
from studies.sst.plan import searches

TWIN = AUGMENTED["lstm_last_augmented"]
MODELS = {"lstm_last_augmented_mlp": f"{TWIN},model.mlp_sizes=(150,)",  # one hidden layer of H = 150 units
          "lstm_last_augmented_embed300": f"{TWIN},model.embed_size=300"}


def get_plan() -> list[Search]:
    """One search per model of :data:`MODELS`: the augmented last-step LSTM with an MLP head, then with
    300-wide embeddings."""
    return searches(MODELS)
