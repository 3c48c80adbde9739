"""Flax Linen models around rnnlab's cells, picked by ``config.model.kind``.

Every model is called as ``model.apply({"params": params}, inputs, lengths,
deterministic=...)`` with ``inputs int32[B, T]`` (token ids, 0 = padding) or
``f32[B, T, D]`` (features) and ``lengths int32[B]``; dropout draws from the
``"dropout"`` RNG stream. Outputs by kind:

    bag_of_words  f32[B, C]     mean of the embeddings of the valid steps -> MLP
    classifier    f32[B, C]     embedding -> stacked (bi)RNN -> pooling -> MLP
    tagger        f32[B, T, C]  embedding -> stacked (bi)RNN -> MLP at every step
    step_regressor f32[B, T, 1] the tagger's body with one output: a ``regress`` target per step
    density       f32[B, T, F]  frames -> stacked RNN -> F Bernoulli logits per step

The recurrent kinds also take ``initial_carry=`` (one carry per layer) and
``return_carry=True``, then returning ``(final carries, outputs)``: truncated
BPTT (:func:`rnnlab.training.steps.apply_model`).

C (or F) is ``spec.num_outputs`` of the dataset; a ``regress`` task uses a
classifier or bag-of-words with one output. The recurrent layers are
``rnnlab.nn.StackedRNN``, whose parameters are exactly the pure cells' params.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rnnlab import nn as rnn_layers
from rnnlab.backends import parse_backend
from rnnlab.cells import INIT_OPTIONS, INITIALIZERS, cell_names, cell_option_names
from rnnlab.lengths import sequence_mask
from rnnlab.types import Array

PAD_ID, UNK_ID = 0, 1  # the ids of <pad> and <unk> in every vocabulary (rnnlab.data.registry.vocabulary)
# config.model fields that are cell constructor options, passed to the cells that take them, each with
# the value that leaves it off (the constructors' default): any other value for a cell without that
# option is refused (check_model_config)
CELL_OPTION_FIELDS = {"forget_bias": 1.0, "peephole": False, "reset_after": False, "cell_clip": 0.0}

POOLINGS = ("last", "mean", "max", "attention")
INIT_FIELDS = ("kernel_init", "recurrent_init")  # config.model fields every cell constructor takes
DTYPES = ("float32", "bfloat16")  # config.model.dtype / param_dtype


def _masked_mean(ys: Array, mask: Array) -> Array:
    """``ys f32[B, T, H]``, ``mask bool[B, T]`` -> ``f32[B, H]`` mean over valid steps (0 if none)."""
    weights = mask.astype(ys.dtype)[..., None]
    return jnp.sum(ys * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1.0)


def pool(ys: Array, lengths: Array, how: str, forward_size: int) -> Array:
    """Pools ``ys f32[B, T, H']`` over valid steps into ``f32[B, H']`` (no parameters).

    Args:
      ys: recurrent outputs, zero past each length; for a bidirectional layer the
        first ``forward_size`` features are the forward direction's.
      lengths: ``int32[B]``.
      how: ``"last"`` (forward half at ``length-1``, backward half at step 0),
        ``"mean"`` or ``"max"`` over the valid steps.
      forward_size: width of the forward half (``H'`` when unidirectional).
    """
    mask = sequence_mask(lengths, ys.shape[1])
    if how == "mean":
        return _masked_mean(ys, mask)
    if how == "max":
        masked = jnp.where(mask[..., None], ys, -jnp.inf)
        return jnp.where(jnp.any(mask, axis=1)[:, None], jnp.max(masked, axis=1), 0.0)
    if how == "last":
        last = jnp.maximum(lengths - 1, 0)
        at_last = jnp.take_along_axis(ys, last[:, None, None], axis=1)[:, 0]
        pooled = jnp.concatenate([at_last[:, :forward_size], ys[:, 0, forward_size:]], axis=-1)
        return jnp.where((lengths > 0)[:, None], pooled, 0.0)
    raise ValueError(f"unknown pooling {how!r}; known poolings: {', '.join(POOLINGS)}")


class AttentionPool(nn.Module):
    """Attention pooling: a learned score per step, softmax over the valid steps.

    ``ys f32[B, T, H']``, ``lengths int32[B]`` -> ``f32[B, H']``.
    """

    @nn.compact
    def __call__(self, ys: Array, lengths: Array) -> Array:
        scores = nn.Dense(1, name="score")(ys)[..., 0]
        mask = sequence_mask(lengths, ys.shape[1])
        weights = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1) * mask
        return jnp.einsum("bt,bth->bh", weights, ys)


class MLP(nn.Module):
    """Dense + ReLU layers of ``sizes`` (with dropout before each), then ``Dense(num_outputs)``."""

    sizes: Sequence[int]
    num_outputs: int
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: Array, *, deterministic: bool) -> Array:
        for size in self.sizes:
            x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
            x = nn.relu(nn.Dense(size)(x))
        x = nn.Dropout(self.dropout)(x, deterministic=deterministic)
        return nn.Dense(self.num_outputs, name="out")(x)


class Inputs(nn.Module):
    """Token ids ``int32[B, T]`` -> embeddings ``f32[B, T, E]``; features pass through; then dropout.

    ``word_dropout`` (training only, token inputs): each non-padding id is
    replaced by ``<unk>`` (id 1) with that probability, drawn from the
    ``"dropout"`` RNG, before the embedding.
    """

    vocab_size: int | None
    embed_size: int
    dropout: float = 0.0
    word_dropout: float = 0.0

    @nn.compact
    def __call__(self, inputs: Array, *, deterministic: bool) -> Array:
        if self.vocab_size is not None:
            if self.word_dropout > 0.0 and not deterministic:
                drop = jax.random.bernoulli(self.make_rng("dropout"), self.word_dropout, inputs.shape)
                inputs = jnp.where(drop & (inputs != PAD_ID), UNK_ID, inputs)
            inputs = nn.Embed(self.vocab_size, self.embed_size, name="embed")(inputs)
        return nn.Dropout(self.dropout)(inputs, deterministic=deterministic)


class Encoder(nn.Module):
    """Inputs -> stacked, optionally bidirectional RNN: ``ys f32[B, T, H or 2H]``, zero past lengths."""

    vocab_size: int | None
    embed_size: int
    cell: str
    hidden_size: int
    num_layers: int
    bidirectional: bool
    cell_options: tuple[tuple[str, Any], ...] = ()
    embed_dropout: float = 0.0
    dropout: float = 0.0
    backend: Any = None  # rnnlab.Backend or its name ("fused"), resolved once by the scan; None: the default
    word_dropout: float = 0.0
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    dtype: Any = None  # dtype of the recurrent matrix products (bfloat16 on accelerators); None: float32
    param_dtype: Any = None  # dtype of the recurrent params; None: float32

    @nn.compact
    def __call__(self, inputs: Array, lengths: Array, *, deterministic: bool, initial_carry: Any = None,
                 return_carry: bool = False) -> Any:
        """``ys``; with ``return_carry``, ``(carries, ys)`` (one carry per layer, as ``initial_carry`` takes them)."""
        xs = Inputs(self.vocab_size, self.embed_size, self.embed_dropout, self.word_dropout,
                    name="inputs")(inputs, deterministic=deterministic)
        layers = rnn_layers.StackedRNN(
            cell=self.cell,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            cell_options=self.cell_options,
            backend=self.backend,
            recurrent_dropout=self.recurrent_dropout,
            zoneout=self.zoneout,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="rnn",
        )
        return layers(xs, lengths, deterministic=deterministic, initial_carry=initial_carry, return_carry=return_carry)


class BagOfWords(nn.Module):
    """The feed-forward baseline: mean of the (embedded) inputs over valid steps -> MLP -> ``f32[B, C]``."""

    vocab_size: int | None
    embed_size: int
    mlp_sizes: Sequence[int]
    num_outputs: int
    embed_dropout: float = 0.0
    word_dropout: float = 0.0
    head_dropout: float = 0.0

    @nn.compact
    def __call__(self, inputs: Array, lengths: Array, *, deterministic: bool = True) -> Array:
        xs = Inputs(self.vocab_size, self.embed_size, self.embed_dropout, self.word_dropout, name="inputs")(
            inputs, deterministic=deterministic
        )
        pooled = _masked_mean(xs, sequence_mask(lengths, xs.shape[1]))
        return MLP(self.mlp_sizes, self.num_outputs, self.head_dropout, name="head")(
            pooled, deterministic=deterministic
        )


class SequenceModel(nn.Module):
    """Encoder -> pooling over the valid steps (or none) -> MLP: the recurrent models' one body.

    ``pooling``: ``last | mean | max | attention`` -> ``f32[B, C]``; ``""`` -> the
    MLP at every step, ``f32[B, T, C]``.
    """

    encoder: Encoder
    mlp_sizes: Sequence[int]
    num_outputs: int
    head_dropout: float = 0.0
    pooling: str = ""

    @nn.compact
    def __call__(self, inputs: Array, lengths: Array, *, deterministic: bool = True, initial_carry: Any = None,
                 return_carry: bool = False) -> Any:
        """The outputs; with ``return_carry``, ``(the encoder's final carries, outputs)``, starting from
        ``initial_carry`` (``None``: the initial one): truncated BPTT."""
        carry, ys = self.encoder(inputs, lengths, deterministic=deterministic, initial_carry=initial_carry,
                                 return_carry=True)
        if self.pooling == "attention":
            ys = AttentionPool(name="attention")(ys, lengths)
        elif self.pooling:
            ys = pool(ys, lengths, self.pooling, self.encoder.hidden_size)
        outputs = MLP(self.mlp_sizes, self.num_outputs, self.head_dropout, name="head")(
            ys, deterministic=deterministic
        )
        return (carry, outputs) if return_carry else outputs


class SequenceClassifier(SequenceModel):
    """Encoder -> pooling (``last | mean | max | attention``) -> MLP -> ``f32[B, C]``."""

    pooling: str = "last"


class SequenceTagger(SequenceModel):
    """Encoder -> MLP at every step -> ``f32[B, T, C]`` (one label per step)."""


class SequenceDensityModel(SequenceTagger):
    """Per-step independent Bernoulli logits ``f32[B, T, F]`` over a binary frame.

    With the density pipelines' inputs (``inputs[t]`` = frame ``t-1``, zeros at
    ``t = 0``) a unidirectional encoder sees only the previous frames, so
    ``sigmoid(outputs[t])`` is p(frame t | frames < t). The NLL is in
    :func:`rnnlab.training.tasks.density_stats`.
    """


def unused_cell_options(cell: str) -> tuple[str, ...]:
    """The :data:`CELL_OPTION_FIELDS` that cell ``cell`` does not take (none for an unregistered name)."""
    if cell not in cell_names():
        return ()
    return tuple(name for name in CELL_OPTION_FIELDS if name not in cell_option_names(cell))


def _cell_options(config: Any) -> tuple[tuple[str, Any], ...]:
    """The constructor options of ``config.cell`` that the model config sets (those it accepts), and the
    init-side options every library constructor takes (``kernel_init``, ``recurrent_init``) set to other than
    their defaults."""
    accepted = cell_option_names(config.cell)
    options = {name: config[name] for name in CELL_OPTION_FIELDS if name in accepted}
    # init-side options only where they differ from the defaults: a user's registered constructor may not take them
    options.update({name: config[name] for name in INIT_FIELDS if config[name] != INIT_OPTIONS[name]})
    return tuple(sorted(options.items()))


def _vocab_size(spec: Any) -> int | None:
    """The embedding's vocabulary for token inputs; ``None`` (no embedding) for features."""
    return spec.vocab_size if spec.input_kind == "tokens" else None


def _head(config: Any, spec: Any) -> dict[str, Any]:
    """The MLP head's fields, shared by every kind."""
    return {"mlp_sizes": tuple(config.mlp_sizes), "num_outputs": spec.num_outputs,
            "head_dropout": config.head_dropout}


def _encoder(config: Any, spec: Any) -> Encoder:
    return Encoder(
        vocab_size=_vocab_size(spec),
        embed_size=config.embed_size,
        cell=config.cell,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        bidirectional=config.bidirectional,
        cell_options=_cell_options(config),
        embed_dropout=config.embed_dropout,
        dropout=config.dropout,
        backend=config.backend or None,
        word_dropout=config.word_dropout,
        recurrent_dropout=config.recurrent_dropout,
        zoneout=config.zoneout,
        dtype=config.dtype,
        param_dtype=None if config.param_dtype == INIT_OPTIONS["param_dtype"] else config.param_dtype,
    )


def _bag_of_words(config: Any, spec: Any) -> nn.Module:
    return BagOfWords(vocab_size=_vocab_size(spec), embed_size=config.embed_size, embed_dropout=config.embed_dropout,
                      word_dropout=config.word_dropout, **_head(config, spec))


def _classifier(config: Any, spec: Any) -> nn.Module:
    return SequenceClassifier(encoder=_encoder(config, spec), pooling=config.pooling, **_head(config, spec))


def _per_step(module: type[SequenceTagger], config: Any, spec: Any) -> nn.Module:
    return module(encoder=_encoder(config, spec), **_head(config, spec))


MODELS: dict[str, tuple[Callable[[Any, Any], nn.Module], tuple[str, ...]]] = {
    # kind: (builder(model_config, spec), the tasks it serves)
    "bag_of_words": (_bag_of_words, ("classify", "regress")),
    "classifier": (_classifier, ("classify", "regress")),
    "tagger": (functools.partial(_per_step, SequenceTagger), ("tag",)),
    "step_regressor": (functools.partial(_per_step, SequenceTagger), ("regress",)),  # one value per step
    "density": (functools.partial(_per_step, SequenceDensityModel), ("density",)),
}


def check_model_config(config: Any) -> None:
    """Raises ``ValueError`` naming the field for a bad ``config.model`` (before anything is built)."""
    if config.kind not in MODELS:
        raise ValueError(
            f"config.model.kind: unknown model {config.kind!r}; known kinds: {', '.join(sorted(MODELS))}"
        )
    if config.cell not in cell_names():
        raise ValueError(
            f"config.model.cell: unknown cell {config.cell!r}; known cells: {', '.join(cell_names())}"
        )
    for field in unused_cell_options(config.cell):
        if config[field] != CELL_OPTION_FIELDS[field]:
            takes = ", ".join(cell_option_names(config.cell)) or "none"
            raise ValueError(
                f"config.model.{field}={config[field]!r} does not apply to the {config.cell!r} cell: it has no "
                f"option {field!r} (its options: {takes}); leave config.model.{field} at {CELL_OPTION_FIELDS[field]!r}"
            )
    if config.pooling not in POOLINGS:
        raise ValueError(
            f"config.model.pooling: unknown pooling {config.pooling!r}; known poolings: "
            f"{', '.join(POOLINGS)}"
        )
    if config.backend:
        try:
            parse_backend(config.backend)
        except ValueError as e:
            raise ValueError(f"config.model.backend: {e} (or '' for the library default)") from None
    for field in ("dtype", "param_dtype"):
        if config[field] not in DTYPES:
            raise ValueError(f"config.model.{field} must be one of {', '.join(DTYPES)}, got {config[field]!r}")
    for field in INIT_FIELDS:
        if config[field] not in INITIALIZERS:
            raise ValueError(f"config.model.{field}: unknown initializer {config[field]!r}; known: "
                             f"{', '.join(sorted(INITIALIZERS))}")
    for field in ("hidden_size", "num_layers", "embed_size"):
        value = config[field]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"config.model.{field} must be a positive integer, got {value!r}")
    for size in config.mlp_sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"config.model.mlp_sizes must hold positive integers, got {config.mlp_sizes!r}")
    for field in ("embed_dropout", "word_dropout", "dropout", "recurrent_dropout", "zoneout",
                  "head_dropout"):
        if not 0.0 <= config[field] < 1.0:
            raise ValueError(f"config.model.{field} must lie in [0, 1), got {config[field]!r}")


def build_model(config: Any, spec: Any) -> nn.Module:
    """The model of ``config.model.kind`` for a dataset described by ``spec`` (a DatasetSpec).

    Args:
      config: a ``model`` config section that :func:`check_model_config` accepts
        (a run checks it once, in :func:`rnnlab.training.train.check_config`,
        before anything is built; a saved run's ``config.json`` passed it).
      spec: the dataset's spec.

    Raises:
      ValueError: a kind that does not serve the dataset's task (e.g. a tagger
        for a classification dataset).
    """
    builder, tasks = MODELS[config.kind]
    if spec.task not in tasks:
        raise ValueError(
            f"config.model.kind: a {config.kind!r} model serves tasks {', '.join(tasks)}, but dataset "
            f"{spec.name!r} is a {spec.task!r} task; kinds for it: "
            f"{', '.join(k for k, (_, t) in sorted(MODELS.items()) if spec.task in t)}"
        )
    if spec.input_kind == "tokens" and not spec.vocab_size:
        raise ValueError(f"dataset {spec.name!r} has token inputs but no vocab_size")
    return builder(config, spec)
