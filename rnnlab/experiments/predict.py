"""A trained classifier on new text: class probabilities and, on request, its gates.

    python -m rnnlab.predict --workdir=runs/sst < sentences.txt
    python -m rnnlab.predict --workdir=runs/sst --input=sentences.txt --gates

One raw sentence per line (blank lines are skipped) is tokenized as the run's
training data was (the dataset's ``tokenize``: for SST the treebank's
tokenization, lower-cased), words outside the run's vocabulary map to
``<unk>`` as in training, and one JSON object per line comes out::

    {"text": "not good", "tokens": ["not", "good"], "label": 0,
     "label_name": "negative", "probs": [0.91, 0.09]}

``--gates`` adds ``"gates"``: one entry per recurrent layer and direction,
``{"layer": 0, "direction": "fwd", "gates": {"forget": [[...H] per token], ...}}``.

From Python::

    predictor = rnnlab.predict.load("runs/sst")
    probs = predictor(["a gorgeous film", "not good at all"])   # f32[2, C]

:func:`restore` is THE way a trained run comes back (config, dataset spec,
model and best parameters, through :class:`rnnlab.training.checkpoint.Checkpointer`,
checksums verified); :mod:`rnnlab.experiments.gate_analysis` uses it too.
``restore(workdir, step=S)`` gives the params of one kept checkpoint (``step=0``:
the initialisation, rebuilt from the config's seed), :func:`checkpoint_steps`
lists the kept ones, and :meth:`TrainedRun.at_step` moves a restored run to
another checkpoint without building its model again.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from rnnlab.training.workdir import CHECKPOINT_DIR, CONFIG_FILE, read_json


def _tuples(tree: Any) -> Any:
    """JSON lists back to tuples (config fields such as ``buckets`` are tuples)."""
    if isinstance(tree, Mapping):
        return {k: _tuples(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return tuple(_tuples(v) for v in tree)
    return tree


# Model fields added after runs existed; a config.json without one was trained without the feature.
_ADDED_MODEL_FIELDS = {"model.word_dropout": 0.0, "model.recurrent_dropout": 0.0, "model.zoneout": 0.0}


def read_config(workdir: str) -> Any:
    """The ``ml_collections.ConfigDict`` a run was trained with (its ``config.json``).

    Fields added to the config after the run was trained (``checkpoint.ADDED_FIELDS``,
    and the model's ``word_dropout``, ``recurrent_dropout``, ``zoneout``) get the
    value that means "off", as the run was trained.

    Raises:
      FileNotFoundError: ``workdir`` holds no ``config.json`` (not a run directory).
    """
    import ml_collections

    from rnnlab.training.checkpoint import ADDED_FIELDS

    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{workdir!r} is not a run directory: it has no {CONFIG_FILE}")
    config = _tuples(read_json(path))
    for key, value in {**ADDED_FIELDS, **_ADDED_MODEL_FIELDS}.items():
        section, field = key.split(".")
        config.setdefault(section, {}).setdefault(field, value)
    return ml_collections.ConfigDict(config)


@dataclasses.dataclass
class TrainedRun:
    """A finished (or checkpointed) run, restored.

    Attributes:
      workdir: the run directory.
      config: its config (``ml_collections.ConfigDict``).
      spec: the dataset's :class:`rnnlab.data.DatasetSpec` (vocabulary, task, classes).
      model: the Flax model, called as ``model.apply({"params": params},
        inputs, lengths, deterministic=True)``.
      params: the parameters, NumPy arrays: by default the best (early-stopping)
        ones, see :func:`restore`'s ``params``.
      step: the checkpoint step they come from (0: the initialisation).
      params_step: the training step ``params`` were reached at: ``best_step``
        for best params, else ``step``.
      best_step: the early-stopping best step recorded in that checkpoint
        (``None`` without early stopping or before the first evaluation).
    """

    workdir: str
    config: Any
    spec: Any
    model: Any
    params: Any
    step: int
    params_step: Optional[int] = None
    best_step: Optional[int] = None
    _tracer: Any = dataclasses.field(default=None, repr=False)

    def at_step(self, step: Optional[int], params: str = "final") -> "TrainedRun":
        """This run with the params of checkpoint ``step`` (see :func:`restore`); shares the compiled tracer.

        Args:
          step: a kept checkpoint step (:func:`checkpoint_steps`), 0 for the
            initialisation, or ``None`` for the newest that restores.
          params: ``"final"`` | ``"state"`` | ``"best"``, as for :func:`restore`.
        """
        if self._tracer is None:
            self._tracer = _make_tracer(self.model)
        values, at, params_step, best_step = _restore_params(self.workdir, self.config, self.spec, self.model,
                                                             step, params)
        return dataclasses.replace(self, params=values, step=at, params_step=params_step, best_step=best_step)

    def trace_gates(self, inputs: np.ndarray, lengths: np.ndarray) -> list[dict[str, Any]]:
        """Every gate of every recurrent layer and direction over a batch.

        Args:
          inputs: ``int32[B, T]`` token ids (or ``f32[B, T, D]`` features).
          lengths: ``int32[B]``.

        Returns:
          ``[{"layer": i, "direction": "fwd" | "bwd", "gates": {gate: f32[B, T, H]}}]``,
          zero at ``t >= lengths``, layers in order (each traced by
          :func:`rnnlab.gate_trace` on its own input, the previous layer's
          outputs); ``[]`` for a model without recurrent layers (bag of words).
        """
        if self._tracer is None:
            self._tracer = _make_tracer(self.model)
        fn, labels = self._tracer
        traces = fn(self.params, np.asarray(inputs), np.asarray(lengths, np.int32))
        return [{"layer": layer, "direction": direction, "gates": {k: np.asarray(v) for k, v in t.items()}}
                for (layer, direction), t in zip(labels, traces)]


def _layer_traces(cell: Any, bidirectional: bool, merge: str, num_layers: int, params: Any, xs: Any,
                  length: Any) -> list[dict[str, Any]]:
    """``[{gate: f32[T, H]}]`` per layer and direction of one sequence ``xs f32[T, D]``."""
    import rnnlab

    out = []
    for i in range(num_layers):
        layer = params[f"layer_{i}"]
        directions = [(layer["fwd"], False), (layer["bwd"], True)] if bidirectional else [(layer, False)]
        out += [rnnlab.gate_trace(cell, p, xs, length, reverse=reverse) for p, reverse in directions]
        if i + 1 < num_layers:  # the next layer reads this one's outputs
            xs = rnnlab.stack(cell, {"layer_0": layer}, xs, length, bidirectional=bidirectional, merge=merge)[1]
    return out


def _make_tracer(model: Any):
    """``(jitted fn(params, inputs, lengths) -> [{gate: f32[B, T, H]}], [(layer, direction)])``.

    The model runs once under :func:`flax.linen.intercept_methods`; every
    :class:`rnnlab.nn.StackedRNN` call it makes is traced from the input it
    receives and its own parameters, so no parameter path is written here.
    """
    import flax.linen as nn
    import jax

    from rnnlab import nn as rnn_nn

    labels: list = []

    def fn(params, inputs, lengths):
        stacks = []

        def interceptor(next_fun, args, kwargs, context):
            module = context.module
            if isinstance(module, rnn_nn.StackedRNN) and context.method_name == "__call__":
                n = args[1] if len(args) > 1 else kwargs["lengths"]
                stacks.append((module, module.variables["params"], args[0], n))
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(interceptor):
            model.apply({"params": params}, inputs, lengths, deterministic=True)
        labels.clear()
        traces = []
        for module, p, xs, n in stacks:
            per_sequence = functools.partial(_layer_traces, module.make_cell(), module.bidirectional,
                                             module.merge, module.num_layers)
            traces += jax.vmap(per_sequence, in_axes=(None, 0, 0))(p, xs, n)
            labels.extend((i, d) for i in range(module.num_layers)
                          for d in (("fwd", "bwd") if module.bidirectional else ("fwd",)))
        return traces

    return jax.jit(fn), labels


def _abstract_batch(spec: Any, config: Any) -> dict[str, np.ndarray]:
    """A one-row batch of the smallest bucket: only its shapes matter (for ``jax.eval_shape``)."""
    steps = min(config.data.buckets)
    if spec.input_kind == "tokens":
        inputs = np.zeros((1, steps), np.int32)
    else:
        inputs = np.zeros((1, steps, spec.input_size), np.float32)
    return {"inputs": inputs, "lengths": np.ones((1,), np.int32)}


PARAMS_KINDS = ("final", "state", "best")


def checkpoint_steps(workdir: str) -> list[int]:
    """The checkpoint steps kept in a run's ``checkpoints`` folder, oldest first.

    With ``config.train.max_to_keep`` (3 by default) only the newest ones are
    kept: the first of this list is the earliest *kept* checkpoint, not the
    first ever saved. Damaged checkpoints are listed too (restoring them fails).

    Raises:
      ValueError: the run has no checkpoint folder.
    """
    from rnnlab.training import checkpoint

    directory = os.path.join(workdir, CHECKPOINT_DIR)
    if not os.path.isdir(directory):
        raise ValueError(f"run {workdir!r} has no checkpoint: no folder {directory}")
    with checkpoint.Checkpointer(directory) as checkpointer:
        return checkpointer.steps()


def _init_target(config: Any, spec: Any, model: Any, abstract: bool):
    """The run's initial train state (``abstract``: only its shapes) from ``config.train.seed``.

    As the training loop builds it: ``init_state(model, tx, PRNGKey(seed), batch)``
    under ``jax.jit``; the params depend on the batch's shapes only through the
    input width, so a one-row batch gives the same values.
    """
    import jax

    from rnnlab.training import train

    tx = train.make_optimizer(config.optim, config.train.num_steps)
    init = functools.partial(train.init_state, model, tx)
    key, batch = jax.random.PRNGKey(config.train.seed), _abstract_batch(spec, config)
    return jax.eval_shape(init, key, batch) if abstract else jax.device_get(jax.jit(init)(key, batch))


def _restore_params(workdir: str, config: Any, spec: Any, model: Any, step: Optional[int],
                    params: str) -> tuple[Any, int, int, Optional[int]]:
    """``(params, checkpoint step, params_step, best_step)``; see :func:`restore`."""
    from rnnlab.training import checkpoint

    if params not in PARAMS_KINDS:
        raise ValueError(f"params must be one of {', '.join(PARAMS_KINDS)}, got {params!r}")
    if step == 0:
        return _init_target(config, spec, model, abstract=False).params, 0, 0, None
    directory = os.path.join(workdir, CHECKPOINT_DIR)
    if not os.path.isdir(directory):
        raise ValueError(f"run {workdir!r} has no checkpoint: no folder {directory}")
    state = _init_target(config, spec, model, abstract=True)
    target = {"state": state, "best_params": state.params}
    checkpointer = checkpoint.Checkpointer(directory)
    try:
        kept = checkpointer.steps()
        if step is not None and step not in kept:
            raise ValueError(f"run {workdir!r} keeps no checkpoint of step {step}; it keeps {kept} "
                             f"(max_to_keep {config.train.max_to_keep}) and step 0 is the initialisation")
        if step is not None:
            # Checkpointer.restore walks back from the newest step it lists: list none past ``step``.
            checkpointer.steps = lambda: [s for s in kept if s <= step]
        restored = checkpointer.restore(target)
    finally:
        checkpointer.close()
    if restored is None:
        raise ValueError(f"run {workdir!r} has no checkpoint that restores in {directory}")
    at, arrays, info = restored
    if step is not None and at != step:
        raise ValueError(f"checkpoint step {step} of run {workdir!r} does not restore (damaged; see the log)")
    best_value, best_step = (list(info.get("early_stopping") or []) + [None, None])[:2]
    has_best = bool(config.train.early_stopping_metric) and best_value is not None
    best_step = int(best_step) if has_best else None
    if params == "best" and not has_best:
        raise ValueError(f"checkpoint step {at} of run {workdir!r} holds no early-stopping best "
                         "(no early_stopping_metric, or no evaluation before it)")
    # "final", as the training loop ends: the best params when early stopping found a best, else the last.
    use_best = params == "best" or (params == "final" and has_best)
    values = arrays["best_params"] if use_best else arrays["state"].params
    return values, int(at), (best_step if use_best else int(at)), best_step


def restore(workdir: str, step: Optional[int] = None, params: str = "final") -> TrainedRun:
    """Restores a run's model and parameters from a checkpoint (by default the newest good one).

    Prepares (or reads back) the run's dataset for its vocabulary and spec,
    builds the model from the saved config, and restores through
    :class:`rnnlab.training.checkpoint.Checkpointer` (newest checkpoint that reads back
    whole and matches its SHA-256; damaged newer ones are skipped with a log
    line). The parameters are the best ones under early stopping (else the
    last ones).

    Args:
      workdir: the run directory.
      step: ``None``: the newest checkpoint that restores; a kept step
        (:func:`checkpoint_steps`): exactly that one; ``0``: the
        initialisation, rebuilt from ``config.train.seed`` as the training loop
        does (no checkpoint is read).
      params: ``"final"``: as the training loop ends, the early-stopping best
        params when the checkpoint holds a best, else its current ones;
        ``"state"``: the params trained up to the checkpoint's step;
        ``"best"``: the early-stopping best params up to that step (see
        :attr:`TrainedRun.params_step`, :attr:`TrainedRun.best_step`).

    Raises:
      FileNotFoundError: not a run directory, or the dataset's files are missing.
      ValueError: the run has no checkpoint that restores; ``step`` is not kept
        or does not restore; ``params="best"`` without an early-stopping best.
    """
    import rnnlab.data
    from rnnlab.training import models

    config = read_config(workdir)
    if step != 0 and not os.path.isdir(os.path.join(workdir, CHECKPOINT_DIR)):
        raise ValueError(f"run {workdir!r} has no checkpoint: no folder {os.path.join(workdir, CHECKPOINT_DIR)}")
    spec = rnnlab.data.prepare(config.data)
    model = models.build_model(config.model, spec)
    values, at, params_step, best_step = _restore_params(workdir, config, spec, model, step, params)
    return TrainedRun(workdir, config, spec, model, values, at, params_step, best_step)


class Predictor:
    """A restored classification run that maps raw sentences to class probabilities.

    Attributes:
      run: the :class:`TrainedRun`.
      class_names: a name per class when the dataset gives them, else ``None``.
    """

    def __init__(self, run: TrainedRun):
        import jax

        import rnnlab.data

        if run.spec.task != "classify":
            raise ValueError(
                f"run {run.workdir!r} is a {run.spec.task!r} task on dataset {run.spec.name!r}; "
                "rnnlab.predict serves classification runs only (one label per sentence)"
            )
        if run.spec.input_kind != "tokens" or run.spec.vocab is None:
            raise ValueError(f"run {run.workdir!r} reads {run.spec.input_kind} inputs, not words")
        self.run = run
        dataset = rnnlab.data.get_dataset(run.spec.name)
        options = dataset.options(run.config.data)
        tokenize = getattr(dataset, "tokenize", None)
        self._tokenize = functools.partial(tokenize, options) if tokenize is not None else _default_tokenizer
        names = getattr(dataset, "class_names", None)
        self.class_names = tuple(names(options)) if names is not None else None
        self._word_ids = {w: i for i, w in enumerate(run.spec.vocab)}
        model = run.model
        self._apply = jax.jit(lambda params, x, n: jax.nn.softmax(model.apply({"params": params}, x, n)))

    def tokenize(self, sentence: str) -> list[str]:
        """The tokens of one raw sentence, as the run's training data was tokenized."""
        return self._tokenize(sentence)

    def encode(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
        """``(ids int32[B, T], lengths int32[B], tokens)``; T is a power of two >= the longest.

        Unknown words map to ``<unk>`` (id 1), as in training.

        Raises:
          ValueError: ``sentences`` is a string or empty, or a sentence has no words.
        """
        from rnnlab.data.registry import encode

        if isinstance(sentences, str) or not len(sentences):
            raise ValueError("give a non-empty list of sentences (strings), not one string")
        tokens = [self.tokenize(s) for s in sentences]
        empty = [i for i, t in enumerate(tokens) if not t]
        if empty:
            raise ValueError(f"sentence {empty[0]} ({sentences[empty[0]]!r}) has no words")
        longest = max(len(t) for t in tokens)
        steps = 1 << (longest - 1).bit_length()  # few distinct shapes: few compilations
        ids = np.zeros((len(tokens), steps), np.int32)
        for row, t in zip(ids, tokens):
            row[: len(t)] = encode(t, self._word_ids)
        return ids, np.asarray([len(t) for t in tokens], np.int32), tokens

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        """``f32[B, C]``: the class probabilities of each raw sentence."""
        ids, lengths, _ = self.encode(sentences)
        return np.asarray(self._apply(self.run.params, ids, lengths))

    def predict(self, sentences: Sequence[str], gates: bool = False) -> list[dict[str, Any]]:
        """One JSON-ready dict per sentence: text, tokens, label, label_name, probs (and gates).

        Args:
          sentences: raw sentences.
          gates: add ``"gates"`` (see :meth:`TrainedRun.trace_gates`) as nested lists over the tokens.

        Raises:
          ValueError: ``gates`` for a model without recurrent layers.
        """
        ids, lengths, tokens = self.encode(sentences)
        probs = np.asarray(self._apply(self.run.params, ids, lengths))
        traces = self._traces(ids, lengths) if gates else []
        out = []
        for i, (text, toks, p) in enumerate(zip(sentences, tokens, probs)):
            label = int(np.argmax(p))
            record = {"text": text, "tokens": toks, "label": label}
            if self.class_names:
                record["label_name"] = self.class_names[label]
            record["probs"] = [round(float(x), 6) for x in p]
            if gates:
                record["gates"] = [
                    {**t, "gates": {k: np.round(v[i, : len(toks)], 4).tolist() for k, v in t["gates"].items()}}
                    for t in traces
                ]
            out.append(record)
        return out

    def gates(self, sentence: str) -> list[dict[str, Any]]:
        """The gates of one sentence: ``[{"layer", "direction", "gates": {gate: f32[L, H]}}]`` (L tokens).

        Raises:
          ValueError: the model has no recurrent layers.
        """
        ids, lengths, _ = self.encode([sentence])
        return [{**t, "gates": {k: v[0, : lengths[0]] for k, v in t["gates"].items()}}
                for t in self._traces(ids, lengths)]

    def _traces(self, ids: np.ndarray, lengths: np.ndarray) -> list[dict[str, Any]]:
        traces = self.run.trace_gates(ids, lengths)
        if not traces:
            raise ValueError(f"run {self.run.workdir!r} ({self.run.config.model.kind}) has no recurrent layers "
                             "to show gates of")
        return traces


def _default_tokenizer(sentence: str) -> list[str]:
    """Datasets without their own ``tokenize``: the treebank tokenizer, lower-cased."""
    from rnnlab.data import text

    return text.tokenize(sentence, lowercase=True)


def load(workdir: str) -> Predictor:
    """A :class:`Predictor` for the classification run in ``workdir`` (see :func:`restore`).

    Raises:
      ValueError: the run is not a classification run over words, or has no checkpoint.
      FileNotFoundError: not a run directory.
    """
    return Predictor(restore(workdir))


# ----------------------------------------------------------------------------- command line


def predict_file(workdir: str, input_path: Optional[str] = None, gates: bool = False,
                 batch_size: int = 64) -> None:
    """Writes one JSON line per sentence of ``input_path`` (or stdin) to stdout (``python -m rnnlab.predict``).

    Args:
      workdir: a classification run (see :func:`load`).
      input_path: a file of one sentence per line; ``None`` reads stdin. Blank lines are skipped.
      gates: add every layer's gate activations per token.
      batch_size: sentences per forward pass.

    Raises:
      ValueError, FileNotFoundError: as :func:`load`.
    """
    predictor = load(workdir)
    stream = open(input_path, encoding="utf-8") if input_path else sys.stdin
    try:
        lines = [line.strip() for line in stream]
    finally:
        if input_path:
            stream.close()
    sentences = [line for line in lines if line]
    for start in range(0, len(sentences), batch_size):
        for record in predictor.predict(sentences[start:start + batch_size], gates=gates):
            sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
