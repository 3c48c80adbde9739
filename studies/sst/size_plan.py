"""SST-2, the length and size axes of issue 24's behaviour goal: the last-step LSTM trained longer, wider, deeper.

The best SST model of :mod:`studies.sst.pooling_plan`, the left-to-right LSTM read at its last step,
reached its best dev accuracy at the 12,000-step cap in two of its six runs, so it may be
under-trained. This round doubles the cap (24,000 steps, the same patience) and asks three questions
of the suite (``studies/sst/checklist.py``): does the longer cap alone change the model; does a state
twice as wide (``model.hidden_size=300``, everything else equal) carry the negation and the contrast to
the end of the sentence better; does a second layer (``model.num_layers=2``, dropout 0.3 between the
layers, as the config's ``bilstm2``)? Same recipe, same tuning effort as the other rounds (the grid
:data:`studies.sst.plan.RATES` on dev with seed 0, then the best rate with seeds 1, 2, 3). Two
workers may share the searches::

    python -m rnnlab plan studies/sst/size_plan.py --out=runs/sst_size &
    python -m rnnlab plan studies/sst/size_plan.py --out=runs/sst_size &
"""

from rnnlab.experiments.plan import Search
from studies.sst.plan import searches

LONGER_CAP = "steps=24000"
MODELS = {"lstm_last_long": f"lstm,pooling=last,{LONGER_CAP}",
          "lstm_last_wide": f"lstm,pooling=last,{LONGER_CAP},model.hidden_size=300",
          "lstm_last_deep": f"lstm,pooling=last,{LONGER_CAP},model.num_layers=2,model.dropout=0.3"}


def get_plan() -> list[Search]:
    """One search per model: the last-step LSTM with the cap doubled, then the same with hidden size 300, then
    with two layers."""
    return searches(MODELS)
