"""Speed of rnnlab's recurrence beside Flax ``nn.RNN`` and PyTorch, in one run.

    python -m benchmarks.speed                  # the issue's grid -> benchmarks/results/cpu.*
                                                # (with benchmarks.scan_modes' two comparisons)
    python -m benchmarks.speed --quick          # a tiny grid, seconds (sanity check)

For every grid point (B, T, D, H), cell (LSTM, GRU) and mode (``fwd``: the
outputs; ``fwdbwd``: the gradient of the sum of the outputs w.r.t. params and
inputs) every implementation is compiled and warmed up first, then timed
round-robin: each repeat runs every implementation once, in turn, so that the
load of a shared machine falls on all of them alike. Reported: the median
over repeats with its spread (min, max), tokens/s (B*T per second), the ratio
of each peer's time to rnnlab's (>1: rnnlab is faster), and GFLOP/s.

FLOPs count only the matrix products, 2 per multiply-add: forward
``2*B*T*(D+H)*G*H`` (G = 4 LSTM, 3 GRU); forward+backward three times that
(each product has two products of the same size in the backward pass: one
for its input, one for its weight). Gate arithmetic is not counted. The
machine's peak is measured here as the float32 throughput of a large square
matmul (XLA and PyTorch).
"""

from __future__ import annotations

import argparse
import functools
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

import rnnlab
from benchmarks import common, scan_modes
from rnnlab.backends import Backend

GRID = ((32, 100, 128, 128), (64, 200, 256, 256), (16, 500, 64, 64), (128, 50, 512, 512))
QUICK_GRID = ((4, 8, 8, 8),)
MODES = ("fwd", "fwdbwd")


def flops(kind: str, mode: str, B: int, T: int, D: int, H: int) -> float:
    """Matrix-product FLOPs of one call (see the module docstring)."""
    forward = 2.0 * B * T * (D + H) * common.rnnlab_cell(kind, H).num_gates * H
    return forward if mode == "fwd" else 3.0 * forward


def rnnlab_impls(kind: str, B: int, T: int, D: int, H: int, mode: str,
                 hand_backward: bool = True) -> dict:
    """rnnlab, one entry per backend (FUSED through ``unroll_batch``, REFERENCE through vmap).

    ``rnnlab_fused`` runs whole sequences without lengths (no masks in the
    loops), as Flax ``nn.RNN`` and PyTorch are called here; ``rnnlab_fused_masked``
    passes lengths (all T), the path of a padded batch, masks in the loops.
    ``hand_backward=False`` runs FUSED without the definition's hand-written
    backward step (``jax.vjp`` of the step instead), for comparison.
    """
    cell = common.rnnlab_cell(kind, H)
    if not hand_backward:
        cell = cell._replace(definition=cell.definition._replace(backward=None))
    params = cell.init(jax.random.PRNGKey(0), D)
    xs = jax.random.normal(jax.random.PRNGKey(1), (B, T, D))
    lengths = jnp.full((B,), T, jnp.int32)

    def fused(p, x):
        return rnnlab.unroll_batch(cell, p, x, backend=Backend.FUSED)[1]

    def fused_masked(p, x):
        return rnnlab.unroll_batch(cell, p, x, lengths, backend=Backend.FUSED)[1]

    def reference(p, x):
        one = functools.partial(rnnlab.unroll, cell, p, backend=Backend.REFERENCE)
        return jax.vmap(one)(x, lengths)[1]

    return {
        "rnnlab_fused": common.jax_callable(fused, params, xs, mode),
        "rnnlab_fused_masked": common.jax_callable(fused_masked, params, xs, mode),
        "rnnlab_reference": common.jax_callable(reference, params, xs, mode),
    }


def flax_impl(kind: str, B: int, T: int, D: int, H: int, mode: str) -> dict:
    """Flax ``nn.RNN(nn.OptimizedLSTMCell)`` / ``nn.RNN(nn.GRUCell)``, jitted."""
    import flax.linen as nn

    cell = nn.OptimizedLSTMCell(features=H) if kind == "lstm" else nn.GRUCell(features=H)
    model = nn.RNN(cell)
    xs = jax.random.normal(jax.random.PRNGKey(1), (B, T, D))
    params = model.init(jax.random.PRNGKey(0), xs)
    return {"flax": common.jax_callable(model.apply, params, xs, mode)}


def torch_impl(kind: str, B: int, T: int, D: int, H: int, mode: str) -> dict:
    """PyTorch ``nn.LSTM`` / ``nn.GRU`` (CPU threads = core count); empty if not installed."""
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(os.cpu_count() or 1)
    module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(D, H, batch_first=True)
    xs = torch.randn(B, T, D, requires_grad=(mode == "fwdbwd"))

    def fwd():
        with torch.no_grad():
            module(xs)

    def fwdbwd():
        module.zero_grad()
        xs.grad = None
        ys, _ = module(xs)
        ys.sum().backward()

    return {"torch": fwd if mode == "fwd" else fwdbwd}


def matmul_peak(size: int = 2048, repeats: int = 10) -> dict:
    """Measured float32 matmul GFLOP/s (median of ``repeats``), XLA and PyTorch."""
    peaks = {}
    a = jnp.ones((size, size), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    peaks["xla"] = common.gflops(lambda: f(a).block_until_ready(), 2.0 * size**3, repeats)
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        t = torch.ones(size, size)
        peaks["torch"] = common.gflops(lambda: t @ t, 2.0 * size**3, repeats)
    except ImportError:
        pass
    return peaks


def run(grid=GRID, repeats: int = 5, out_dir: pathlib.Path = common.RESULTS, quick: bool = False,
        cells=common.CELLS, modes=MODES) -> dict:
    """Times the grid and writes ``<name>.json``, ``<name>.md`` and ``<name>.png`` to ``out_dir``.

    ``name`` is the device platform (``cpu``) or ``quick``. Returns the results dict.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "quick" if quick else jax.default_backend()
    peak = matmul_peak(256 if quick else 2048, 3 if quick else 10)
    rows = []
    for B, T, D, H in grid:
        for kind in cells:
            for mode in modes:
                impls = {}
                for build in (rnnlab_impls, flax_impl, torch_impl):
                    impls.update(build(kind, B, T, D, H, mode))
                times = common.time_round_robin(impls, repeats)
                for impl, ts in times.items():
                    median = float(np.median(ts))
                    rows.append({
                        "cell": kind, "mode": mode, "B": B, "T": T, "D": D, "H": H,
                        "impl": impl, "median_s": median, "min_s": float(np.min(ts)),
                        "max_s": float(np.max(ts)), "tokens_per_s": B * T / median,
                        "gflops": flops(kind, mode, B, T, D, H) / median / 1e9,
                    })
    results = {
        **common.provenance("python -m benchmarks.speed" + (" --quick" if quick else "")),
        "repeats": repeats,
        "matmul_peak_gflops": peak,
        "rows": rows,
        "scan_modes": scan_modes.measure(quick, repeats),  # vmap vs batch, parallel vs sequential
    }
    common.write_results(out_dir, name, results, markdown(results))
    plot(results, out_dir / f"{name}.png")
    scan_modes.plot(results["scan_modes"], out_dir / f"{name}_scan_modes.png")
    return results


def ratios(results: dict, mode: str = "fwdbwd", ours: str = "rnnlab_fused") -> list:
    """Per (cell, grid point): ``{peer: peer time / rnnlab time}`` (>1: rnnlab faster)."""
    table = {}
    for row in results["rows"]:
        if row["mode"] == mode:
            key = (row["cell"], row["B"], row["T"], row["D"], row["H"])
            table.setdefault(key, {})[row["impl"]] = row
    out = []
    for key, impls in table.items():
        base = impls[ours]["median_s"]
        entry = {"cell": key[0], "point": key[1:], "rnnlab_gflops": impls[ours]["gflops"]}
        entry.update({peer: r["median_s"] / base for peer, r in impls.items() if peer != ours})
        out.append(entry)
    return out


def markdown(results: dict) -> str:
    """The results as Markdown: ratio tables (fwd+bwd, fwd), then every timing."""
    lines = common.header(results, "Speed") + [
        f"Measured matmul peak (float32, GFLOP/s): {_fmt_dict(results['matmul_peak_gflops'])}.",
        "FLOPs: matrix products only; fwd = 2*B*T*(D+H)*G*H, fwd+bwd = 3x fwd.", "",
    ]
    for mode in MODES:
        table = ratios(results, mode)
        peers = sorted({k for r in table for k in r if k not in ("cell", "point", "rnnlab_gflops")})
        lines += [f"## Ratios, {mode}: peer time / rnnlab_fused time (>1: rnnlab faster)", "",
                  "| cell | B, T, D, H | " + " | ".join(peers) + " | rnnlab GFLOP/s |",
                  "|---" * (len(peers) + 3) + "|"]
        for r in table:
            cells = " | ".join(f"{r[p]:.2f}" if p in r else "-" for p in peers)
            lines.append(f"| {r['cell']} | {r['point']} | {cells} | {r['rnnlab_gflops']:.1f} |")
        for cell in common.CELLS:
            medians = {p: float(np.median([r[p] for r in table if r["cell"] == cell and p in r]))
                       for p in peers if any(p in r for r in table if r["cell"] == cell)}
            if medians:
                lines.append(f"| **{cell} median** | grid | "
                             + " | ".join(f"{medians.get(p, float('nan')):.2f}" for p in peers)
                             + " | |")
        lines.append("")
    if "scan_modes" in results:
        lines += [scan_modes.tables(results["scan_modes"]), ""]
    lines += ["## All timings", "", "| cell | mode | B, T, D, H | impl | median ms | min-max ms "
              "| tokens/s | GFLOP/s |", "|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(
            f"| {r['cell']} | {r['mode']} | {r['B']}, {r['T']}, {r['D']}, {r['H']} | {r['impl']} "
            f"| {1e3 * r['median_s']:.2f} | {1e3 * r['min_s']:.2f}-{1e3 * r['max_s']:.2f} "
            f"| {r['tokens_per_s']:.0f} | {r['gflops']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _fmt_dict(d: dict) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in d.items())


def plot(results: dict, path: pathlib.Path) -> None:
    """Bar chart: tokens/s of every implementation, fwd+bwd, one panel per cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if r["mode"] == "fwdbwd"]
    impls = sorted({r["impl"] for r in rows})
    fig, axes = plt.subplots(1, len(common.CELLS), figsize=(6 * len(common.CELLS), 4), squeeze=False)
    for ax, cell in zip(axes[0], common.CELLS):
        points = sorted({(r["B"], r["T"], r["D"], r["H"]) for r in rows if r["cell"] == cell})
        width = 0.8 / max(len(impls), 1)
        for i, impl in enumerate(impls):
            values = [next((r["tokens_per_s"] for r in rows if r["cell"] == cell and r["impl"] == impl
                            and (r["B"], r["T"], r["D"], r["H"]) == p), 0.0) for p in points]
            ax.bar(np.arange(len(points)) + i * width, values, width, label=impl)
        ax.set_xticks(np.arange(len(points)) + 0.4 - width / 2)
        ax.set_xticklabels([f"B{b} T{t}\nD{d} H{h}" for b, t, d, h in points], fontsize=8)
        ax.set_title(f"{cell.upper()} forward+backward")
        ax.set_ylabel("tokens/s (higher is better)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny grid, 2 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 5, quick 2)")
    parser.add_argument("--out", default=str(common.RESULTS), help="folder for the results files")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    results = run(QUICK_GRID if args.quick else GRID, repeats, pathlib.Path(args.out), args.quick)
    sys.stdout.write(markdown(results))


if __name__ == "__main__":
    main()
