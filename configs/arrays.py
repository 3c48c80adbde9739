"""Learn from your own float sequences: NumPy ``.npz`` files of inputs and targets, for any task.

``data.path`` is a folder with ``train.npz``, ``valid.npz`` (or ``dev.npz``) and optionally
``test.npz``, each holding ``inputs`` (a list of ``[T_i, D]`` arrays, or ``[N, T, D]`` with
``lengths``) and ``targets`` for ``data.task`` (see docs/data.md). Classification (the default)::

  python launch.py --config=configs/arrays.py --workdir=runs/myarrays --config.data.path=/path/to/folder

Task variants (``--config=configs/arrays.py:tag``, combined with commas): ``classify`` (the default:
``int[N]`` targets, a classifier), ``tag`` (``int[N, T]``, a tagger), ``regress`` (``float[N]``, a
classifier with one output, MSE), ``regress_steps`` (``float[N, T]``, a ``step_regressor``: one output
per step), ``density`` (``float[N, T, F]`` in [0, 1], Bernoulli NLL); cell variants ``lstm`` (the
default), ``gru``, ``bilstm``; ``smoke``. E.g. ``configs/arrays.py:tag,bilstm``. Predict on new
inputs: ``python -m rnnlab predict --workdir=runs/myarrays --input=new.npz``.
"""

import ml_collections

from configs import default, own_data


def _task(config: ml_collections.ConfigDict, task: str, kind: str, metric: str, mode: str) -> None:
    config.data.task, config.model.kind = task, kind
    config.train.early_stopping_metric, config.train.early_stopping_mode = metric, mode


def classify(config: ml_collections.ConfigDict) -> None:
    """One class per sequence (``targets int[N]``): a classifier, best validation accuracy kept."""
    _task(config, "classify", "classifier", "accuracy", "max")


def tag(config: ml_collections.ConfigDict) -> None:
    """One class per step (``targets int[N, T]``): a tagger, best validation accuracy kept."""
    _task(config, "tag", "tagger", "accuracy", "max")


def regress(config: ml_collections.ConfigDict) -> None:
    """One value per sequence (``targets float[N]``): a classifier with one output, best validation MSE kept."""
    _task(config, "regress", "classifier", "mse", "min")


def regress_steps(config: ml_collections.ConfigDict) -> None:
    """One value per step (``targets float[N, T]``): a step regressor (a tagger's body, one output), best
    validation MSE kept."""
    _task(config, "regress", "step_regressor", "mse", "min")


def density(config: ml_collections.ConfigDict) -> None:
    """A binary frame per step (``targets float[N, T, F]``): Bernoulli logits, best validation NLL kept."""
    _task(config, "density", "density", "nll", "min")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """An LSTM (H=128) classifier on the feature sequences, Adam 3e-3, best validation accuracy kept."""
    config = own_data.base_config("arrays", "task")
    config.model.pooling = "last"
    own_data.lstm(config)
    classify(config)
    variants = {**own_data.CELLS, "classify": classify, "tag": tag, "regress": regress,
                "regress_steps": regress_steps, "density": density}
    return default.apply_variants(config, arg, variants)
