"""SST-2, the pooling and direction axes of issue 24's behaviour goal: read out at the final states.

The recurrent models of :mod:`studies.sst.plan` pool with attention over the words, which lets a
model weigh "good" and leave "not" aside; read out at the last step (the forward direction's final
state beside the backward direction's), a model must carry the negation in its state to the end.
This round asks whether that reading passes more of the behavioural suite
(``studies/sst/checklist.py``), for the BiLSTM and for the left-to-right LSTM (the direction axis).
Same recipe, same tuning effort as the plan's models (the grid :data:`studies.sst.plan.RATES` on dev
with seed 0, then the best rate with seeds 1, 2, 3). Two workers may share the searches (each runs
the whole plan; a search's trials and seed runs are shared through its study)::

    python -m rnnlab plan studies/sst/pooling_plan.py --out=runs/sst_pooling &
    python -m rnnlab plan studies/sst/pooling_plan.py --out=runs/sst_pooling &
"""

from rnnlab.experiments.plan import Search
from studies.sst.plan import searches

MODELS = {"bilstm_last": "bilstm,pooling=last", "lstm_last": "lstm,pooling=last"}


def get_plan() -> list[Search]:
    """One search per model: the BiLSTM with last-step pooling, then the left-to-right LSTM read the same way
    (the direction axis: does the backward reading matter once the model must carry the sentence to its end?)."""
    return searches(MODELS)
