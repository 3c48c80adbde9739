"""Claim 5, GRU vs LSTM cost: parameters, training steps/s and time to a target, at equal size.

At EQUAL HIDDEN SIZE the runs of the other claims already hold both cells
(negation H=32, long_memory H=32). This file adds the runs AT EQUAL PARAMETER
COUNT: a GRU whose hidden size gives its recurrent layer + head the parameter
count of the LSTM of that experiment (``match_lstm``). One run::

    python launch.py --config=studies/claims/configs/cost.py:negation,cell=gru,match_lstm --workdir=runs/x

The experiment::

    python -m rnnlab sweep studies/claims/configs/cost.py --seeds=0,1,2 --out=runs/claims

``get_config(arg)``: the first item names the base experiment (``negation`` or
``long_memory``), the rest are that experiment's variants, plus ``match_lstm``.
"""

import ml_collections

from studies.claims.configs import long_memory, negation

BASES = {"negation": negation, "long_memory": long_memory}  # each has its own match_lstm variant


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The base experiment's config with its variants, ``match_lstm`` (if asked for) applied last."""
    items = [a for a in (arg or "negation").split(",") if a]
    base = items.pop(0) if items and items[0] in BASES else "negation"
    match = ["match_lstm"] if "match_lstm" in items else []
    return BASES[base].get_config(",".join([a for a in items if a != "match_lstm"] + match))


def get_sweep() -> list[str]:
    """GRUs with the LSTM's parameter count on negation and on the adding problem (T=100)."""
    return ["negation,cell=gru,match_lstm", "long_memory,adding,t100,cell=gru,match_lstm"]
