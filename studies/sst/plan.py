"""SST-2 on the GLUE phrases: BiLSTM, LSTM and bag of words, each with its own learning-rate search.

A plan (:mod:`rnnlab.experiments.plan`) for the SST goal of docs/reproduction.md
(beat Flax ``examples/sst2``'s 85.2% on the GLUE SST-2 dev set, 3-seed mean,
no pretrained vectors) and the negation gap between bag of words and
recurrent models trained on the same phrases::

    python -m rnnlab plan studies/sst/plan.py --out=runs/sst_plan --lane=0 --lanes=1

Every model trains on the 67,349 GLUE SST-2 training phrases (``glue``), with
the regularisation of Flax's recipe (dropout 0.5 on the embeddings and before
the head, word dropout 0.1, attention pooling for the recurrent models; its
SGD, sizes and 10 epochs are not copied: see docs/reproduction.md), early
stopping on dev accuracy. Each model gets the same tuning effort: a grid of
:data:`RATES` on dev with seed 0, then the best rate with seeds 1, 2, 3.
"""

from typing import Mapping, Sequence

from rnnlab.experiments.plan import Search
from rnnlab.experiments.search_space import grid_text

SST = "configs/sst.py"
METRIC = "valid/accuracy:max"
RATES = (5e-4, 1e-3, 2e-3)
RECIPE = "glue,model.word_dropout=0.1,steps=12000,train.patience=6"
MODELS = {"bilstm": "bilstm,pooling=attention", "bow": "bow", "lstm": "lstm,pooling=attention"}


def searches(models: Mapping[str, str], recipe: str = RECIPE, rates: Sequence[float] = RATES) -> list[Search]:
    """The SST-2 tuning effort every round gives each of its models (``{name: config variants}``): a grid of
    learning ``rates`` (:data:`RATES` for Adam) on dev with seed 0, then the best rate with seeds 1, 2, 3; search
    ``sst2/<name>`` of ``configs/sst.py:<recipe>,<variants>``."""
    return [Search(f"sst2/{name}", f"{SST}:{recipe},{variants}", METRIC, grid_text(rates), trials=len(rates), seeds=3,
                   startup_trials=len(rates), vary_data_seed=False) for name, variants in models.items()]


def get_plan() -> list[Search]:
    """One search per model: BiLSTM first (the goal), then the bag of words and the LSTM."""
    return searches(MODELS)
