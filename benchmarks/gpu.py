"""GPU speed, in one command: rnnlab's backends beside Flax, cuDNN, PyTorch and FlashRNN.

    python -m benchmarks.gpu             # on a GPU machine -> benchmarks/results/gpu.{md,json}
    python -m benchmarks.gpu --smoke     # tiny sizes on CPU: checks the script end to end

Grid: ``benchmarks.speed.GRID`` plus (B, T) = (16, 1000) and (256, 100) at
H = D = 128, 512, 1024, each in float32 and bfloat16 (the dtype of the
matrix products), for the LSTM and the GRU (reset-after, the form every peer
computes), forward (``fwd``) and forward+backward (``fwdbwd``: the gradient of
the sum of the outputs w.r.t. params and inputs), as in ``benchmarks.speed``.

Implementations:

- ``rnnlab_<backend>``: ``rnnlab.unroll_batch`` with every ``rnnlab.Backend``
  member that runs the cell (members added later are picked up);
- ``flax``: ``nn.RNN`` of ``OptimizedLSTMCell`` / ``GRUCell`` with ``dtype``;
- ``jax_cudnn``: ``jax.experimental.rnn.lstm`` on its own weights (float32 only);
- in a separate process (JAX preallocates most of the GPU's memory; PyTorch
  runs in the rest), run before the JAX timings: ``torch_cudnn`` (``nn.LSTM`` / ``nn.GRU`` on CUDA) and FlashRNN
  (``flashrnn`` from PyPI, backends ``cuda_fused`` and ``triton_fused``; the
  script tries ``pip install flashrnn`` when it is missing, and records why it
  is skipped when that fails).

Every JAX implementation is compiled first (in parallel threads; compile time
recorded), its forward outputs checked against ``rnnlab_fused`` where the
params are shared, then all are timed round-robin
(``benchmarks.common.time_round_robin``). A time budget (``--budget``, default
450 s for everything) orders the work float32 first, the new GPU points
first, and records what it had to skip. Results: median, min, max, tokens/s,
GFLOP/s and ratios to ``rnnlab_fused``; the fastest implementation per row.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

import rnnlab
from benchmarks import common, speed

GPU_POINTS = tuple((B, T, H, H) for H in (128, 512, 1024) for B, T in ((16, 1000), (256, 100)))
SMOKE_POINTS = ((4, 8, 8, 8),)
DTYPES = ("float32", "bfloat16")
CELLS = ("lstm", "gru")
MODES = ("fwdbwd", "fwd")
RESULTS = pathlib.Path(__file__).parent / "results"
TORCH_SHARE = 0.3  # of the budget, for the PyTorch/FlashRNN process
MARGIN_S = 20.0  # left at the end for writing the results


class Skip(Exception):
    """An implementation that does not run here; the message says why."""


def plan(points=GPU_POINTS, grid=speed.GRID, dtypes=DTYPES) -> list[tuple[str, tuple]]:
    """``[(dtype, (B, T, D, H))]`` in priority order: float32 first, the GPU points first."""
    return [(dtype, point) for dtype in dtypes for point in (*points, *grid)]


def _first_line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip().splitlines()
    return text[0][:300] if text else type(error).__name__


# ---------------------------------------------------------------------------
# JAX implementations: each builder returns (apply, params, xs) or raises Skip


def _rnnlab_cell(kind: str, H: int, dtype: str) -> rnnlab.Cell:
    return rnnlab.lstm(H, dtype=dtype) if kind == "lstm" else rnnlab.gru(
        H, reset_after=True, dtype=dtype)


def jax_builders(kind: str, B: int, T: int, D: int, H: int, dtype: str, on_gpu: bool,
                 smoke: bool) -> dict[str, Callable[[], tuple]]:
    """``{name: build}``; ``build() -> (apply(params, xs) -> ys f32[B, T, H], params, xs)``."""
    cell = _rnnlab_cell(kind, H, dtype)
    params = cell.init(jax.random.PRNGKey(0), D)
    xs = jax.random.normal(jax.random.PRNGKey(1), (B, T, D))
    lengths = jnp.full((B,), T, jnp.int32)
    builders = {}

    def backend_entry(backend):
        def build():
            def apply(p, x):  # whole sequences (no lengths), as the peers are called
                return rnnlab.unroll_batch(cell, p, x, backend=backend)[1]

            try:
                jax.eval_shape(apply, params, xs)
            except ValueError as e:
                raise Skip(_first_line(e)) from None
            return apply, params, xs

        return build

    for backend in rnnlab.Backend:
        builders[f"rnnlab_{backend.value}"] = backend_entry(backend)

    def build_flax():
        import flax.linen as nn

        jdtype = jnp.dtype(dtype)
        flax_cell = (nn.OptimizedLSTMCell(features=H, dtype=jdtype) if kind == "lstm"
                     else nn.GRUCell(features=H, dtype=jdtype))
        model = nn.RNN(flax_cell)
        return model.apply, model.init(jax.random.PRNGKey(0), xs), xs

    builders["flax"] = build_flax

    def build_jax_cudnn():
        from jax.experimental import rnn as jax_rnn

        if kind != "lstm":
            raise Skip("jax.experimental.rnn has the LSTM only")
        if dtype != "float32":
            raise Skip("jax.experimental.rnn runs float32 only")
        if not on_gpu:
            raise Skip("needs a GPU")
        weights = jax_rnn.init_lstm_weight(jax.random.PRNGKey(0), D, H, 1, False)
        zeros = jnp.zeros((1, B, H), jnp.float32)

        def apply(w, x):
            return jax_rnn.lstm(x, zeros, zeros, w, lengths, input_size=D, hidden_size=H,
                                num_layers=1, dropout=0.0, bidirectional=False)[0]

        return apply, weights, xs

    builders["jax_cudnn"] = build_jax_cudnn
    return builders


def _compile(apply: Callable, params, xs, mode: str):
    """AOT-compiles ``apply`` (or the gradient of its sum); returns ``(compiled, seconds)``."""
    start = time.perf_counter()
    if mode == "fwd":
        fn = jax.jit(apply)
    else:
        fn = jax.jit(jax.grad(lambda p, x: jnp.sum(apply(p, x).astype(jnp.float32)),
                              argnums=(0, 1)))
    compiled = fn.lower(params, xs).compile()
    return compiled, time.perf_counter() - start


def run_jax_group(kind: str, point: tuple, mode: str, dtype: str, on_gpu: bool, smoke: bool,
                  max_repeats: int, seconds: float, threads: int) -> tuple[list, dict]:
    """Builds, compiles (in parallel), checks and times every JAX implementation at one point.

    Returns ``(rows, skipped)``; ``seconds`` is this group's share of the budget.
    """
    B, T, D, H = point
    skipped, built = {}, {}
    for name, build in jax_builders(kind, B, T, D, H, dtype, on_gpu, smoke).items():
        try:
            built[name] = build()
        except Skip as e:
            skipped[name] = str(e)
        except Exception as e:  # noqa: BLE001 - a broken peer must not stop the run
            skipped[name] = "build failed: " + _first_line(e)

    compiled, compile_s = {}, {}
    with concurrent.futures.ThreadPoolExecutor(max(1, threads)) as pool:
        futures = {name: pool.submit(_compile, *entry, mode) for name, entry in built.items()}
        for name, future in futures.items():
            try:
                compiled[name], compile_s[name] = future.result()
            except Exception as e:  # noqa: BLE001
                skipped[name] = "compile failed: " + _first_line(e)

    calls, first_s, error = {}, {}, {}
    reference = None
    if mode == "fwd" and "rnnlab_fused" in compiled:
        _, p, x = built["rnnlab_fused"]
        reference = np.asarray(compiled["rnnlab_fused"](p, x), np.float32)
    for name, fn in compiled.items():
        _, p, x = built[name]
        try:
            start = time.perf_counter()
            out = jax.block_until_ready(fn(p, x))
            first_s[name] = time.perf_counter() - start
        except Exception as e:  # noqa: BLE001
            skipped[name] = "run failed: " + _first_line(e)
            continue
        if reference is not None and name.startswith("rnnlab_") and p is built["rnnlab_fused"][1]:
            error[name] = float(np.max(np.abs(np.asarray(out, np.float32) - reference)))
        calls[name] = (lambda f, p, x: lambda: jax.block_until_ready(f(p, x)))(fn, p, x)

    per_round = sum(first_s[name] for name in calls) or 1e-9
    repeats = int(np.clip(seconds / per_round - 2, 1, max_repeats))  # 2 warm-up rounds
    times = common.time_round_robin(calls, repeats) if calls else {}
    rows = []
    for name, ts in times.items():
        rows.append(_row(kind, mode, dtype, point, name, ts, compile_s.get(name),
                         error.get(name)))
    return rows, skipped


def _row(kind, mode, dtype, point, impl, ts, compile_s=None, max_abs_diff=None) -> dict:
    B, T, D, H = point
    median = float(np.median(ts))
    return {
        "cell": kind, "mode": mode, "dtype": dtype, "B": B, "T": T, "D": D, "H": H, "impl": impl,
        "median_s": median, "min_s": float(np.min(ts)), "max_s": float(np.max(ts)),
        "repeats": len(ts), "tokens_per_s": B * T / median,
        "gflops": speed.flops(kind, mode, B, T, D, H) / median / 1e9,
        "compile_s": compile_s, "max_abs_diff_vs_fused": max_abs_diff,
    }


# ---------------------------------------------------------------------------
# PyTorch and FlashRNN, in their own process


def _torch_builders(torch, kind, B, T, D, H, mode, dtype, device) -> dict[str, Callable]:
    """``{name: build}``; ``build() -> call()`` that runs once and synchronises."""
    tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    grad = mode == "fwdbwd"

    def timed(forward, tensors):
        def call():
            for t in tensors:
                t.grad = None
            if grad:
                forward().float().sum().backward()
            else:
                with torch.no_grad():
                    forward()
            sync()

        return call

    def build_nn():
        module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(D, H, batch_first=True)
        module = module.to(device=device, dtype=tdtype)
        xs = torch.randn(B, T, D, device=device, dtype=tdtype, requires_grad=grad)
        return timed(lambda: module(xs)[0], [xs, *module.parameters()])

    builders = {f"torch_{'cudnn' if device == 'cuda' else 'cpu'}": build_nn}

    def flash(backend):
        def build():
            if device != "cuda":
                raise Skip("FlashRNN needs CUDA")
            from flashrnn import flashrnn

            G = 4 if kind == "lstm" else 3
            linear = torch.nn.Linear(D, G * H).to(device=device, dtype=tdtype)
            R = (torch.randn(G, 1, H, H, device=device, dtype=tdtype) / H**0.5).requires_grad_(grad)
            # biases: 4 blocks for both (FlashRNN's GRU keeps its recurrent-candidate bias apart)
            b = torch.zeros(4, 1, H, device=device, dtype=tdtype, requires_grad=grad)
            xs = torch.randn(B, T, D, device=device, dtype=tdtype, requires_grad=grad)

            def forward():
                Wx = linear(xs).reshape(B, T, G, 1, H)  # the input projection, as rnnlab's
                return flashrnn(Wx, R, b, function=kind, backend=backend, dtype=dtype)[0]

            return timed(forward, [xs, R, b, *linear.parameters()])

        return build

    for backend in ("cuda_fused", "triton_fused"):
        builders[f"flashrnn_{backend}"] = flash(backend)
    return builders


def _ensure_flashrnn(smoke: bool, device: str) -> str | None:
    """Imports ``flashrnn``, installing it with pip when missing; returns why not, or None."""
    try:
        import flashrnn  # noqa: F401

        return None
    except ImportError:
        pass
    if smoke or device != "cuda":
        return "not installed (the install is tried on a CUDA machine only)"
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "flashrnn"],
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "pip install flashrnn failed: " + _first_line(e)
    if done.returncode != 0:
        return "pip install flashrnn failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    try:
        import flashrnn  # noqa: F401,F811

        return None
    except ImportError as e:
        return "installed but does not import: " + _first_line(e)


def torch_worker(spec: dict) -> None:
    """Times PyTorch (and FlashRNN) per ``spec``; rewrites ``spec["out"]`` after every group."""
    out = pathlib.Path(spec["out"])
    report: dict[str, Any] = {"rows": [], "skipped": [], "versions": {}}

    def save():
        out.write_text(json.dumps(report, indent=1))

    try:
        import torch
    except ImportError:
        report["skipped"].append({"impl": "torch_*", "reason": "torch is not installed"})
        save()
        return
    device = "cuda" if torch.cuda.is_available() else "cpu"
    report["versions"] = {"torch": torch.__version__, "cuda": torch.version.cuda,
                          "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu"}
    if device == "cpu" and not spec["smoke"]:
        report["skipped"].append({"impl": "torch_cudnn, flashrnn_*",
                                  "reason": "torch has no CUDA here"})
        save()
        return
    no_flash = _ensure_flashrnn(spec["smoke"], device)
    if no_flash:
        report["skipped"].append({"impl": "flashrnn_*", "reason": no_flash})
    save()
    # PyTorch's cuDNN first for every point; FlashRNN (which compiles per shape) after it
    for phase in ("torch", "flashrnn"):
        if phase == "flashrnn" and no_flash:
            continue
        for dtype, point in spec["plan"]:
            for kind in CELLS:
                for mode in MODES:
                    _torch_group(torch, report, spec, phase, kind, tuple(point), mode, dtype,
                                 device)
                    save()


def _torch_group(torch, report, spec, phase, kind, point, mode, dtype, device) -> None:
    """Times the ``phase`` implementations at one point, round-robin; appends rows to ``report``."""
    where = {"cell": kind, "mode": mode, "dtype": dtype, "point": list(point)}
    if time.time() > spec["deadline"]:
        report["skipped"].append({**where, "impl": f"{phase}*", "reason": "time budget"})
        return
    calls, first_s = {}, {}
    for name, build in _torch_builders(torch, kind, *point, mode, dtype, device).items():
        if not name.startswith(phase):
            continue
        try:
            call = build()
            start = time.perf_counter()
            call()  # FlashRNN compiles its kernels here
            first_s[name] = time.perf_counter() - start
            calls[name] = call
        except Exception as e:  # noqa: BLE001 - a broken peer must not stop the run
            report["skipped"].append({**where, "impl": name, "reason": _first_line(e)})
    per_round = sum(first_s.values()) or 1e-9
    repeats = int(np.clip(spec["group_s"] / per_round - 2, 1, spec["repeats"]))
    for name, ts in (common.time_round_robin(calls, repeats) if calls else {}).items():
        report["rows"].append(_row(kind, mode, dtype, point, name, ts, compile_s=first_s[name]))


def run_torch_process(jobs: list, smoke: bool, repeats: int, seconds: float,
                      group_s: float) -> dict:
    """Runs :func:`torch_worker` in a subprocess for at most ``seconds``; its (partial) report."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "torch.json"
        spec = {"plan": jobs, "smoke": smoke, "repeats": repeats, "out": str(out),
                "deadline": time.time() + seconds - 10.0, "group_s": group_s}
        spec_path = pathlib.Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}  # the worker leaves the GPU to torch
        note = None
        try:
            done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--torch-worker",
                                   str(spec_path)], capture_output=True, text=True,
                                  timeout=seconds, env=env,
                                  cwd=pathlib.Path(__file__).resolve().parent.parent)
            if done.returncode != 0:
                note = "torch process failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]
        except subprocess.TimeoutExpired:
            note = f"torch process stopped at its time limit ({seconds:.0f} s)"
        report = json.loads(out.read_text()) if out.exists() else {"rows": [], "skipped": []}
    if note:
        report["skipped"].append({"impl": "torch_*", "reason": note})
    return report


# ---------------------------------------------------------------------------
# The whole run


def gpu_model() -> str:
    """The accelerator's name (``jax.devices()[0].device_kind``), e.g. "NVIDIA H200"."""
    device = jax.devices()[0]
    return getattr(device, "device_kind", str(device))


def matmul_peaks(size: int, repeats: int) -> dict:
    """Measured matmul TFLOP/s of XLA on the default device, float32 and bfloat16."""
    peaks = {}
    for dtype in DTYPES:
        a = jnp.ones((size, size), dtype)
        f = jax.jit(lambda a: a @ a)
        peaks[dtype] = common.gflops(lambda: f(a).block_until_ready(), 2.0 * size**3,
                                     repeats) / 1e3
    return peaks


def run(smoke: bool = False, budget_s: float = 450.0, max_repeats: int = 5,
        out_dir: pathlib.Path = RESULTS, start: float | None = None) -> dict:
    """Times everything within ``budget_s`` and writes ``gpu.{json,md}`` (``smoke.*`` with ``smoke``)."""
    start = time.monotonic() if start is None else start
    jobs = plan(SMOKE_POINTS, (), DTYPES) if smoke else plan()
    groups = len(jobs) * len(CELLS) * len(MODES)
    on_gpu = jax.default_backend() == "gpu"  # JAX now holds 75% of the GPU's memory
    if not on_gpu and not smoke:
        raise SystemExit(f"no GPU: JAX's default backend is {jax.default_backend()!r} "
                         "(use --smoke for a CPU check of the script)")
    torch_s = TORCH_SHARE * budget_s  # PyTorch's process runs in the rest, before JAX's timings
    torch_report = run_torch_process([[d, list(p)] for d, p in jobs], smoke, max_repeats,
                                     torch_s, group_s=0.5 * torch_s / groups)
    peaks = matmul_peaks(256 if smoke else 8192, 3 if smoke else 10)
    deadline = start + budget_s - MARGIN_S
    rows, skipped = list(torch_report["rows"]), list(torch_report["skipped"])
    done = 0
    for dtype, point in jobs:
        for kind in CELLS:
            for mode in MODES:
                left = deadline - time.monotonic()
                where = {"cell": kind, "mode": mode, "dtype": dtype, "point": list(point)}
                if left <= 0:
                    skipped.append({**where, "impl": "jax (all)", "reason": "time budget"})
                    continue
                group_rows, group_skipped = run_jax_group(
                    kind, point, mode, dtype, on_gpu, smoke, max_repeats,
                    seconds=0.5 * left / max(groups - done, 1), threads=os.cpu_count() or 1)
                done += 1
                rows += group_rows
                skipped += [{**where, "impl": k, "reason": v} for k, v in group_skipped.items()]
    command = "python -m benchmarks.gpu" + (" --smoke" if smoke else "")
    results = {
        **common.provenance(command),
        "gpu_model": gpu_model() if on_gpu else None,
        "repeats": max_repeats, "budget_s": budget_s,
        "wall_s": time.monotonic() - start,
        "matmul_peak_tflops": peaks,
        "torch": torch_report.get("versions", {}),
        "rows": rows, "skipped": skipped,
    }
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "smoke" if smoke else "gpu"
    common.write_results(out_dir, name, results, markdown(results))
    return results


def table(results: dict, mode: str, dtype: str, ours: str = "rnnlab_fused") -> list[dict]:
    """Per (cell, point): ``{impl: impl time / ours time}`` (>1: ours faster) and the fastest impl."""
    by_key: dict[tuple, dict] = {}
    for row in results["rows"]:
        if row["mode"] == mode and row["dtype"] == dtype:
            key = (row["cell"], (row["B"], row["T"], row["D"], row["H"]))
            by_key.setdefault(key, {})[row["impl"]] = row
    out = []
    for (cell, point), impls in by_key.items():
        fastest = min(impls, key=lambda k: impls[k]["median_s"])
        base = impls.get(ours)
        entry = {"cell": cell, "point": point, "fastest": fastest,
                 "fastest_ms": 1e3 * impls[fastest]["median_s"],
                 "ours_gflops": base["gflops"] if base else None}
        if base:
            entry.update({k: r["median_s"] / base["median_s"] for k, r in impls.items()
                          if k != ours})
        out.append(entry)
    return out


def markdown(results: dict) -> str:
    """Ratio tables per (dtype, mode), the fastest per row, what was skipped, every timing."""
    peaks = ", ".join(f"{k} {v:.2f}" for k, v in results["matmul_peak_tflops"].items())
    lines = common.header(results, "GPU speed") + [
        f"GPU: {results.get('gpu_model') or 'none (smoke run)'}. "
        f"Measured matmul peak (TFLOP/s): {peaks}; "
        f"PyTorch: {results['torch'] or 'not run'}; wall time {results['wall_s']:.0f} s "
        f"(budget {results['budget_s']:.0f} s).",
        "FLOPs: matrix products only; fwd = 2*B*T*(D+H)*G*H, fwd+bwd = 3x fwd. "
        "dtype: of the matrix products (params and carry float32).", "",
    ]
    for dtype in DTYPES:
        for mode in MODES:
            rows = table(results, mode, dtype)
            if not rows:
                continue
            peers = sorted({k for r in rows for k in r} - {"cell", "point", "fastest",
                                                            "fastest_ms", "ours_gflops"})
            lines += [f"## {dtype}, {mode}: time / rnnlab_fused time (>1: rnnlab_fused faster)",
                      "", "| cell | B, T, D, H | " + " | ".join(peers)
                      + " | fastest (ms) | rnnlab_fused GFLOP/s |",
                      "|---" * (len(peers) + 4) + "|"]
            for r in rows:
                values = " | ".join(f"{r[p]:.2f}" if p in r else "-" for p in peers)
                gflops = f"{r['ours_gflops']:.0f}" if r["ours_gflops"] else "-"
                lines.append(f"| {r['cell']} | {r['point']} | {values} | {r['fastest']} "
                             f"({r['fastest_ms']:.2f}) | {gflops} |")
            lines.append("")
    checks = [r for r in results["rows"]
              if r.get("max_abs_diff_vs_fused") is not None and r["impl"] != "rnnlab_fused"]
    if checks:
        worst: dict[tuple, float] = {}
        for r in checks:
            key = (r["impl"], r["dtype"])
            worst[key] = max(worst.get(key, 0.0), r["max_abs_diff_vs_fused"])
        lines += ["## Forward outputs against rnnlab_fused (same params): largest |difference|",
                  "", "| impl | dtype | max abs diff |", "|---|---|---|"]
        lines += [f"| {impl} | {dtype} | {value:.2e} |" for (impl, dtype), value in
                  sorted(worst.items())]
        lines.append("")
    if results["skipped"]:
        reasons: dict[tuple, int] = {}
        for s in results["skipped"]:
            key = (s["impl"], s["reason"])
            reasons[key] = reasons.get(key, 0) + 1
        lines += ["## Skipped", "", "| impl | reason | times |", "|---|---|---|"]
        lines += [f"| {impl} | {reason.replace('|', '/')} | {n} |"
                  for (impl, reason), n in sorted(reasons.items())]
        lines.append("")
    lines += ["## All timings", "", "| cell | mode | dtype | B, T, D, H | impl | median ms "
              "| min-max ms | repeats | tokens/s | GFLOP/s | compile s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        compile_s = f"{r['compile_s']:.1f}" if r.get("compile_s") is not None else "-"
        lines.append(
            f"| {r['cell']} | {r['mode']} | {r['dtype']} | {r['B']}, {r['T']}, {r['D']}, "
            f"{r['H']} | {r['impl']} | {1e3 * r['median_s']:.2f} | {1e3 * r['min_s']:.2f}-"
            f"{1e3 * r['max_s']:.2f} | {r['repeats']} | {r['tokens_per_s']:.0f} "
            f"| {r['gflops']:.1f} | {compile_s} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    start = time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes on any platform, written as smoke.* (not for commit)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for everything (default 450; smoke 120)")
    parser.add_argument("--repeats", type=int, default=None, help="most rounds (default 5)")
    parser.add_argument("--out", default=None,
                        help="results folder (default benchmarks/results; smoke: a temp folder)")
    parser.add_argument("--torch-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.torch_worker:
        torch_worker(json.loads(pathlib.Path(args.torch_worker).read_text()))
        return
    out = args.out or (tempfile.mkdtemp(prefix="rnnlab_gpu_smoke_") if args.smoke else RESULTS)
    results = run(args.smoke, args.budget or (120.0 if args.smoke else 450.0),
                  args.repeats or (2 if args.smoke else 5), pathlib.Path(out), start)
    sys.stdout.write(markdown(results))
    sys.stdout.write(f"\nwritten to {out}\n")


if __name__ == "__main__":
    main()
