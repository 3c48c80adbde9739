"""Claim 3 settled: which gate keeps a memory, on a rate grid that brackets each optimum (issue 24).

The tuned round (:mod:`studies.claims.plan`) left claim 3's verdicts weak: 3 seeds, 5 sampled
rates whose best was often the largest tried, and caps that differed between tasks (1500 steps
at T=400, 2000 at T=100). Here every model gets the same fixed grid of learning rates, wide
enough that its best lies inside (a best at the grid's edge is flagged by
:func:`grid_edges`), one cap for every run, and 5 seeds::

    python -m rnnlab plan studies/claims/memory_plan.py --out=runs/memory --lane=0 --lanes=2 &
    python -m rnnlab plan studies/claims/memory_plan.py --out=runs/memory --lane=1 --lanes=2 &

Models (:data:`MODELS`): the LSTM with forget bias 1 (the default) and 3, the LSTM without a
forget gate, the coupled input-forget LSTM (CIFG) and the GRU; on adding and delayed recall
(copy) at T=100 and T=400 (:data:`TASKS`). Each (task, model) runs every rate of
:data:`LEARNING_RATES` with training seed 0 on the data of ``gen_seed=0`` (no pruning: every
grid point runs until flat), then the best rate on validation with seeds 1..5, each on its own
generated data, so no reported number comes from a run it was chosen on.
"""

from rnnlab.experiments.plan import Search

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


def space() -> str:
    """The learning-rate grid every search runs, as ``FIELD=grid(...)``."""
    return f"optim.learning_rate=grid({', '.join(repr(lr) for lr in LEARNING_RATES)})"


def grid_edges(best_rate: float) -> bool:
    """True when ``best_rate`` is the smallest or largest rate of the grid: the optimum may lie outside."""
    return best_rate in (min(LEARNING_RATES), max(LEARNING_RATES))


def get_plan() -> list[Search]:
    """Every model on every task, T=100 first (the T=400 runs are about 3x slower per step)."""
    return [Search(f"{task}/{name}", f"{config},{variant},train.num_steps={CAP}", metric, space(),
                   trials=len(LEARNING_RATES), seeds=SEEDS, startup_trials=len(LEARNING_RATES))
            for task, (config, metric) in TASKS.items() for name, variant in MODELS.items()]
