"""A trained run restored from its workdir: config, dataset spec, model and parameters, and its gates.

:func:`restore` is THE way a trained run comes back (config, dataset spec,
model and best parameters, through :class:`rnnlab.training.checkpoint.Checkpointer`,
checksums verified); :mod:`rnnlab.inference.predict` (new text) and
:mod:`rnnlab.analysis.gate_analysis` use it and re-export its names from
``rnnlab.inference.predict``. ``restore(workdir, step=S)`` gives the params
of one kept checkpoint (``step=0``: the initialisation, rebuilt from the
config's seed), :func:`checkpoint_steps` lists the kept ones, and
:meth:`TrainedRun.at_step` moves a restored run to another checkpoint without
building its model again.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Mapping, Optional

import numpy as np

from rnnlab.training.workdir import CHECKPOINT_DIR, CONFIG_FILE, read_json


def _tuples(tree: Any) -> Any:
    """JSON lists back to tuples (config fields such as ``buckets`` are tuples)."""
    if isinstance(tree, Mapping):
        return {k: _tuples(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return tuple(_tuples(v) for v in tree)
    return tree


def read_config(workdir: str) -> Any:
    """The ``ml_collections.ConfigDict`` a run was trained with (its ``config.json``).

    Fields added to the config after the run was trained (``checkpoint.ADDED_FIELDS``)
    get the value that means "off", as the run was trained.

    Raises:
      FileNotFoundError: ``workdir`` holds no ``config.json`` (not a run directory).
    """
    import ml_collections

    from rnnlab.training.checkpoint import ADDED_FIELDS

    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{workdir!r} is not a run directory: it has no {CONFIG_FILE}")
    config = _tuples(read_json(path))
    for key, value in ADDED_FIELDS.items():
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
    _evaluator: Any = dataclasses.field(default=None, repr=False)

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

    def evaluate(self, split: str = "test", params: Any = None) -> dict[str, float]:
        """``{metric: value}`` of ``params`` (default: the run's) on one split of the run's data.

        The same evaluation step and metrics as training's (whole sequences, padding rows weigh 0),
        so with the run's best params it gives the ``results.json`` numbers of that split. Pass other
        params (the run's with some change, e.g. :func:`rnnlab.analysis.saturation.clamp_keep_gate`)
        to measure what the change does.

        Args:
          split: ``"train"``, ``"valid"`` or ``"test"``.
          params: a pytree shaped like ``self.params``.
        """
        import jax

        import rnnlab.data
        from rnnlab.training import steps, tasks

        spec, tc = self.spec, self.config.train
        if self._evaluator is None:  # compiled once per run (and batch shape), shared by at_step's copies
            task = tasks.get_task(spec.task, tc.loss_mask, spec.accuracies, spec.labels)
            self._evaluator = jax.jit(functools.partial(steps.eval_step, model=self.model, task=task))
        batches = rnnlab.data.make_loader(self.config.data, split, seed=tc.seed, shuffle=False, num_epochs=1)
        return steps.evaluate(self._evaluator, self.params if params is None else params, batches)

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
    from rnnlab.training import checkpoint, train

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
    values = arrays["best_params"] if use_best else train.evaluated_params(arrays["state"])
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
        ``"state"``: the params trained up to the checkpoint's step (their average, where the optimizer
        keeps one: ``optim.average_decay``, :func:`rnnlab.training.steps.evaluated_params`);
        ``"best"``: the early-stopping best params up to that step (see
        :attr:`TrainedRun.params_step`, :attr:`TrainedRun.best_step`).

    Raises:
      FileNotFoundError: not a run directory, or the dataset's files are missing.
      ValueError: the run has no checkpoint that restores; ``step`` is not kept
        or does not restore; ``params="best"`` without an early-stopping best.
    """
    import rnnlab.data
    from rnnlab.training import models
    from rnnlab.training.config_files import import_plugins

    config = read_config(workdir)
    import_plugins(config.get("plugins", ""))  # the user's cells and datasets the run was trained with
    if step != 0 and not os.path.isdir(os.path.join(workdir, CHECKPOINT_DIR)):
        raise ValueError(f"run {workdir!r} has no checkpoint: no folder {os.path.join(workdir, CHECKPOINT_DIR)}")
    spec = rnnlab.data.prepare(config.data)
    model = models.build_model(config.model, spec)
    values, at, params_step, best_step = _restore_params(workdir, config, spec, model, step, params)
    return TrainedRun(workdir, config, spec, model, values, at, params_step, best_step)
