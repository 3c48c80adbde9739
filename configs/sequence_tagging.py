"""Tag your own sentences: CoNLL-style files, one token per line with its tag, a blank line after each sentence.

``data.path`` is a folder with ``train``, ``valid`` (or ``dev``) and optionally ``test`` files of any
extension (``.txt``, ``.conll``, none); the token is column 0, the tag column ``data.tag_column``
(-1: the last); ``-DOCSTART-`` lines are skipped (see docs/data.md). A BiLSTM tagger::

  python launch.py --config=configs/sequence_tagging.py --workdir=runs/mytags --config.data.path=/path/to/folder

For BIO / BIOES tags the run also reports span precision, recall and F1 (``valid/span_f1``, as
seqeval counts them); ``--config.train.early_stopping_metric=span_f1`` keeps the parameters of the
best validation span F1 instead of the best accuracy. Variants (``:lstm``, combined with commas):
``bilstm`` (the default), ``lstm``, ``gru``, ``smoke``. Predict on new sentences, one per line,
tokens split on whitespace: ``python -m rnnlab predict --workdir=runs/mytags < new.txt``.
"""

import ml_collections

from configs import default, own_data


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """A BiLSTM tagger (H=128 per direction, embeddings 64, dropout 0.3), Adam 3e-3, best validation accuracy kept."""
    config = own_data.base_config("sequence_tagging", "tag_column", "lowercase", "min_count")
    config.model.kind = "tagger"
    own_data.bilstm(config)
    config.model.embed_dropout = 0.3
    config.model.head_dropout = 0.3
    config.train.early_stopping_metric = "accuracy"
    return default.apply_variants(config, arg, own_data.CELLS)
