"""Music runs beyond JSB's searches: gate variants on JSB, the other corpora, the paper's recipe.

A plan (:mod:`rnnlab.experiments.plan`), sized to the budget of a 2-core CPU
(docs/reproduction.md and docs/findings.md say what was cut)::

    python -m rnnlab plan studies/music/plan.py --out=runs/music_plan --lane=0 --lanes=1

1. JSB with the paper's recipe (RMSProp, weight noise 0.075) and its
   learning-rate search: the best of 10 samples log-uniform in [e^-12, e^-6]
   on validation NLL, then 3 seeds; at most 20,000 steps.
1b. Nottingham with the paper's recipe at each cell's rate from 1. (not searched
   again: budget), one run each, at most :data:`PAPER_STEPS` steps.
2. :data:`CORPORA`: Nottingham, Piano-midi and MuseData, tanh / GRU / LSTM at
   the paper's sizes, Adam 1e-3 (JSB's searched rates were 0.9-1.1e-3 for every
   cell), seed 0 and :data:`CORPUS_SEEDS` more seeds, capped at the steps
   given (not searched: budget).
3. :data:`JSB_VARIANTS` (findings, "which gates matter"): gate variants at the
   hidden size of their family (LSTM 36 with peepholes, GRU 46), Adam, a grid of
   3 learning rates around the family's searched rate (:data:`FAMILY_RATE`, from
   the Adam searches of docs/reproduction.md), then 3 seeds; at most 20,000 steps.
"""

from rnnlab.experiments.plan import Search, around
from rnnlab.experiments.search_space import grid_text

MUSIC = "configs/music.py"
METRIC = "valid/nll:min"
FAMILY_RATE = {"lstm": 1.13e-3, "gru": 1.13e-3}  # docs/reproduction.md, Adam searches (best trials)
JSB_VARIANTS = {"lstm": ["lstm_nfg", "lstm_cifg", "min_lstm"], "gru": ["min_gru"]}
HIDDEN = {"lstm": 36, "gru": 46}
CORPORA = {"nottingham": 12000, "piano": 4000, "musedata": 6000}  # steps at most (a 2-core CPU's budget)
CORPUS_SEEDS = 2  # seeds 1, 2 beside the single trial's seed 0 (no selection: one learning rate)
PAPER_SPACE = "optim.learning_rate=loguniform(6e-6,2.5e-3)"  # [e^-12, e^-6], as Chung et al. 2014
PAPER_STEPS = {"nottingham": 20000}  # corpora run with the paper's recipe at JSB's chosen rate


def get_plan() -> list[Search]:
    """The paper's recipe on JSB first, then the other corpora, then JSB's gate variants."""
    plan = [Search(f"jsb-paper/{cell}", f"{MUSIC}:cell={cell},paper,steps=20000", METRIC, PAPER_SPACE,
                   trials=10, seeds=3, warmup_steps=1000, startup_trials=2, vary_data_seed=False)
            for cell in ("tanh", "gru", "lstm")]
    for corpus, steps in PAPER_STEPS.items():
        plan += [Search(f"{corpus}-paper/{cell}", f"{MUSIC}:dataset={corpus},cell={cell},paper,steps={steps}", METRIC,
                        around(f"jsb-paper/{cell}", (1.0,)), trials=1, seeds=0, vary_data_seed=False,
                        after=(f"jsb-paper/{cell}",)) for cell in ("tanh", "gru", "lstm")]
    for corpus, steps in CORPORA.items():
        for cell in ("tanh", "gru", "lstm"):
            plan.append(Search(f"{corpus}/{cell}", f"{MUSIC}:dataset={corpus},cell={cell},steps={steps}", METRIC,
                               grid_text([1e-3]), trials=1, seeds=CORPUS_SEEDS, vary_data_seed=False))
    for family, variants in JSB_VARIANTS.items():
        rate = FAMILY_RATE[family]
        for cell in variants:
            plan.append(Search(f"jsb/{cell}", f"{MUSIC}:cell={cell},hidden={HIDDEN[family]},steps=20000", METRIC,
                               grid_text([rate / 3, rate, rate * 3]), trials=3, seeds=3, startup_trials=3,
                               vary_data_seed=False))
    return plan
