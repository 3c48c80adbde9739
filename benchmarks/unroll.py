"""The issue-22 speed targets, and the grid that picks ``DEFAULT_UNROLL`` per backend, in one run.

    python -m benchmarks.unroll --before 2343b09      # the targets: LSTM and GRU, fwd and fwd+bwd at
                                                      # (64, 200, 256, 256), rnnlab before (commit 2343b09)
                                                      # and after, unroll 1/2/4/8, beside Flax and PyTorch
    python -m benchmarks.unroll --quick               # a tiny grid, seconds (sanity check)

Every implementation is compiled and warmed up, then timed round-robin
(:func:`benchmarks.common.time_round_robin`: each repeat runs every one once,
in a shuffled order), so that the load of a shared machine falls on all alike.
Run it on an idle machine.

Implementations: ``rnnlab_<backend>_u<U>`` (``unroll_batch`` on whole
sequences, ``unroll=U``) for the sequential backends that run on this platform,
``rnnlab_before`` (``--before REV``: the FUSED backend of the package at that
git revision, loaded from ``git archive`` into a temporary folder beside this
one in the same process), ``flax`` (``nn.RNN`` of ``OptimizedLSTMCell`` /
``GRUCell``) and ``torch`` (``nn.LSTM`` / ``nn.GRU``). Writes
``benchmarks/results/unroll_<platform>.{json,md}``: per cell and mode, each
implementation's median and its time relative to ``rnnlab_fused_u1``, and the
fastest ``unroll`` per backend (the value for ``rnnlab.backends.DEFAULT_UNROLL``).
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import subprocess
import sys
import tarfile
import tempfile

import jax
import numpy as np

import rnnlab
from benchmarks import common, speed
from rnnlab.backends import SEQUENTIAL, Backend

POINT = (64, 200, 256, 256)
QUICK_POINT = (4, 8, 8, 8)
UNROLLS = (1, 2, 4, 8)
ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_rnnlab_at(revision: str, folder: pathlib.Path):
    """The ``rnnlab`` package of git ``revision``, imported beside the current one (a module object).

    Its files are extracted into ``folder``; its modules are imported under
    their own names, kept alive by the returned module, and removed from
    ``sys.modules`` again so that the current package stays ``rnnlab``.
    """
    archive = folder / "rnnlab.tar"
    with open(archive, "wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", revision, "rnnlab"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    current = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "rnnlab"}
    for name in current:
        del sys.modules[name]
    sys.path.insert(0, str(folder))
    try:
        before = importlib.import_module("rnnlab")
        importlib.import_module("rnnlab.scan")
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n.split(".")[0] == "rnnlab"]:
            del sys.modules[name]
        sys.modules.update(current)
    return before


def _cell(package, kind: str, H: int):
    return package.lstm(H) if kind == "lstm" else package.gru(H, reset_after=True)  # the GRU the peers compute


def rnnlab_impls(kind: str, B: int, T: int, D: int, H: int, mode: str, before=None) -> dict:
    """``{name: blocking call}`` of rnnlab's sequential backends at every unroll (and the package ``before``)."""
    cell = _cell(rnnlab, kind, H)
    params = cell.init(jax.random.PRNGKey(0), D)
    xs = jax.random.normal(jax.random.PRNGKey(1), (B, T, D))
    impls = {}
    for backend in SEQUENTIAL:
        if backend not in rnnlab.backends.supported(cell) or (backend is Backend.PALLAS
                                                                and jax.default_backend() != "gpu"):
            continue  # interpreted Pallas is for tests, not timings
        for unroll in UNROLLS:
            apply = lambda p, x, b=backend, u=unroll: rnnlab.unroll_batch(cell, p, x, backend=b, unroll=u)[1]
            impls[f"rnnlab_{backend.value}_u{unroll}"] = common.jax_callable(apply, params, xs, mode)
    if before is not None:
        old = _cell(before, kind, H)
        apply = lambda p, x: before.unroll_batch(old, p, x, backend=before.Backend.FUSED)[1]
        impls["rnnlab_before"] = common.jax_callable(apply, params, xs, mode)
    return impls


def run(point=POINT, repeats: int = 7, before_revision: str | None = None, out_dir=common.RESULTS,
        quick: bool = False) -> dict:
    """Times every implementation at ``point`` for LSTM and GRU, fwd and fwd+bwd; writes the results files."""
    before = None
    with tempfile.TemporaryDirectory() as folder:
        if before_revision:
            before = load_rnnlab_at(before_revision, pathlib.Path(folder))
        rows = []
        B, T, D, H = point
        for kind in common.CELLS:
            for mode in speed.MODES:
                impls = rnnlab_impls(kind, B, T, D, H, mode, before)
                impls.update(speed.flax_impl(kind, B, T, D, H, mode))
                impls.update(speed.torch_impl(kind, B, T, D, H, mode))
                for impl, ts in common.time_round_robin(impls, repeats).items():
                    rows.append({"cell": kind, "mode": mode, "B": B, "T": T, "D": D, "H": H, "impl": impl,
                                 "median_s": float(np.median(ts)), "min_s": float(np.min(ts)),
                                 "max_s": float(np.max(ts))})
    command = "python -m benchmarks.unroll" + (" --quick" if quick else "") + (
        f" --before {before_revision}" if before_revision else "")
    results = {**common.provenance(command), "repeats": repeats, "rows": rows}
    name = "unroll_quick" if quick else f"unroll_{jax.default_backend()}"
    pathlib.Path(out_dir).mkdir(parents=True, exist_ok=True)
    common.write_results(out_dir, name, results, markdown(results))
    return results


def best_unroll(rows: list, cell: str, mode: str, backend: str) -> int | None:
    """The fastest ``unroll`` of one backend for one cell and mode (``None``: not timed)."""
    timed = {int(r["impl"].rsplit("_u", 1)[1]): r["median_s"] for r in rows
             if r["cell"] == cell and r["mode"] == mode and r["impl"].startswith(f"rnnlab_{backend}_u")}
    return min(timed, key=timed.get) if timed else None


def markdown(results: dict) -> str:
    """Per cell and mode: every implementation's median and time / ``rnnlab_fused_u1``; the best unroll."""
    lines = common.header(results, "Unroll and the issue-22 targets")
    rows = results["rows"]
    for cell in common.CELLS:
        for mode in speed.MODES:
            mine = [r for r in rows if r["cell"] == cell and r["mode"] == mode]
            if not mine:
                continue
            base = next(r["median_s"] for r in mine if r["impl"] == "rnnlab_fused_u1")
            lines += [f"## {cell}, {mode} at B, T, D, H = {mine[0]['B']}, {mine[0]['T']}, {mine[0]['D']}, "
                      f"{mine[0]['H']}", "", "| impl | median ms | min-max ms | time / rnnlab_fused_u1 |",
                      "|---|---|---|---|"]
            for r in sorted(mine, key=lambda r: r["median_s"]):
                lines.append(f"| {r['impl']} | {1e3 * r['median_s']:.2f} | {1e3 * r['min_s']:.2f}-"
                             f"{1e3 * r['max_s']:.2f} | {r['median_s'] / base:.3f} |")
            best = {b.value: best_unroll(rows, cell, mode, b.value) for b in SEQUENTIAL}
            lines += ["", "Fastest unroll: " + ", ".join(f"{b} {u}" for b, u in best.items() if u), ""]
    return "\n".join(lines) + "\n"


# Issue 22's targets: (cell, mode, peer, wanted speed-up of rnnlab_fused_u1 over the peer).
TARGETS = (("lstm", "fwdbwd", "torch", 1.0), ("lstm", "fwdbwd", "flax", 1.3), ("lstm", "fwd", "flax", 1.0),
           ("gru", "fwdbwd", "torch", 1.3), ("gru", "fwdbwd", "flax", 1.3), ("gru", "fwd", "torch", 1.3),
           ("gru", "fwd", "flax", 1.3))


def targets_markdown(results: dict) -> str:
    """The issue-22 targets table: speed-up = peer median / ``rnnlab_fused_u1`` median (> 1: rnnlab faster).

    Also the FUSED backend after the backend contract against ``rnnlab_before`` (the same backend before).
    """
    rows = results["rows"]

    def median(cell, mode, impl):
        return next(r["median_s"] for r in rows if (r["cell"], r["mode"], r["impl"]) == (cell, mode, impl))

    lines = ["| cell, mode | peer | speed-up of rnnlab (fused, unroll 1) | target | met |", "|---|---|---|---|---|"]
    for cell, mode, peer, want in TARGETS:
        ratio = median(cell, mode, peer) / median(cell, mode, "rnnlab_fused_u1")
        lines.append(f"| {cell}, {mode} | {peer} | {ratio:.2f}x | >= {want:.1f}x | {'yes' if ratio >= want else 'no'} |")
    if any(r["impl"] == "rnnlab_before" for r in rows):
        lines += ["", "| cell, mode | fused after / before the backend contract |", "|---|---|"]
        for cell in common.CELLS:
            for mode in speed.MODES:
                lines.append(f"| {cell}, {mode} | "
                             f"{median(cell, mode, 'rnnlab_fused_u1') / median(cell, mode, 'rnnlab_before'):.3f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 2 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 7, quick 2)")
    parser.add_argument("--before", default=None, help="git revision of the rnnlab to compare against")
    parser.add_argument("--out", default=str(common.RESULTS), help="folder for the results files")
    args = parser.parse_args(argv)
    results = run(QUICK_POINT if args.quick else POINT, args.repeats or (2 if args.quick else 7), args.before,
                  pathlib.Path(args.out), args.quick)
    sys.stdout.write(markdown(results))


if __name__ == "__main__":
    main()
