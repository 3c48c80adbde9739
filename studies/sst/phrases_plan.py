"""SST-2, the phrase-supervision axis of issue 24's behaviour goal: the last-step LSTM without the phrases.

Every SST-2 model of the other rounds trains on the GLUE SST-2 training set, and 66,417 of its 66,978
distinct texts are labelled phrases of the treebank's training trees ("not good", "good", ...;
:func:`glue_texts_in_trees`): each of those models already learns from the treebank's phrase labels. This round takes them away: the
LSTM read at its last step (:mod:`studies.sst.pooling_plan`) trained on the 6,920 binary training
sentences of ``train.txt`` alone (the ``sst`` data, ``data.phrases`` off), evaluated on the same dev
(872) and test (1,821) sentences. Same recipe and tuning effort otherwise (the grid
:data:`studies.sst.plan.RATES` on dev with seed 0, then the best rate with seeds 1, 2, 3)::

    python -m rnnlab plan studies/sst/phrases_plan.py --out=runs/sst_phrases
"""

import os

from rnnlab.data import sst
from rnnlab.experiments.plan import Search
from studies.sst.plan import RECIPE, searches

SENTENCES_ONLY = RECIPE.replace("glue,", "", 1)  # the treebank's training sentences, no phrases
MODELS = {"lstm_last_sentences": "lstm,pooling=last"}


def get_plan() -> list[Search]:
    """One search: the last-step LSTM trained on the treebank's training sentences only."""
    return searches(MODELS, SENTENCES_ONLY)


def glue_texts_in_trees(path: str) -> tuple[int, int]:
    """``(distinct texts of glue_sst2/train.tsv that are phrases of train.txt's trees, distinct texts)``.

    Phrases compare lower-cased, as GLUE writes them, with the treebank's ``-LRB-`` / ``-RRB-`` read as
    brackets (:func:`rnnlab.data.sst.read_tree_file`)::

        python -c "from studies.sst import phrases_plan; print(phrases_plan.glue_texts_in_trees('../shared/data/sst'))"

    Args:
      path: the SST folder (``data.path``): ``train.txt`` and ``glue_sst2/train.tsv``.
    """
    phrases = {" ".join(words).lower() for words, _ in sst.read_tree_file(os.path.join(path, "train.txt"), phrases=True)}
    texts = {" ".join(words) for words, _ in sst.read_glue_tsv(os.path.join(path, sst.GLUE_FILES["train"]))}
    return len(texts & phrases), len(texts)
