"""GRU vs LSTM cost per training step, after compilation, on the claim tasks and on real data.

    python -m studies.claims.cell_cost            # -> benchmarks/results/cell_cost_cpu.{json,md}
    python -m studies.claims.cell_cost --quick    # tiny sizes, seconds (sanity check)
    python -m studies.claims.cell_cost --figure_from=benchmarks/results/cell_cost_cpu.json   # its figure only

For each job (:data:`JOBS`: the negation corpus with tails and the adding
problem at T=100 of ``studies/claims/configs``, JSB Chorales with the paper's sizes, SST
sentences) the models of :data:`MODELS` (the LSTM; the GRU at the same hidden
size; the GRU at the LSTM's parameter count) are built through the library
(:func:`benchmarks.train_step.step_fns`: ``models.build_model``,
``train.compile_steps``), each compiled and warmed up on the same batches, then
timed round-robin (:func:`benchmarks.train_step.time_steps`: every repeat runs
every model over all batches, in turn; median over repeats). Compile time is
reported apart: the first call of a model's train step minus its median step
time. Ratios (GRU / LSTM steps/s) are what to read: absolute times move with
the machine's load.

Real-data jobs read ``../shared/data`` (``--data_path``); a job whose data is
missing is skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pathlib
import tempfile
import time
from typing import Any

import jax
import numpy as np

from benchmarks import common, train_step
from studies.claims import configs as claims
from rnnlab.backends import Backend
from rnnlab.analysis import plots
from rnnlab.training import train

# name: (config module, variant argument, real data folder under --data_path or None)
JOBS = {
    "negation_tail": ("studies.claims.configs.negation", "tail", None),
    "adding_t100": ("studies.claims.configs.long_memory", "adding,t100", None),
    "jsb": ("configs.music", "cell=lstm", "polyphonic"),
    "sst": ("configs.sst", "lstm", "sst"),
}
MODELS = ("lstm", "gru", "gru_matched")  # gru_matched: the GRU with the LSTM's parameter count


def model_config(name: str, model: str, data_dir: str, data_path: str, quick: bool) -> Any:
    """The job's config with ``model``'s cell and hidden size, data in ``data_dir``."""
    module, arg, real = JOBS[name]
    config = importlib.import_module(module).get_config(arg)
    config.data.data_dir = data_dir
    if real:
        config.data.path = os.path.join(data_path, real)
    else:
        config.data.num_train = 4 * config.data.batch_size
    if quick:
        config.data.batch_size = 4
        config.model.hidden_size = 8
    lstm_hidden = config.model.hidden_size
    config.model.cell = "lstm" if model == "lstm" else "gru"
    config.model.hidden_size = lstm_hidden
    if model == "gru_matched":
        spec = _spec(config)
        inputs = spec.input_size or config.model.embed_size
        claims.match_lstm(config, inputs, spec.num_outputs)
    return config


_SPECS: dict = {}


def _spec(config: Any):
    import rnnlab.data

    key = (config.data.name, config.data.path, config.data.data_dir)
    if key not in _SPECS:
        _SPECS[key] = rnnlab.data.prepare(config.data)
    return _SPECS[key]


def time_job(name: str, data_dir: str, data_path: str, repeats: int, num_batches: int, quick: bool) -> dict:
    """Steps/s after compilation and compile seconds for each model of :data:`MODELS` on job ``name``."""
    configs = {m: model_config(name, m, data_dir, data_path, quick) for m in MODELS}
    spec, host_batches = train_step.job_batches(configs["lstm"], num_batches)
    runs, compile_s, params, hidden = {}, {}, {}, {}
    for model, config in configs.items():
        train_fn, state, mesh = train_step.step_fns(config, spec, run_backend(config),
                                                    host_batches[0])
        batches = [train.shard_batch(b, mesh) for b in host_batches]
        params[model] = train.count_params(state.params, ("embed",))
        hidden[model] = config.model.hidden_size
        start = time.perf_counter()
        state = train_step.run_steps(train_fn, state, batches[:1])  # compiles the first padded shape
        compile_s[model] = time.perf_counter() - start
        state = train_step.run_steps(train_fn, state, batches)  # every other padded shape compiles here
        runs[model] = (train_fn, state, batches)
    times = train_step.time_steps(runs, repeats)
    step_s = {k: float(np.median(v)) / num_batches for k, v in times.items()}
    return {
        "job": name, "config": f"{JOBS[name][0]}:{JOBS[name][1]}",
        "batch_size": configs["lstm"].data.batch_size,
        "padded_shapes": sorted({list(b["inputs"].shape)[1] for b in host_batches}),
        "hidden_size": hidden, "params": params,
        "steps_per_s": {k: 1.0 / v for k, v in step_s.items()},
        "compile_s": {k: max(compile_s[k] - step_s[k], 0.0) for k in compile_s},
        "gru_over_lstm": {k: (1.0 / step_s[k]) / (1.0 / step_s["lstm"]) for k in ("gru", "gru_matched")},
    }


def run_backend(config: Any) -> Backend:
    """The recurrence backend a run of ``config`` uses: its own, else FUSED, the library's default
    for an LSTM or GRU over a batch (:func:`rnnlab.backends.default_backend`)."""
    return Backend(config.model.backend or Backend.FUSED.value)


def markdown(results: dict) -> str:
    """The results as a Markdown table."""
    lines = common.header(results, "GRU vs LSTM: cost of a training step after compilation") + [
        f"Median of {results['repeats']} round-robin repeats over {results['num_batches']} batches; "
        "compile = first call minus the median step.", "",
        "| job | model | H | params (no embedding) | steps/s | GRU / LSTM steps/s | compile s |",
        "|---|---|---|---|---|---|---|",
    ]
    for job in results["jobs"]:
        if "skipped" in job:
            lines.append(f"| {job['job']} | skipped: {job['skipped']} | | | | | |")
            continue
        for model in MODELS:
            ratio = "1.00x" if model == "lstm" else f"{job['gru_over_lstm'][model]:.2f}x"
            lines.append(f"| {job['config']} | {model} | {job['hidden_size'][model]} | {job['params'][model]} "
                         f"| {job['steps_per_s'][model]:.1f} | {ratio} | {job['compile_s'][model]:.2f} |")
    return "\n".join(lines) + "\n"


JOB_NAMES = {"negation_tail": "negation with tails", "adding_t100": "adding, T=100", "jsb": "JSB chorales",
             "sst": "SST sentences"}  # for a reader


def plot_ratios(results: dict, path: str) -> None:
    """GRU / LSTM steps per second per job (each job a group): the GRU at the LSTM's hidden size and at its
    parameter count, a dashed line at 1 (above: the GRU's step is faster)."""
    jobs = [job for job in results["jobs"] if "skipped" not in job]
    fig = plots.new_figure((7.6, 3.2))
    ax = fig.subplots()
    x = np.arange(len(jobs))
    for offset, model, label, hatch in ((-0.18, "gru", "GRU, the LSTM's hidden size", ""),
                                        (0.18, "gru_matched", "GRU, the LSTM's parameter count", "//")):
        ratios = [job["gru_over_lstm"][model] for job in jobs]
        ax.bar(x + offset, ratios, width=0.34, color="tab:orange", alpha=0.6 if hatch else 1.0, hatch=hatch,
               edgecolor="black", lw=0.5, label=label)
    ax.axhline(1.0, color="black", ls="--", lw=0.8)
    ax.set_xticks(x, [f"{JOB_NAMES.get(j['job'], j['job'])}\n(LSTM H={j['hidden_size']['lstm']})" for j in jobs])
    ax.set_ylabel("GRU / LSTM training steps per s", fontsize=9)
    ax.tick_params(labelsize=9)
    ax.legend(fontsize=9, loc="upper left", frameon=False)
    ax.set_ylim(0, max(1.6, max(j["gru_over_lstm"][m] for j in jobs for m in ("gru", "gru_matched")) + 0.25))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(out_dir: pathlib.Path = common.RESULTS, repeats: int = 7, num_batches: int = 10,
        data_path: str = "../shared/data", quick: bool = False, jobs=tuple(JOBS)) -> dict:
    """Times every job; writes ``cell_cost_<device>.{json,md}`` (``cell_cost_quick`` with ``quick``)."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in jobs:
            real = JOBS[name][2]
            if real and not os.path.isdir(os.path.join(data_path, real)):
                rows.append({"job": name, "skipped": f"no data at {os.path.join(data_path, real)}"})
                continue
            rows.append(time_job(name, tmp, data_path, repeats, num_batches, quick))
    command = "python -m studies.claims.cell_cost" + (" --quick" if quick else "")
    results = {**common.provenance(command), "repeats": repeats, "num_batches": num_batches, "jobs": rows}
    name = "cell_cost_" + ("quick" if quick else jax.default_backend())
    common.write_results(out_dir, name, results, markdown(results))
    plot_ratios(results, str(out_dir / f"{name}.png"))
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--num_batches", type=int, default=10, help="batches per timed repeat")
    parser.add_argument("--data_path", default="../shared/data", help="folder of the real datasets")
    parser.add_argument("--jobs", default=",".join(JOBS), help="comma list of " + ", ".join(JOBS))
    parser.add_argument("--out", default=str(common.RESULTS), help="results folder")
    parser.add_argument("--figure_from", default="", help="only redraw the figure beside this results JSON")
    args = parser.parse_args(argv)
    if args.figure_from:
        with open(args.figure_from) as f:
            plot_ratios(json.load(f), os.path.splitext(args.figure_from)[0] + ".png")
        return
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    results = run(pathlib.Path(args.out), args.repeats, args.num_batches, args.data_path, args.quick,
                  tuple(args.jobs.split(",")))
    print(markdown(results))


if __name__ == "__main__":
    main()
