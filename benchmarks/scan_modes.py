"""Two comparisons of how a recurrence is run, each timed round-robin in one process.

    python -m benchmarks.scan_modes                  # both tables, writes results/scan_modes_cpu.{json,md,png}
    python -m benchmarks.scan_modes --quick          # tiny sizes, to check the script

1. ``jax.vmap(unroll)`` (the reference scan per example) vs ``unroll_batch``
   (the fused backend), fwd+bwd, LSTM and GRU (reset after), at grid points of
   :mod:`benchmarks.speed`: the ratio says what calling the one-sequence API
   under vmap costs.
2. The parallel backend (minGRU, minLSTM: an associative scan over T) vs the
   sequential fused GRU and LSTM at equal H, fwd+bwd, for T = 100, 1000,
   10,000: time per step as T grows, and the crossover.

Compilation is outside every timing (two warm-up calls each). Absolute times
move between runs on a shared machine; read the ratios (same run, same load).
"""

from __future__ import annotations

import argparse
import functools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import rnnlab
from benchmarks import common

VMAP_POINTS = ((32, 100, 128, 128), (64, 200, 256, 256))
PARALLEL_B, PARALLEL_D, PARALLEL_H = 16, 64, 128
PARALLEL_T = (100, 1000, 10_000)
PAIRS = (("min_gru", "gru"), ("min_lstm", "lstm"))


def _fwdbwd(cell: rnnlab.Cell, B: int, T: int, D: int, call) -> callable:
    """A blocking fwd+bwd call of ``call(cell, params, xs, lengths) -> ys`` (compiled)."""
    params = cell.init(jax.random.PRNGKey(0), D)
    xs = jax.random.normal(jax.random.PRNGKey(1), (B, T, D))
    lengths = jnp.full((B,), T, jnp.int32)
    return common.jax_callable(lambda p, x: call(cell, p, x, lengths), params, xs, "fwdbwd")


def _batch(cell, p, x, lengths, backend=None):
    return rnnlab.unroll_batch(cell, p, x, lengths, backend=backend)[1]


def _vmapped(cell, p, x, lengths):
    return jax.vmap(functools.partial(rnnlab.unroll, cell, p))(x, lengths)[1]


def vmap_vs_batch(points, repeats: int) -> list[dict]:
    """Rows ``{kind, B, T, D, H, vmap_ms, batch_ms, ratio}`` (ratio = vmap / batch time)."""
    rows = []
    for B, T, D, H in points:
        for kind in common.CELLS:
            cell = common.rnnlab_cell(kind, H)
            impls = {"vmap": _fwdbwd(cell, B, T, D, _vmapped), "batch": _fwdbwd(cell, B, T, D, _batch)}
            ms = {k: 1e3 * float(np.median(v)) for k, v in common.time_round_robin(impls, repeats).items()}
            rows.append({"kind": kind, "B": B, "T": T, "D": D, "H": H, "vmap_ms": ms["vmap"],
                         "batch_ms": ms["batch"], "ratio": ms["vmap"] / ms["batch"]})
            print(rows[-1], flush=True)
    return rows


def parallel_vs_sequential(lengths, B: int, D: int, H: int, repeats: int) -> list[dict]:
    """Rows ``{parallel, sequential, T, parallel_ms, sequential_ms, speedup}`` (sequential / parallel)."""
    rows = []
    for T in lengths:
        impls = {}
        for par, seq in PAIRS:
            impls[par] = _fwdbwd(rnnlab.get_cell(par, H), B, T, D, _batch)
            impls[seq] = _fwdbwd(rnnlab.get_cell(seq, H), B, T, D, _batch)
        ms = {k: 1e3 * float(np.median(v)) for k, v in common.time_round_robin(impls, repeats).items()}
        for par, seq in PAIRS:
            rows.append({"parallel": par, "sequential": seq, "B": B, "T": T, "D": D, "H": H,
                         "parallel_ms": ms[par], "sequential_ms": ms[seq],
                         "speedup": ms[seq] / ms[par]})
            print(rows[-1], flush=True)
    return rows


def markdown(results: dict) -> str:
    """The two tables, under the run's header."""
    return "\n".join(common.header(results, "Scan modes on CPU: vmap vs batch, parallel vs sequential")) \
        + "\n" + tables(results)


def tables(results: dict) -> str:
    """The two comparisons as Markdown tables (also part of ``benchmarks.speed``'s ``cpu.md``)."""
    lines = ["", "## `jax.vmap(unroll)` vs `unroll_batch`, fwd+bwd (ratio = vmap time / batch time)", "",
              "| cell | (B, T, D, H) | vmap ms | batch ms | ratio |", "| --- | --- | --- | --- | --- |"]
    for r in results["vmap_vs_batch"]:
        lines.append(f"| {r['kind']} | ({r['B']}, {r['T']}, {r['D']}, {r['H']}) | {r['vmap_ms']:.1f} | "
                     f"{r['batch_ms']:.1f} | {r['ratio']:.2f} |")
    lines += ["", "## Parallel scan (minGRU, minLSTM) vs sequential fused (GRU, LSTM), fwd+bwd, equal H",
              "", "| pair | T | parallel ms | sequential ms | sequential / parallel | parallel us/step |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in results["parallel_vs_sequential"]:
        lines.append(f"| {r['parallel']} vs {r['sequential']} | {r['T']} | {r['parallel_ms']:.1f} | "
                     f"{r['sequential_ms']:.1f} | {r['speedup']:.2f} | {1e3 * r['parallel_ms'] / r['T']:.1f} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: pathlib.Path) -> None:
    """Time per call vs T, log-log, one line per cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    rows = results["parallel_vs_sequential"]
    for par, seq in PAIRS:
        mine = [r for r in rows if r["parallel"] == par]
        ts = [r["T"] for r in mine]
        ax.plot(ts, [r["parallel_ms"] for r in mine], "o-", label=f"{par} (parallel)")
        ax.plot(ts, [r["sequential_ms"] for r in mine], "s--", label=f"{seq} (fused)")
    ax.set(xscale="log", yscale="log", xlabel="T", ylabel="fwd+bwd ms",
           title=f"B={rows[0]['B']}, D={rows[0]['D']}, H={rows[0]['H']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def measure(quick: bool, repeats: int) -> dict:
    """``{"vmap_vs_batch": [...], "parallel_vs_sequential": [...]}``: both comparisons (tiny sizes when quick)."""
    points = ((4, 8, 8, 8),) if quick else VMAP_POINTS
    lengths = (10,) if quick else PARALLEL_T  # quick: one length, a check that the path runs
    size = (2, 4, 8) if quick else (PARALLEL_B, PARALLEL_D, PARALLEL_H)
    return {"vmap_vs_batch": vmap_vs_batch(points, repeats),
            "parallel_vs_sequential": parallel_vs_sequential(lengths, *size, repeats)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(common.RESULTS))
    args = parser.parse_args(argv)
    command = "python -m benchmarks.scan_modes" + (" --quick" if args.quick else "")
    results = measure(args.quick, args.repeats)
    results.update(common.provenance(command), repeats=args.repeats)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "scan_modes_quick" if args.quick else "scan_modes_cpu"
    common.write_results(out, stem, results, markdown(results))
    plot(results, out / f"{stem}.png")


if __name__ == "__main__":
    main()
