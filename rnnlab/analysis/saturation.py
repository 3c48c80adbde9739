"""Per-unit keep-gate saturation of one run: which gate keeps the old state, its values, their statistics.

For LSTM-family cells the forget gate, for GRU-family cells the update gate,
both as the fraction of the old state each unit *keeps* (see
:data:`KEEP_GATES`), per layer and direction, at the initialisation and at the
first kept, last and best (early-stopping) checkpoints
(:func:`run_saturation`). The report over groups of runs is
:mod:`rnnlab.analysis.saturation_report`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from rnnlab.analysis.stats import load_run, parse_target

@dataclasses.dataclass(frozen=True)
class KeepGate:
    """Which traced gate of a cell sets the fraction of the old state each unit keeps, and how.

    Attributes:
      gate: the gate's name in :func:`rnnlab.gate_trace` (``"forget"``, ``"update"``).
      complement: the kept fraction is ``1 - gate`` (else the gate itself).
      family: ``"lstm"`` or ``"gru"``.
    """

    gate: str
    complement: bool
    family: str

    @property
    def transform(self) -> str:
        """The kept fraction as a formula of the gate: ``"forget"``, ``"update"`` or ``"1 - update"``."""
        return f"1 - {self.gate}" if self.complement else self.gate

    def keep(self, values: np.ndarray) -> np.ndarray:
        """``f32[...]``: the kept fraction from the gate's values ``f32[...]``."""
        values = np.asarray(values)
        return 1.0 - values if self.complement else values


# rnnlab's cells (rnnlab/cells/): the LSTM family keeps f * c_{t-1} (minLSTM: the normalised f', which
# gate_trace reports); the GRU and its reset-gate ablation keep z * h_{t-1} (PyTorch's convention,
# h_t = (1 - z) n + z h_{t-1}), minGRU keeps (1 - z) * h_{t-1}.
KEEP_GATES: dict[str, KeepGate] = {
    **{name: KeepGate("forget", False, "lstm") for name in (
        "lstm", "lstm_nig", "lstm_nog", "lstm_niaf", "lstm_noaf", "lstm_cifg", "lstm_fgr",
        "layer_norm_lstm", "min_lstm")},
    "gru": KeepGate("update", False, "gru"),
    "gru_nrg": KeepGate("update", False, "gru"),
    "min_gru": KeepGate("update", True, "gru"),
}
# Cells the report names when it skips them (any other cell is skipped as not LSTM- or GRU-family).
NO_KEEP_GATE = {
    "tanh": "the tanh RNN has no gate",
    "lstm_nfg": "no forget gate: the cell keeps all of c at every step",
    "gru_nug": "no update gate: the state is replaced at every step",
}


def keep_gate(cell: str) -> KeepGate:
    """The :class:`KeepGate` of a registered cell name.

    Raises:
      ValueError: the cell has no gate that keeps the old state, or is not of
        the LSTM or GRU family (the message says which).
    """
    if cell in KEEP_GATES:
        return KEEP_GATES[cell]
    why = NO_KEEP_GATE.get(cell, "not an LSTM- or GRU-family cell of rnnlab.cells")
    raise ValueError(f"cell {cell!r} has no keep gate to measure ({why})")


SATURATED_LOGIT = 30.0  # sigmoid(30) rounds to 1.0 and sigmoid(-30) to 1e-13 in float32


def clamp_keep_gate(cell: Any, params: Mapping[str, Any], units: Sequence[int], keep: Any) -> dict[str, Any]:
    """One recurrent layer's params in which ``units`` keep the constant fraction ``keep`` at every step.

    The keep gate (:func:`keep_gate`: the LSTM's forget gate, the GRU's update gate) of each unit in
    ``units`` stops reading the input and the state: its input and recurrent weights are zeroed and
    its bias set so that the gate gives ``keep`` (the cell's ``forget_bias`` accounted for; 1 and 0
    exactly, through a saturated pre-activation of +-30). An intervention, for asking what the units
    that keep their state do for the task (evaluate the changed params with
    :meth:`rnnlab.inference.trained_run.TrainedRun.evaluate`); the other units and gates are unchanged.

    Args:
      cell: the layer's :class:`rnnlab.Cell` (gates of the form ``sigmoid(x w_x + h w_h + b)``).
      params: its params ``{"w_x": f32[D, G*H], "w_h": f32[H, G*H], "b": f32[G*H]}``.
      units: int[K], indices in ``0..H-1``.
      keep: the kept fraction in [0, 1]: a scalar, or f32[K], one per unit.

    Returns:
      New params (NumPy; ``params`` is not changed).

    Raises:
      ValueError: a cell without a keep gate, with params other than ``w_x``, ``b`` and ``w_h``
        (peepholes, layer norm), whose kept fraction is not its block's own sigmoid (minLSTM), a unit
        out of range, or ``keep`` outside [0, 1].
    """
    gate = keep_gate(cell.kind)
    if not {"w_x", "b"} <= set(params) <= {"w_x", "w_h", "b"}:
        raise ValueError(f"clamp_keep_gate needs params w_x, b and optionally w_h (gates of x w_x + h w_h + b); "
                         f"the {cell.kind!r} cell has {sorted(params)}")
    hidden = cell.hidden_size
    units = np.asarray(units, np.int64)
    if units.size and (units.min() < 0 or units.max() >= hidden):
        raise ValueError(f"units must lie in 0..{hidden - 1}, got {units.tolist()}")
    keep = np.broadcast_to(np.asarray(keep, np.float64), units.shape)
    if np.any((keep < 0) | (keep > 1)):
        raise ValueError(f"keep must lie in [0, 1], got {keep.tolist()}")
    value = 1.0 - keep if gate.complement else keep  # the gate's own activation
    logit = np.clip(_logit(value), -SATURATED_LOGIT, SATURATED_LOGIT)
    columns = cell.definition.blocks.index(gate.gate) * hidden + units
    out = {name: np.array(value_, copy=True) for name, value_ in params.items()}
    for name in ("w_x", "w_h"):
        if name in out:
            out[name][:, columns] = 0.0
    out["b"][columns] = (logit - _gate_offset(cell, params, gate.gate)[units]).astype(out["b"].dtype)
    _check_clamped(cell, out, gate, units, keep)
    return out


def _check_clamped(cell: Any, params: Mapping[str, Any], gate: KeepGate, units: np.ndarray, keep: np.ndarray) -> None:
    """Raises ValueError unless the clamped units keep ``keep`` from a random state and input (a cell
    whose keep gate is not its block's own sigmoid, such as minLSTM's normalised forget gate)."""
    import jax

    rng = np.random.default_rng(0)
    carry = jax.tree_util.tree_map(lambda c: rng.standard_normal(np.shape(c)).astype(np.float32),
                                   cell.initial_carry())
    x = rng.standard_normal(np.asarray(params["w_x"]).shape[0]).astype(np.float32)
    got = gate.keep(np.asarray(cell.gates(params, carry, x)[gate.gate], np.float64))[units]
    if not np.allclose(got, keep, atol=1e-5):
        raise ValueError(f"the {cell.kind!r} cell's kept fraction is not its {gate.gate!r} block's own sigmoid "
                         f"(clamped to {keep.tolist()}, it gives {got.tolist()}): it cannot be clamped this way")


def _gate_offset(cell: Any, params: Mapping[str, Any], name: str) -> np.ndarray:
    """``f64[H]``: the constant the cell adds to gate ``name``'s pre-activation (a forget bias, say),
    read off the gate with every weight and bias zero: ``logit(gate(0))``."""
    zeros = {key: np.zeros_like(np.asarray(value)) for key, value in params.items()}
    inputs = np.zeros(np.asarray(params["w_x"]).shape[0], np.asarray(params["w_x"]).dtype)
    return _logit(np.asarray(cell.gates(zeros, cell.initial_carry(), inputs)[name], np.float64))


def _logit(p: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))``, +-inf at 1 and 0."""
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


def evaluation_batches(run, split: str = "test", max_examples: int = 256
                       ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The first ``max_examples`` examples of ``split``, in file order, as padded batches.

    Args:
      run: a :class:`rnnlab.inference.trained_run.TrainedRun`.
      split: a split of the run's dataset.
      max_examples: how many examples (rows of weight > 0) count; later rows
        of the last batch are masked out.

    Returns:
      ``[(inputs int32[B, T] | f32[B, T, D], lengths int32[B], valid bool[B, T])]``:
      ``valid`` marks the steps ``t < length`` of the counted examples.
    """
    import rnnlab.data

    loader = rnnlab.data.make_loader(run.config.data, split, seed=0, shuffle=False, num_epochs=1)
    batches, seen = [], 0
    for batch in loader:
        weights = np.asarray(batch["weights"]) > 0
        counted = weights & (seen + np.cumsum(weights) <= max_examples)
        seen += int(counted.sum())
        lengths = np.asarray(batch["lengths"], np.int32)
        steps = np.asarray(batch["inputs"]).shape[1]
        valid = (np.arange(steps)[None, :] < lengths[:, None]) & counted[:, None]
        batches.append((np.asarray(batch["inputs"]), lengths, valid))
        if seen >= max_examples:
            break
    return batches


def keep_values(run, batches: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                gate: Optional[KeepGate] = None) -> list[dict[str, Any]]:
    """The kept fraction of every unit at every valid step, per recurrent layer and direction.

    Args:
      run: a :class:`rnnlab.inference.trained_run.TrainedRun` (its ``params`` are traced).
      batches: from :func:`evaluation_batches`.
      gate: default :func:`keep_gate` of ``run.config.model.cell``.

    Returns:
      ``[{"layer": i, "direction": "fwd" | "bwd", "keep": f32[S, H]}]`` with S
      the valid steps of all batches, layers in order.
    """
    gate = gate or keep_gate(run.config.model.cell)
    parts: list[list[np.ndarray]] = []
    labels: list[tuple[int, str]] = []
    for inputs, lengths, valid in batches:
        traces = run.trace_gates(inputs, lengths)
        if not labels:
            labels = [(t["layer"], t["direction"]) for t in traces]
            parts = [[] for _ in traces]
        for part, trace in zip(parts, traces):
            part.append(gate.keep(trace["gates"][gate.gate][valid]))
    return [{"layer": layer, "direction": direction, "keep": np.concatenate(part).astype(np.float32)}
            for (layer, direction), part in zip(labels, parts)]


def unit_statistics(keep: np.ndarray, high: float = 0.9, low: float = 0.1,
                    memory_fraction: float = 0.5) -> dict[str, Any]:
    """Per-unit saturation of a kept fraction over S steps.

    Args:
      keep: ``f32[S, H]``, the kept fraction of H units at S valid steps.
      high: a value ``>= high`` is "near 1" (the unit keeps its state).
      low: a value ``<= low`` is "near 0" (the unit overwrites its state).
      memory_fraction: a *memory unit* is near 1 at ``>= memory_fraction`` of
        the steps; a *reset unit* near 0 at ``>= memory_fraction`` of them.

    Returns:
      ``{"units": H, "steps": S, "memory_units", "reset_units", "near_1", "near_0",
      "mean_keep", "per_unit": {"near_1": f64[H], "near_0": f64[H], "mean": f64[H]}}``:
      ``near_1`` / ``near_0`` are fractions of all ``S * H`` values, the
      ``per_unit`` ones fractions of each unit's S steps.

    Raises:
      ValueError: ``keep`` is not 2-D or has no step.
    """
    keep = np.asarray(keep, np.float64)
    if keep.ndim != 2 or keep.shape[0] == 0:
        raise ValueError(f"keep must be f32[S, H] with S > 0, got shape {keep.shape}")
    per_high, per_low = np.mean(keep >= high, axis=0), np.mean(keep <= low, axis=0)
    return {
        "units": int(keep.shape[1]), "steps": int(keep.shape[0]),
        "memory_units": int(np.sum(per_high >= memory_fraction)),
        "reset_units": int(np.sum(per_low >= memory_fraction)),
        "near_1": float(np.mean(keep >= high)), "near_0": float(np.mean(keep <= low)),
        "mean_keep": float(np.mean(keep)),
        "per_unit": {"near_1": per_high, "near_0": per_low, "mean": keep.mean(axis=0)},
    }


CHECKPOINTS = ("init", "first", "last", "best")
LAYER_KEYS = ("memory_units", "reset_units", "near_1", "near_0", "mean_keep")


def meets_targets(results: Mapping[str, float], targets: Sequence[str]) -> Optional[bool]:
    """Whether ``results`` (``{"split/name": value}``, as :func:`rnnlab.analysis.stats.load_run` reads
    ``results.json``) meet every target (``"valid/mse<=0.01"``) whose metric they hold; ``None`` when none applies."""
    verdicts = []
    for target in targets:
        key, mode, threshold = parse_target(target)
        if key in results:
            verdicts.append(results[key] >= threshold if mode == "max" else results[key] <= threshold)
    return all(verdicts) if verdicts else None


def run_saturation(workdir: str, split: str = "test", max_examples: int = 256, high: float = 0.9,
                   low: float = 0.1, memory_fraction: float = 0.5,
                   targets: Sequence[str] = ()) -> dict[str, Any]:
    """Keep-gate saturation of one run at its initialisation and its first kept, last and best checkpoints.

    ``init`` is the model's initialisation rebuilt from the run's config and
    seed (``trained_run.restore(workdir, step=0)``); ``first`` the earliest
    checkpoint still kept (``config.train.max_to_keep`` deletes older ones:
    ``first_is_first_saved`` says whether it is the first saved), ``last`` the
    newest that restores, both with the params trained up to their step;
    ``best`` the early-stopping best params held by the newest checkpoint
    (absent without early stopping). Every one is traced over the same first
    ``max_examples`` examples of ``split``.

    Args:
      workdir: a run directory with checkpoints.
      split, max_examples: the examples traced (``split`` falls back to the
        run's ``eval_split`` when the dataset lacks it).
      high, low, memory_fraction: see :func:`unit_statistics`.
      targets: ``"METRIC>=VALUE"`` / ``"METRIC<=VALUE"`` on ``results.json``
        (``"valid/mse<=0.01"``): ``learned`` is whether the run meets those
        whose metric it has (``None`` when none applies).

    Returns:
      ``{"seed", "cell", "family", "gate", "keep", "kept_steps", "checkpoint_every",
      "max_to_keep", "first_is_first_saved", "best_step", "results", "learned",
      "checkpoints": {name: {"step", "params_step", "layers": [{"layer",
      "direction", **unit_statistics}]}}}`` with NumPy per-unit arrays.

    Raises:
      ValueError: the run's cell has no keep gate (:func:`keep_gate`), or it
        has no checkpoint that restores.
    """
    from rnnlab.inference import trained_run

    config = trained_run.read_config(workdir)
    gate = keep_gate(config.model.cell)
    if config.model.kind == "bag_of_words":
        raise ValueError(f"run {workdir!r} is a bag of words: it has no recurrent layer")
    run = trained_run.restore(workdir, params="state")  # the newest checkpoint that restores: "last"
    kept = trained_run.checkpoint_steps(workdir)
    if split not in run.spec.splits:
        split = config.train.eval_split
    batches = evaluation_batches(run, split, max_examples)
    points = {"init": run.at_step(0, "state")}
    first_error = None
    for step in kept:
        if step >= run.step:
            break
        try:
            points["first"] = run.at_step(step, "state")
            break
        except ValueError as e:  # a damaged checkpoint: the next kept one is the first that restores
            first_error = str(e)
    points.setdefault("first", run)
    points["last"] = run
    if run.best_step is not None:
        points["best"] = run.at_step(run.step, "best")
    results = load_run(workdir).results  # {"split/name": value}; {} while unfinished
    record = {
        "seed": int(config.train.seed), "cell": config.model.cell, "family": gate.family, "gate": gate.gate,
        "keep": gate.transform, "kind": config.model.kind, "dataset": config.data.name, "split": split,
        "examples": int(sum(v.any(axis=1).sum() for _, _, v in batches)),
        "kept_steps": kept, "checkpoint_every": int(config.train.checkpoint_every),
        "max_to_keep": int(config.train.max_to_keep),
        "first_is_first_saved": points["first"].step == min(int(config.train.checkpoint_every) or run.step, run.step),
        "best_step": run.best_step, "results": results, "learned": meets_targets(results, targets),
        "checkpoints": {},
    }
    if first_error:
        record["first_note"] = first_error
    for name, point in points.items():
        layers = [{"layer": v["layer"], "direction": v["direction"],
                   **unit_statistics(v["keep"], high, low, memory_fraction)}
                  for v in keep_values(point, batches, gate)]
        record["checkpoints"][name] = {"step": point.step, "params_step": point.params_step, "layers": layers}
    return record

