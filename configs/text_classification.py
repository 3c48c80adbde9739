"""Classify your own texts: TSV, CSV or JSON Lines files with a text and a label per row.

``data.path`` is a folder with ``train``, ``valid`` (or ``dev``) and optionally ``test`` files in
``.tsv``, ``.csv`` (both with a header row) or ``.jsonl``, fields ``text`` and ``label``
(``data.text_field`` / ``data.label_field`` rename them; see docs/data.md)::

  python launch.py --config=configs/text_classification.py --workdir=runs/mytext --config.data.path=/path/to/folder

Variants (``--config=configs/text_classification.py:bilstm``, combined with commas): ``lstm`` (the
default), ``gru``, ``bilstm``, ``bow`` (bag-of-words baseline), ``smoke``. Tokenizer:
``--config.data.tokenizer=whitespace`` (or ``treebank``, the default, or ``chars``). Predict on new
texts, one per line: ``python -m rnnlab predict --workdir=runs/mytext < new.txt``.
"""

import ml_collections

from configs import default, own_data


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """An LSTM classifier (H=128, embeddings 64, dropout 0.3), Adam 3e-3, best validation accuracy kept."""
    config = own_data.base_config("text_classification", "text_field", "label_field", "tokenizer",
                                  "lowercase", "min_count")
    config.model.kind = "classifier"
    config.model.pooling = "last"
    config.model.embed_dropout = 0.3
    config.model.head_dropout = 0.3
    config.train.early_stopping_metric = "accuracy"
    return default.apply_variants(config, arg, {**own_data.CELLS, "bow": default.bow})
