"""The optimizer of ``config.optim``: optax transformations, learning-rate schedules, the section's checks."""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rnnlab.training.checks import is_int, require
from rnnlab.types import Array, PyTree

SCHEDULES = ("constant", "cosine", "linear", "exponential")

OPTIMIZERS: dict[str, Callable[[Any, optax.Schedule], optax.GradientTransformation]] = {
    # adam's weight decay is decoupled (AdamW); the others add weight_decay * params to the gradient
    "adam": lambda c, lr: optax.adamw(lr, weight_decay=c.weight_decay),
    "rmsprop": lambda c, lr: optax.chain(
        optax.add_decayed_weights(c.weight_decay), optax.rmsprop(lr, momentum=c.momentum)
    ),
    "sgd": lambda c, lr: optax.chain(
        optax.add_decayed_weights(c.weight_decay), optax.sgd(lr, momentum=c.momentum or None)
    ),
}


def check_optim_config(config: Any) -> None:
    """Raises ``ValueError`` naming the field for a bad ``config.optim``."""
    require(config.name in OPTIMIZERS, "optim.name", f"must be one of {', '.join(OPTIMIZERS)}", config.name)
    require(config.schedule in SCHEDULES, "optim.schedule", f"must be one of {', '.join(SCHEDULES)}",
            config.schedule)
    require(config.learning_rate > 0 and math.isfinite(config.learning_rate), "optim.learning_rate",
            "must be a positive number", config.learning_rate)
    require(is_int(config.warmup_steps) and config.warmup_steps >= 0, "optim.warmup_steps",
            "must be an integer >= 0", config.warmup_steps)
    require(0 <= config.decay_rate <= 1, "optim.decay_rate", "must lie in [0, 1]", config.decay_rate)
    require(0 <= config.momentum < 1, "optim.momentum", "must lie in [0, 1)", config.momentum)
    require(config.clip_norm >= 0, "optim.clip_norm", "must be >= 0", config.clip_norm)
    require(config.weight_decay >= 0, "optim.weight_decay", "must be >= 0", config.weight_decay)
    require(config.get("peephole_lr_scale", 1.0) >= 0, "optim.peephole_lr_scale", "must be >= 0",
            config.get("peephole_lr_scale", 1.0))
    require(0 <= config.get("average_decay", 0.0) < 1, "optim.average_decay", "must lie in [0, 1) (0: no averaging)",
            config.get("average_decay", 0.0))


def _decay(config: Any, num_steps: int) -> Callable[[int], Array] | float:
    """The schedule after warmup, over ``num_steps - warmup_steps`` steps."""
    peak = config.learning_rate
    steps = max(num_steps - config.warmup_steps, 1)
    final = peak * config.decay_rate
    return {
        "constant": lambda: optax.constant_schedule(peak),
        "cosine": lambda: optax.cosine_decay_schedule(peak, steps, alpha=config.decay_rate),
        "linear": lambda: optax.linear_schedule(peak, final, steps),
        "exponential": lambda: optax.exponential_decay(peak, steps, config.decay_rate),
    }[config.schedule]()


def make_schedule(config: Any, num_steps: int) -> optax.Schedule:
    """Learning rate per step: linear warmup to ``learning_rate``, then ``config.schedule``.

    Args:
      config: the ``optim`` config section (checked: :func:`check_optim_config`).
      num_steps: the run's training steps.
    """
    decay = _decay(config, num_steps)
    if config.warmup_steps <= 0:
        return decay
    warmup = optax.linear_schedule(0.0, config.learning_rate, config.warmup_steps)
    return optax.join_schedules([warmup, decay], [config.warmup_steps])


PEEPHOLES = ("p_i", "p_f", "p_o")  # the LSTM's peephole vectors (rnnlab.cells.lstm)


def scale_peepholes(scale: float) -> optax.GradientTransformation:
    """Multiplies the updates of every parameter named ``p_i``, ``p_f`` or ``p_o`` by ``scale``."""

    def is_peephole(params: Any) -> Any:
        return jax.tree_util.tree_map_with_path(lambda path, _: getattr(path[-1], "key", None) in PEEPHOLES, params)

    return optax.masked(optax.scale(scale), is_peephole)


class ParamAverageState(NamedTuple):
    """The state of :func:`average_params`.

    Attributes:
      total: ``f32[]`` the weight the average has gathered, ``1 - decay**updates`` (0 before the first update).
      average: the params' exponential moving average, not yet divided by ``total`` (the params' structure).
    """

    total: Array
    average: PyTree


def average_params(decay: float) -> optax.GradientTransformation:
    """Polyak averaging: an exponential moving average of the params, kept in the optimizer state.

    The updates pass unchanged; after each one the average moves towards the new params,
    ``average <- decay * average + (1 - decay) * (params + updates)``. It starts at zero and is divided by
    the weight it has gathered when read (:func:`averaged_params`), as Adam debiases its moments, so the
    initial params do not count. Chain it last, so that ``updates`` are the final ones.

    Args:
      decay: in ``[0, 1)``; the average's horizon is about ``1 / (1 - decay)`` updates.
    """

    def init(params: PyTree) -> ParamAverageState:
        return ParamAverageState(jnp.zeros([], jnp.float32), jax.tree.map(jnp.zeros_like, params))

    def update(updates: PyTree, state: ParamAverageState, params: PyTree = None) -> tuple[PyTree, ParamAverageState]:
        if params is None:
            raise ValueError("average_params needs the params: call tx.update(grads, opt_state, params)")
        average = optax.tree_utils.tree_update_moment(optax.apply_updates(params, updates), state.average, decay, 1)
        return updates, ParamAverageState(decay * state.total + (1 - decay), average)

    return optax.GradientTransformation(init, update)


def averaged_params(opt_state: PyTree, params: PyTree) -> PyTree:
    """The params a run evaluates: the debiased average of :func:`average_params` where ``opt_state`` holds one
    (and has averaged at least one update), else ``params`` themselves.

    Args:
      opt_state: an optax state, e.g. ``TrainState.opt_state``.
      params: the params ``opt_state`` belongs to (the structure of the average).
    """
    is_average = lambda node: isinstance(node, ParamAverageState)
    found = [node for node in jax.tree.leaves(opt_state, is_leaf=is_average) if is_average(node)]
    if not found:
        return params
    (state,) = found
    safe = jnp.maximum(state.total, jnp.finfo(jnp.float32).tiny)
    return jax.tree.map(lambda a, p: jnp.where(state.total > 0, a / safe, p).astype(p.dtype), state.average, params)


def make_optimizer(config: Any, num_steps: int) -> optax.GradientTransformation:
    """Clip by global norm (if ``clip_norm > 0``), then ``config.name`` with its schedule (then the peepholes'
    steps scaled by ``peephole_lr_scale``, if not 1; then the params' average of ``average_decay``, if not 0:
    :func:`average_params`).

    Args:
      config: the ``optim`` config section (checked: :func:`check_optim_config`).
      num_steps: the run's training steps (for the schedule).
    """
    optimizer = OPTIMIZERS[config.name](config, make_schedule(config, num_steps))
    if config.get("peephole_lr_scale", 1.0) != 1.0:
        optimizer = optax.chain(optimizer, scale_peepholes(config.peephole_lr_scale))
    if config.clip_norm > 0:
        optimizer = optax.chain(optax.clip_by_global_norm(config.clip_norm), optimizer)
    if config.get("average_decay", 0.0) > 0:
        optimizer = optax.chain(optimizer, average_params(config.average_decay))
    return optimizer
