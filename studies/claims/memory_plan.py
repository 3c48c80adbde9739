"""Claim 3 settled: which gate keeps a memory, on a rate grid that brackets each optimum (issue 24).

The tuned round (:mod:`studies.claims.plan`) left claim 3's verdicts weak: 3 seeds, 5 sampled
rates whose best was often the largest tried, and caps that differed between tasks (1500 steps
at T=400, 2000 at T=100). Here every model gets the same grid of learning rates, extended past
its edge where the best lies there (:func:`rnnlab.experiments.plan.bracket`), one cap for every
run, and 5 seeds::

    python -m rnnlab plan studies/claims/memory_plan.py --out=runs/memory --lane=0 --lanes=2 &
    python -m rnnlab plan studies/claims/memory_plan.py --out=runs/memory --lane=1 --lanes=2 &

Models (:data:`MODELS`): the LSTM with forget bias 1 (the default) and 3, the LSTM without a
forget gate, the coupled input-forget LSTM (CIFG) and the GRU; on adding and delayed recall
(copy) at T=100 and T=400 (:data:`TASKS`). Each (task, model) first runs every rate of
:data:`LEARNING_RATES` with training seed 0 on the data of ``gen_seed=0`` (``grid/<task>/<model>``;
no pruning: every point runs until flat). Then ``<task>/<model>`` takes the best rate, or, when it
is the grid's smallest or largest, that rate and two more beyond it (x3, x9), chooses the best on
validation and trains it with seeds 1..5, each on its own generated data: no reported number
comes from a run it was chosen on.
"""

from rnnlab.experiments.plan import Search, bracket
from rnnlab.experiments.search_space import grid_text

LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
SEEDS = 5
CAP = 2000  # steps, every run; early stopping after 500 flat steps (10 evaluations)

# name: (config spec, metric chosen on)
TASKS = {
    "adding100": ("studies/claims/configs/long_memory.py:adding,t100,until_flat", "valid/mse:min"),
    "copy100": ("studies/claims/configs/long_memory.py:copy,t100,until_flat", "valid/masked_accuracy:max"),
    "adding400": ("studies/claims/configs/long_memory.py:adding,t400,until_flat", "valid/mse:min"),
    "copy400": ("studies/claims/configs/long_memory.py:copy,t400,until_flat", "valid/masked_accuracy:max"),
}
TARGETS = {
    "adding100": "valid/mse<=0.01",
    "copy100": "valid/masked_accuracy>=0.95",
    "adding400": "valid/mse<=0.01",
    "copy400": "valid/masked_accuracy>=0.95",
}
MODELS = {
    "lstm": "cell=lstm",
    "lstm+fb=3": "cell=lstm,model.forget_bias=3.0",
    "lstm_nfg": "cell=lstm_nfg",
    "lstm_cifg": "cell=lstm_cifg",
    "gru": "cell=gru",
}


def get_plan() -> list[Search]:
    """Per task (T=100 first: the T=400 runs are about 3x slower per step) and model: the grid, then
    the bracketed choice and its seeds."""
    plan = []
    for task, (config, metric) in TASKS.items():
        for name, variant in MODELS.items():
            spec = f"{config},{variant},train.num_steps={CAP}"
            grid = f"grid/{task}/{name}"
            plan.append(Search(grid, spec, metric, grid_text(LEARNING_RATES), trials=len(LEARNING_RATES), seeds=0,
                               startup_trials=len(LEARNING_RATES)))
            plan.append(Search(f"{task}/{name}", spec, metric, bracket(grid, LEARNING_RATES), trials=3,
                               seeds=SEEDS, startup_trials=3, after=(grid,)))
    return plan
