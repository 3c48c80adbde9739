"""The training stack on each backend: steps/s, compile time, recompiles.

    python -m benchmarks.train_step            # -> benchmarks/results/train_step_cpu.{json,md}
    python -m benchmarks.train_step --quick    # tiny sizes, seconds (sanity check)

Three measurements, all through the library's own functions
(``models.build_model``, ``train.make_optimizer``, ``train.compile_steps``,
``rnnlab.data.make_loader``) with the model's ``Encoder.backend`` set to each
:class:`rnnlab.Backend`:

1. **Steps/s** of the jitted train step of real jobs (``configs/negation.py``,
   the main job, the claims study's ``studies/claims/configs/long_memory.py:adding,t200`` (skipped
   when that study is not in the checkout), and JSB with
   Chung et al.'s recipe, ``configs/music.py:paper``, weight noise included,
   when its data is in the config's ``data.path``; skipped otherwise) on their
   own batches: every backend is compiled and warmed up on the same batches
   first, then timed round-robin (each repeat runs every backend over all the
   batches, in turn), median over repeats.
2. **Compile time** of ``jax.jit(train_step).lower(...).compile()`` for an
   LSTM and a GRU classifier at the largest grid point of issue 5,
   ``(B, T, D, H) = (128, 50, 512, 512)`` (float features, one layer).
3. **Recompiles**: XLA compilations counted (``train.CompileCounter``) while
   the warm-up runs the jobs' batches, which come padded to a few bucket
   lengths and have ragged lengths within each; then while the same batch
   shape runs with new random lengths (should be 0).

The generated datasets are prepared in a temporary folder (``--data_dir``
to keep them), with a smaller training split than the jobs' (the step does
not depend on it).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import pathlib
import tempfile
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

import rnnlab.data
from benchmarks import common
from configs import default
from rnnlab.training import models, tasks, train
from rnnlab.backends import Backend
from rnnlab.data.registry import DatasetSpec

JOBS = {  # name: (config module, variant argument)
    "negation": ("configs.negation", None),
    "adding_t200": ("studies.claims.configs.long_memory", "adding,t200"),
    "jsb_paper": ("configs.music", "paper"),  # real data: needs data.path (skipped without it)
}
COMPILE_POINT = (128, 50, 512, 512)  # (B, T, D, H): issue 5's largest grid point
QUICK_COMPILE_POINT = (4, 8, 8, 8)
BACKENDS = (Backend.REFERENCE, Backend.FUSED)


def with_backend(model: Any, backend: Backend) -> Any:
    """``model`` (a classifier or tagger of :mod:`rnnlab.training.models`) with its encoder on ``backend``."""
    return model.clone(encoder=model.encoder.clone(backend=backend))


def job_label(name: str) -> str:
    """``"studies.claims.configs.long_memory:adding,t200"``: the job's config module and variant argument."""
    module, arg = JOBS[name]
    return f"{module}:{arg}" if arg else module


def job_config(name: str, data_dir: str, quick: bool) -> Any:
    """The job's config with data in ``data_dir`` and a small training split."""
    module, arg = JOBS[name]
    config = importlib.import_module(module).get_config(arg)
    config.data.data_dir = data_dir
    if "num_train" in config.data:  # generated data: a small training split
        config.data.num_train = 4 * config.data.batch_size
    if quick:
        config.data.batch_size = 4
        config.model.hidden_size = 8
    return config


def job_batches(config: Any, num_batches: int) -> tuple[DatasetSpec, list]:
    """The job's spec and its first ``num_batches`` training batches (NumPy)."""
    spec = rnnlab.data.prepare(config.data)
    loader = rnnlab.data.make_loader(config.data, "train", seed=0, shuffle=True, num_epochs=None)
    return spec, [next(loader) for _ in range(num_batches)]


def step_fns(config: Any, spec: DatasetSpec, backend: Backend, batch: dict):
    """``(train_fn, state, mesh)`` for ``config`` on ``backend``, as ``train_and_evaluate`` builds them."""
    model = with_backend(models.build_model(config.model, spec), backend)
    tx = train.make_optimizer(config.optim, config.train.num_steps)
    task = tasks.get_task(spec.task, config.train.loss_mask)
    mesh = train.make_mesh(1)
    state = jax.jit(functools.partial(train.init_state, model, tx))(jax.random.PRNGKey(0), batch)
    train_fn, _ = train.compile_steps(model, tx, task, mesh, weight_noise=float(config.train.weight_noise))
    return train_fn, train.replicate(state, mesh), mesh


def run_steps(train_fn, state: Any, batches: list) -> Any:
    """``state`` after one ``train_fn`` step on each of ``batches`` in turn, blocked until ready."""
    for batch in batches:
        state, _ = train_fn(state, batch)
    return jax.block_until_ready(state)


def time_steps(runs: dict, repeats: int) -> dict:
    """``{name: [seconds per repeat]}`` for ``runs = {name: (train_fn, state, batches)}``, already compiled.

    :func:`benchmarks.common.time_round_robin` (two warm-up rounds, then
    ``repeats`` rounds) of one call per name that runs :func:`run_steps` over
    all its batches, each call going on from that name's last state.
    """
    states = {name: state for name, (_, state, _) in runs.items()}

    def call(name, train_fn, batches):
        states[name] = run_steps(train_fn, states[name], batches)

    return common.time_round_robin(
        {name: functools.partial(call, name, fn, batches) for name, (fn, _, batches) in runs.items()}, repeats)


def time_job(name: str, data_dir: str, repeats: int, num_batches: int, quick: bool) -> dict:
    """Steps/s per backend and the compilations of the warm-up and of new lengths.

    A job whose source data is missing (a real corpus without ``data.path``) or whose config is
    not in the checkout (a study's, after a fork deleted it) gives ``{"job", "config", "skipped": reason}``.
    """
    try:
        config = job_config(name, data_dir, quick)
        spec, host_batches = job_batches(config, num_batches)
    except (FileNotFoundError, ModuleNotFoundError) as e:
        return {"job": name, "config": job_label(name), "skipped": str(e)}
    shapes = sorted({b["inputs"].shape for b in host_batches})
    runs, compiles = {}, {}
    for backend in BACKENDS:
        train_fn, state, mesh = step_fns(config, spec, backend, host_batches[0])
        batches = [train.shard_batch(b, mesh) for b in host_batches]
        with train.CompileCounter() as warmup:
            state = run_steps(train_fn, state, batches)
        # the same padded shapes again, with new random lengths: nothing may compile
        rng = np.random.default_rng(1)
        relengthed = [
            train.shard_batch({**b, "lengths": rng.integers(1, b["inputs"].shape[1] + 1,
                                                            b["lengths"].shape).astype(np.int32)},
                              mesh)
            for b in host_batches
        ]
        with train.CompileCounter() as again:
            state = run_steps(train_fn, state, relengthed)
        compiles[backend.value] = {"warmup": warmup.count, "new_lengths": again.count}
        runs[backend.value] = (train_fn, state, batches)
    times = time_steps(runs, repeats)
    steps = {k: num_batches / float(np.median(v)) for k, v in times.items()}
    return {
        "job": name, "config": job_label(name),
        "cell": config.model.cell, "hidden_size": config.model.hidden_size,
        "batch_size": config.data.batch_size, "padded_shapes": [list(s) for s in shapes],
        "steps_per_s": steps,
        "spread_s": {k: [float(np.min(v)), float(np.max(v))] for k, v in times.items()},
        "fused_speedup": steps[Backend.FUSED.value] / steps[Backend.REFERENCE.value],
        "compilations": compiles,
    }


def compile_time(cell: str, backend: Backend, point: tuple[int, int, int, int]) -> dict:
    """Seconds to trace+lower and to compile the train step of a ``cell`` classifier at ``point``."""
    B, T, D, H = point
    config = default.get_config()
    config.model.kind, config.model.cell, config.model.hidden_size = "classifier", cell, H
    spec = DatasetSpec(name="features", task="classify", input_kind="features", vocab_size=None,
                       input_size=D, num_outputs=2, vocab=None, splits=("train",),
                       num_examples={"train": B})
    model = with_backend(models.build_model(config.model, spec), backend)
    tx = train.make_optimizer(config.optim, config.train.num_steps)
    batch = {"inputs": jax.ShapeDtypeStruct((B, T, D), jnp.float32),
             "lengths": jax.ShapeDtypeStruct((B,), jnp.int32),
             "targets": jax.ShapeDtypeStruct((B,), jnp.int32)}
    state = jax.eval_shape(functools.partial(train.init_state, model, tx), jax.random.PRNGKey(0),
                           batch)
    step = jax.jit(functools.partial(train.train_step, model=model, tx=tx,
                                     task=tasks.classify_stats), donate_argnums=0)
    start = time.perf_counter()
    lowered = step.lower(state, batch)
    lower_s = time.perf_counter() - start
    start = time.perf_counter()
    lowered.compile()
    compile_s = time.perf_counter() - start
    return {"cell": cell, "backend": backend.value, "point": list(point), "lower_s": lower_s,
            "compile_s": compile_s, "total_s": lower_s + compile_s}


def markdown(results: dict) -> str:
    """The results as Markdown tables."""
    lines = common.header(results, "Training step per backend") + [
        "## Steps/s of the jitted train step (median of "
        f"{results['repeats']} round-robin repeats over {results['num_batches']} batches)", "",
        "| job | cell, H, B | padded T | reference steps/s | fused steps/s | fused / reference "
        "| compiles warm-up (ref, fused) | compiles on new lengths (ref, fused) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for job in results["jobs"]:
        if "skipped" in job:
            lines.append(f"| {job['config']} | skipped: {job['skipped']} | | | | | | |")
            continue
        s, c = job["steps_per_s"], job["compilations"]
        lines.append(
            f"| {job['config']} | {job['cell']}, {job['hidden_size']}, {job['batch_size']} "
            f"| {', '.join(str(p[1]) for p in job['padded_shapes'])} "
            f"| {s['reference']:.1f} | {s['fused']:.1f} | {job['fused_speedup']:.2f}x "
            f"| {c['reference']['warmup']}, {c['fused']['warmup']} "
            f"| {c['reference']['new_lengths']}, {c['fused']['new_lengths']} |"
        )
    lines += [
        "", "## Compile time of the train step (classifier, one layer, float features)", "",
        "| cell | (B, T, D, H) | backend | trace+lower s | compile s | total s |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["compile"]:
        lines.append(f"| {row['cell']} | {tuple(row['point'])} | {row['backend']} "
                     f"| {row['lower_s']:.2f} | {row['compile_s']:.2f} | {row['total_s']:.2f} |")
    return "\n".join(lines) + "\n"


def run(out_dir: pathlib.Path = common.RESULTS, repeats: int = 5, num_batches: int = 10,
        data_dir: Optional[str] = None, quick: bool = False, jobs=tuple(JOBS)) -> dict:
    """Runs all three measurements; writes ``train_step_<device>.{json,md}`` (``train_step_quick``)."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [time_job(name, data_dir or tmp, repeats, num_batches, quick) for name in jobs]
    point = QUICK_COMPILE_POINT if quick else COMPILE_POINT
    compiles = [compile_time(cell, backend, point) for cell in common.CELLS for backend in BACKENDS]
    command = "python -m benchmarks.train_step" + (" --quick" if quick else "")
    results = {
        **common.provenance(command), "repeats": repeats, "num_batches": num_batches,
        "jobs": rows, "compile": compiles,
    }
    name = "train_step_" + ("quick" if quick else jax.default_backend())
    common.write_results(out_dir, name, results, markdown(results))
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--num_batches", type=int, default=10, help="batches per timed repeat")
    parser.add_argument("--data_dir", default=None, help="where to generate the data (default: temp)")
    parser.add_argument("--out", default=str(common.RESULTS), help="results folder")
    args = parser.parse_args(argv)
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    results = run(pathlib.Path(args.out), args.repeats, args.num_batches, args.data_dir, args.quick)
    print(markdown(results))


if __name__ == "__main__":
    main()
