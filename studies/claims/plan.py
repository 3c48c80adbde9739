"""The claims with each cell tuned on its own, and which gates matter (docs/findings.md).

A plan (:mod:`rnnlab.experiments.plan`): every search below picks the learning
rate on validation, then trains the chosen config with 3 new seeds (training
seed and generated-data seed 1, 2, 3; the trials used seed 0 and the data of
``gen_seed=0``), so no reported number comes from a run it was selected on.
Every run trains until validation has been flat for a while (``until_flat``
in each claim config), up to a cap. Run it in two lanes (2 cores)::

    python -m rnnlab plan studies/claims/plan.py --out=runs/tuned --lane=0 --lanes=2 &
    python -m rnnlab plan studies/claims/plan.py --out=runs/tuned --lane=1 --lanes=2 &
    python -m rnnlab plan studies/claims/plan.py --out=runs/tuned --dry_run   # progress

1. **Families** (:data:`FAMILIES`): on every claim task, each model gets 5
   trials of Adam's learning rate log-uniform in [3e-4, 3e-2] (median pruning
   after 2 trials, never before ``warmup`` steps), then 3 seeds. The adding
   and copy tasks also compare at equal parameter count (``match_lstm``).
2. **Gate ablations** (:data:`VARIANTS` on :data:`ABLATION_TASKS`): each
   variant of the LSTM and GRU (Greff et al. 2017's: no input / forget /
   output gate, coupled input-forget gate, peepholes; the GRU without its
   reset or update gate; minGRU / minLSTM, whose gates read the input alone;
   and, on the long-memory tasks, the LSTM with forget bias 0 and 3) runs a grid
   of 3 learning rates around its family's best (x1/3, x1, x3), then 3 seeds.

**Cut for the budget** (about 2 hours of a shared 2-core CPU): delayed recall at
T=400 (the adding problem stands for T=400, families only), the ablations at
T=400, and 5 trials per search instead of the reproduction's 10.
"""

from rnnlab.experiments.plan import Search, around

LEARNING_RATES = "optim.learning_rate=loguniform(3e-4,3e-2)"
TRIALS = 5

# name: (config spec, metric chosen on, training steps before a trial can be pruned)
TASKS = {
    "negation_tail": ("studies/claims/configs/negation.py:tail,until_flat", "valid/accuracy:max", 500),
    "future_context": ("studies/claims/configs/future_context.py:until_flat", "valid/masked_accuracy:max", 500),
    "adding100": ("studies/claims/configs/long_memory.py:adding,t100,until_flat", "valid/mse:min", 1000),
    "copy100": ("studies/claims/configs/long_memory.py:copy,t100,until_flat", "valid/masked_accuracy:max", 1000),
    "adding400": ("studies/claims/configs/long_memory.py:adding,t400,until_flat", "valid/mse:min", 1000),
}
# Success on each task, read on the validation curve by `python -m rnnlab report --plan`
# (seeds reaching it, and the step at which they do). A left-to-right tagger cannot reach
# future_context's: its ceiling is about 0.81 (docs/results/ceilings).
TARGETS = {
    "negation_tail": "valid/accuracy>=0.95",
    "future_context": "valid/masked_accuracy>=0.95",
    "adding100": "valid/mse<=0.01",
    "copy100": "valid/masked_accuracy>=0.95",
    "adding400": "valid/mse<=0.01",
}
CELLS = ["cell=tanh", "cell=gru", "cell=lstm"]
EQUAL_PARAMS = ["cell=tanh,match_lstm", "cell=gru,match_lstm"]
FAMILIES = {
    "negation_tail": ["bow", *CELLS, "cell=lstm,bidirectional"],
    "future_context": ["cell=lstm", "cell=lstm,bi", "cell=gru", "cell=gru,bi"],
    "adding100": CELLS + EQUAL_PARAMS,
    "copy100": CELLS + EQUAL_PARAMS,
    "adding400": CELLS,
}
VARIANTS = {
    "cell=lstm": ["cell=lstm_nig", "cell=lstm_nfg", "cell=lstm_nog", "cell=lstm_cifg",
                  "cell=lstm,model.peephole=True", "cell=min_lstm"],
    "cell=gru": ["cell=gru_nrg", "cell=gru_nug", "cell=min_gru"],
}
FORGET_BIAS = ["cell=lstm,model.forget_bias=0.0", "cell=lstm,model.forget_bias=3.0"]  # 1.0 is the default
ABLATION_TASKS = ("negation_tail", "adding100", "copy100")
LONG_MEMORY_TASKS = ("adding100", "copy100")  # the forget-bias ablation's


def search_name(task: str, variant: str) -> str:
    """``task/variant`` with the variant's commas and dots made path-safe: ``adding100/cell=lstm+fb=3``."""
    short = variant.replace("model.forget_bias=", "fb=").replace("model.peephole=True", "peephole")
    return f"{task}/{short.replace(',', '+')}"


LATE_TASKS = ("adding400",)  # the slowest runs go last


def family_searches(tasks) -> list[Search]:
    """Each model of :data:`FAMILIES` on ``tasks``: its own learning-rate search, then 3 seeds."""
    plan = []
    for task in tasks:
        config, metric, warmup = TASKS[task]
        for variant in FAMILIES[task]:
            plan.append(Search(search_name(task, variant), f"{config},{variant}", metric, LEARNING_RATES,
                               trials=TRIALS, warmup_steps=warmup))
    return plan


def get_plan() -> list[Search]:
    """Families, then the ablations (each waits for its family's search), then the T=400 families."""
    plan = family_searches([task for task in TASKS if task not in LATE_TASKS])
    for task in ABLATION_TASKS:
        config, metric, warmup = TASKS[task]
        variants_of = dict(VARIANTS)
        if task in LONG_MEMORY_TASKS:
            variants_of["cell=lstm"] = VARIANTS["cell=lstm"] + FORGET_BIAS
        for family, variants in variants_of.items():
            family_search = search_name(task, family)
            for variant in variants:
                plan.append(Search(search_name(task, variant), f"{config},{variant}", metric,
                                   around(family_search), trials=3, warmup_steps=warmup, startup_trials=3,
                                   after=(family_search,)))
    return plan + family_searches(LATE_TASKS)
