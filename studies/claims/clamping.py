"""Claim 4, causally: do a trained cell's memory units carry the memory? (issue 24)

Section 5 of ``docs/findings.md`` counts *memory units*: units whose keep gate is near 1 (``>= θ``)
on at least half of the test steps. Counting them says nothing about what they do. Here they are
switched off as memory: their keep gate is clamped (:func:`rnnlab.analysis.saturation.clamp_keep_gate`)
to 1 (the unit keeps everything: it can no longer write) or to its own mean over the test steps
(it keeps the same share at every step: it can no longer choose when to keep), and the test metric is
measured again (:meth:`rnnlab.inference.trained_run.TrainedRun.evaluate`). The control clamps as many
units drawn at random among the others, the same way, :data:`DRAWS` times. If the memory units carry
the memory, clamping them hurts more than clamping random units. Every threshold θ of
:data:`THRESHOLDS`, at the best (early-stopping) and the last checkpoint::

    python -m studies.claims.clamping --run=copy100/gru=runs/memory/copy100/gru/best__seed1 ... \\
        --out=docs/results/memory/clamping.json --page=docs/findings.md
"""

from __future__ import annotations

import collections
import json
from typing import Any, Mapping, Sequence

import numpy as np
from absl import app, flags

from rnnlab.analysis import saturation
from rnnlab.analysis.stats import load_run, markdown_table, write_page_block
from rnnlab.commands.common import named_runs
from studies.claims import memory_plan

THRESHOLDS = (0.9, 0.99, 0.999)
DRAWS = 10
MAX_EXAMPLES = 256  # test examples traced to find the memory units (the metric uses the whole test split)
METRICS = {"classify": "accuracy", "tag": "masked_accuracy", "regress": "mse"}


def _metric(run) -> tuple[str, bool]:
    """``(metric name, higher is better)`` of the run's task."""
    name = METRICS[run.spec.task]
    return name, name != "mse"


def _clamped(run, cell, layer, units: np.ndarray, keep: Any) -> dict:
    return {**run.params, "encoder": {**run.params["encoder"], "rnn": {"layer_0": saturation.clamp_keep_gate(
        cell, layer, units, keep)}}}


def clamp_checkpoint(run, seed: int = 0) -> dict[str, Any]:
    """The clamping experiment on one restored run (one recurrent layer, one direction).

    Returns:
      ``{"step", "params_step", "metric", "higher_is_better", "units", "baseline",
      "thresholds": {θ: {"memory_units": [indices], "to_one", "to_mean", "random_to_one": [DRAWS],
      "random_to_mean": [DRAWS]}}}``; a threshold with no memory unit (or all units) has no metrics.
    """
    from rnnlab import nn as rnn_nn

    name, higher = _metric(run)
    layer = {k: np.asarray(v) for k, v in run.params["encoder"]["rnn"]["layer_0"].items()}
    encoder = run.model.encoder  # the cell as the model builds it (its options: forget bias, ...)
    if encoder.num_layers != 1 or encoder.bidirectional:
        raise ValueError(f"run {run.workdir!r}: clamping reads one unidirectional layer")
    cell = rnn_nn.make_cell(encoder.cell, encoder.hidden_size, encoder.cell_options)
    keep = saturation.keep_values(run, saturation.evaluation_batches(run, "test", MAX_EXAMPLES))[0]["keep"]
    means = keep.mean(axis=0)
    rng = np.random.default_rng(seed)
    out = {"step": run.step, "params_step": run.params_step, "metric": name, "higher_is_better": higher,
           "units": cell.hidden_size, "baseline": run.evaluate("test")[name], "thresholds": {}}
    for theta in THRESHOLDS:
        memory = np.flatnonzero(saturation.unit_statistics(keep, high=theta)["per_unit"]["near_1"] >= 0.5)
        entry: dict[str, Any] = {"memory_units": memory.tolist()}
        others = np.setdiff1d(np.arange(cell.hidden_size), memory)
        if 0 < memory.size <= others.size:
            evaluate = lambda units, value: run.evaluate("test", _clamped(run, cell, layer, units, value))[name]  # noqa: E731
            entry["to_one"] = evaluate(memory, 1.0)
            entry["to_mean"] = evaluate(memory, means[memory])
            draws = [np.sort(rng.choice(others, memory.size, replace=False)) for _ in range(DRAWS)]
            entry["random_to_one"] = [evaluate(units, 1.0) for units in draws]
            entry["random_to_mean"] = [evaluate(units, means[units]) for units in draws]
        out["thresholds"][str(theta)] = entry
    return out


def clamp_run(workdir: str, target: str = "") -> dict[str, Any]:
    """:func:`clamp_checkpoint` at the run's best (early-stopping) and last checkpoints.

    Args:
      target: ``"valid/METRIC>=VALUE"`` (or ``<=``): ``learned`` says whether the run's ``results.json``
        meets it (None without a target). Only runs that learned the task have a memory to take away.
    """
    from rnnlab.inference import trained_run

    learned = saturation.meets_targets(load_run(workdir).results, [target] if target else [])
    best = trained_run.restore(workdir)
    last = best.at_step(None, "state")
    return {"workdir": workdir, "learned": learned, "best": clamp_checkpoint(best), "last": clamp_checkpoint(last)}


def _damage(value: float, baseline: float, higher: bool) -> float:
    """How much worse than the baseline (>= 0 when worse), in the metric's units."""
    return baseline - value if higher else value - baseline


def summarise(results: Mapping[str, Sequence[Mapping[str, Any]]], checkpoint: str) -> list[list[Any]]:
    """Rows per (model, θ) over the runs that learned the task: memory units (median), the damage of
    clamping them to 1 and to their mean, the mean damage of the random draws, and the seeds where the
    memory clamp hurts more than every draw (a run with no memory unit, or more than half memory
    units, at θ is not clamped)."""
    rows = []
    for model, every in results.items():
        runs = [r for r in every if r["learned"] is not False]  # a run that never learned has no memory to lose
        if not runs:
            continue
        for theta in THRESHOLDS:
            cells = collections.defaultdict(list)
            for r in runs:
                c = r[checkpoint]
                entry = c["thresholds"][str(theta)]
                cells["k"].append(len(entry["memory_units"]))
                if "to_one" not in entry:
                    continue
                dmg = lambda v: _damage(v, c["baseline"], c["higher_is_better"])  # noqa: E731
                for how in ("to_one", "to_mean"):
                    mine, random = dmg(entry[how]), [dmg(v) for v in entry[f"random_{how}"]]
                    cells[how].append(mine)
                    cells[f"random_{how}"].append(float(np.mean(random)))
                    cells[f"beats_{how}"].append(mine > max(random))
            tested = len(cells["to_one"])

            def fmt(key):
                return f"{np.mean(cells[key]):+.3g}" if cells[key] else "-"

            rows.append([model, f"{len(runs)}/{len(every)}", theta,
                         f"{int(np.median(cells['k']))} of {runs[0][checkpoint]['units']}", tested, fmt("to_one"), fmt("random_to_one"),
                         f"{sum(cells['beats_to_one'])}/{tested}", fmt("to_mean"), fmt("random_to_mean"),
                         f"{sum(cells['beats_to_mean'])}/{tested}"])
    return rows


def clamping_markdown(results: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """The page's block: one table per checkpoint (best, last)."""
    header = ["model", "seeds that learned", "θ", "memory units (median)", "seeds clamped", "damage, memory -> 1",
              "damage, random -> 1", "memory worse than all draws", "damage, memory -> mean",
              "damage, random -> mean", "memory worse than all draws"]
    text = ""
    for checkpoint in ("best", "last"):
        text += f"\n{checkpoint.capitalize()} checkpoint:\n\n" + markdown_table(header, summarise(results, checkpoint))
    return text


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--run=MODEL=WORKDIR`` (repeated), ``--out``, ``--page``."""
    del argv
    f = flags.FLAGS
    results: dict[str, list] = collections.defaultdict(list)
    for model, workdir in named_runs(f.run):
        results[model].append(clamp_run(workdir, memory_plan.TARGETS.get(model.split("/")[0], "")))
    with open(f.out, "w") as handle:
        json.dump(results, handle, indent=1)
    if f.page:
        write_page_block(f.page, "clamping", clamping_markdown(results))
    print(clamping_markdown(results))


if __name__ == "__main__":
    flags.DEFINE_multi_string("run", [], "MODEL=WORKDIR of a trained run with one recurrent layer (MODEL: "
                              "TASK/NAME without '=', TASK a key of memory_plan.TARGETS)")
    flags.DEFINE_string("out", "docs/results/memory/clamping.json", "the per-run results")
    flags.DEFINE_string("page", "", "a page whose <!-- clamping: ... --> block to rewrite")
    app.run(main)
