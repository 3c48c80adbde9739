"""Compile time and run time of a cell's gradient under XLA's default settings and the compile-fast ones.

    python -m benchmarks.compile_time              # 4 rounds, writes benchmarks/results/compile_time.{json,md}
    python -m benchmarks.compile_time --rounds=1   # a quick look

Why it exists: the test suite (``tests/session.py``) compiles with
``--xla_backend_optimization_level=0``, ``--xla_cpu_use_fusion_emitters=false`` (the CPU backend's
legacy fusion code generator) and ``--xla_cpu_parallel_codegen_split_count=1`` (one LLVM module per
program instead of several compiled on a thread pool) because its programs are tiny and compiling is
most of their time. This benchmark shows what each flag buys
(compile time of small programs) and what it costs (run time of a program of realistic size), so that
nobody sets them for training without knowing.

``XLA_FLAGS`` is read once per process, so each (setting, round) runs in its own subprocess, the
settings interleaved round by round (round-robin: the load of a shared machine falls on all alike). A
process compiles the masked-scan gradient (``rnnlab.unroll_batch``, FUSED backend) of the LSTM and the
GRU at ``COMPILES`` hidden sizes each (every size a new program; no compilation cache), then times the
compiled gradient at ``RUN_POINT`` (median of repeats). Reported: per setting, the median over rounds of
the mean compile time per program (wall clock, and CPU time of all the process's threads: what two test
workers on two cores pay) and of the run time, and each one's ratio to the default.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from benchmarks import common

SETTINGS = {  # name: XLA_FLAGS; the last is the test suite's
    "default": "",
    "level 0": "--xla_backend_optimization_level=0",
    "no fusion emitters": "--xla_cpu_use_fusion_emitters=false",
    "level 0, no fusion emitters": "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false",
    "level 0, no fusion emitters, one codegen split": (
        "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
        " --xla_cpu_parallel_codegen_split_count=1"),
}
COMPILES = (8, 12, 16, 20, 24)  # hidden sizes compiled at the test suite's scale: batch 4, T 10, D 8
RUN_POINT = (16, 100, 64, 64)  # (batch, T, D, H) of the timed gradient
RUN_REPEATS = 20


def measure() -> dict:
    """In this process (``XLA_FLAGS`` already set): seconds per compile, and the run time at ``RUN_POINT``."""
    import jax
    import jax.numpy as jnp

    import rnnlab

    jax.config.update("jax_enable_compilation_cache", False)

    def gradient(kind: str, B: int, T: int, D: int, H: int):
        cell = common.rnnlab_cell(kind, H)
        params = cell.init(jax.random.key(0), D)
        xs = jnp.ones((B, T, D))
        lengths = jnp.arange(T - B + 1, T + 1)

        def loss(p, x):
            return jnp.sum(rnnlab.unroll_batch(cell, p, x, lengths, backend=rnnlab.Backend.FUSED)[1] ** 2)

        return jax.jit(jax.grad(loss)), params, xs

    compile_seconds, compile_cpu_seconds = [], []
    for kind in common.CELLS:
        for H in COMPILES:
            fn, params, xs = gradient(kind, 4, 10, 8, H)
            start, start_cpu = time.perf_counter(), time.process_time()
            fn.lower(params, xs).compile()
            compile_seconds.append(time.perf_counter() - start)
            compile_cpu_seconds.append(time.process_time() - start_cpu)
    run_seconds = {}
    for kind in common.CELLS:
        fn, params, xs = gradient(kind, *RUN_POINT)
        run_seconds[kind] = common.median_seconds(lambda: jax.block_until_ready(fn(params, xs)), RUN_REPEATS)
    return {"compile_seconds": float(np.mean(compile_seconds)),
            "compile_cpu_seconds": float(np.mean(compile_cpu_seconds)), "run_seconds": run_seconds}


def run_setting(flags: str) -> dict:
    """:func:`measure` in a fresh process with ``XLA_FLAGS=flags``."""
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-m", "benchmarks.compile_time", "--child"], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratios(results: dict, name: str) -> tuple[float, float, dict[str, float]]:
    """Setting ``name``'s compile time (wall, CPU) and each cell's run time, as ratios to the default setting's."""
    row, base = results["settings"][name], results["settings"]["default"]
    return (row["compile_seconds"] / base["compile_seconds"],
            row["compile_cpu_seconds"] / base["compile_cpu_seconds"],
            {k: row["run_seconds"][k] / base["run_seconds"][k] for k in common.CELLS})


def markdown(results: dict) -> str:
    """The results table: per setting, compile seconds per program, run ms per cell, ratios to the default."""
    lines = common.header(results, "Compile time vs run time by XLA compile settings")
    lines += [f"Compiled: the FUSED masked-scan gradient, batch 4, T 10, D 8, H in {list(COMPILES)}, "
              f"LSTM and GRU (mean per program). Run: the gradient at (B, T, D, H) = {RUN_POINT} "
              f"(median of {RUN_REPEATS}). Each value: the median over {results['rounds']} rounds.", "",
              "| setting (XLA_FLAGS) | compile s / program | ratio | compile CPU s / program | ratio | "
              + " | ".join(f"{k} run ms | ratio" for k in common.CELLS) + " |",
              "|---|---|---|---|---|" + "---|---|" * len(common.CELLS)]
    for name, row in results["settings"].items():
        compile_ratio, cpu_ratio, run_ratios = ratios(results, name)
        cells = [f"{1e3 * row['run_seconds'][k]:.2f} | {run_ratios[k]:.2f}" for k in common.CELLS]
        lines.append(f"| {name} (`{SETTINGS[name] or 'none'}`) | {row['compile_seconds']:.3f} | {compile_ratio:.2f} | "
                     f"{row['compile_cpu_seconds']:.3f} | {cpu_ratio:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def ratios_markdown(results: dict) -> str:
    """docs/performance.md's table: each non-default setting's compile and run time as ratios to the default."""
    lines = ["| `XLA_FLAGS` | compile time | compile CPU time | "
             + " | ".join(f"{k.upper()} run time" for k in common.CELLS) + " |",
             "|---|---|---|" + "---|" * len(common.CELLS)]
    for name in results["settings"]:
        if name == "default":
            continue
        compile_ratio, cpu_ratio, run_ratios = ratios(results, name)
        lines.append(f"| `{SETTINGS[name]}` | {compile_ratio:.2f}x | {cpu_ratio:.2f}x | "
                     + " | ".join(f"{run_ratios[k]:.2f}x" for k in common.CELLS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure()))
        return
    per_round = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, flags in SETTINGS.items():
            per_round[name].append(run_setting(flags))
    settings = {name: {"compile_seconds": float(np.median([r["compile_seconds"] for r in rows])),
                     "compile_cpu_seconds": float(np.median([r["compile_cpu_seconds"] for r in rows])),
                     "run_seconds": {k: float(np.median([r["run_seconds"][k] for r in rows])) for k in common.CELLS},
                     "rounds": rows}
              for name, rows in per_round.items()}
    results = {**common.provenance(" ".join(["python -m benchmarks.compile_time", *sys.argv[1:]])),
               "repeats": args.rounds, "rounds": args.rounds, "settings": settings}
    common.write_results(common.RESULTS, "compile_time", results, markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
