"""SST-2: one rate above the grid, 4e-3, for each model whose chosen rate was the grid's top (2e-3).

Three models of issue 24's item-5 rounds chose 2e-3, the top of :data:`studies.sst.plan.RATES`, so
their optimum may lie above it: the BiLSTM read at its last step (:mod:`studies.sst.pooling_plan`), the
300-unit last-step LSTM (:mod:`studies.sst.size_plan`) and the last-step LSTM trained on sentences
alone (:mod:`studies.sst.phrases_plan`). Each gets the same one extra trial on dev with seed 0 (no
seed runs: a rate that beats the chosen trial would need them)::

    python -m rnnlab plan studies/sst/above_grid_plan.py --out=runs/sst_above_grid
"""

from rnnlab.experiments.plan import Search
from rnnlab.experiments.search_space import grid_text
from studies.sst import phrases_plan, pooling_plan, size_plan

RATE = 4e-3
AT_THE_TOP = ("sst2/bilstm_last", "sst2/lstm_last_wide", "sst2/lstm_last_sentences")


def outside_grid(search: Search, rate: float = RATE) -> Search:
    """``search``'s one trial at ``rate`` (beyond its grid's edge) on dev with seed 0, named ``<its name>_<rate>``,
    its config unchanged."""
    return Search(f"{search.name}_{rate:g}", search.config, search.metric, grid_text((rate,)), trials=1, seeds=0,
                  startup_trials=1, vary_data_seed=False)


def get_plan() -> list[Search]:
    """One single-trial search per model of :data:`AT_THE_TOP` at :data:`RATE` (:func:`outside_grid`)."""
    searches = {s.name: s for plan in (pooling_plan, size_plan, phrases_plan) for s in plan.get_plan()}
    return [outside_grid(searches[name]) for name in AT_THE_TOP]
