"""What the benchmarks share: the cells they time, compiled calls, round-robin timing and results files.

Every benchmark writes ``benchmarks/results/NAME.json`` (with :func:`provenance`: the command, date,
machine and versions) and ``NAME.md`` (opening with :func:`header`) through :func:`write_results`.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

import rnnlab

CELLS = ("lstm", "gru")
RESULTS = pathlib.Path(__file__).parent / "results"


def rnnlab_cell(kind: str, H: int) -> rnnlab.Cell:
    """The LSTM or the GRU every peer computes (reset gate after the recurrent product)."""
    return rnnlab.lstm(H) if kind == "lstm" else rnnlab.gru(H, reset_after=True)


def jax_callable(apply: Callable, params, xs, mode: str) -> Callable[[], None]:
    """Compiles ``apply(params, xs) -> ys`` (or its gradient) and returns a blocking call."""
    if mode == "fwd":
        fn = jax.jit(apply)
    else:
        fn = jax.jit(jax.grad(lambda p, x: jnp.sum(apply(p, x)), argnums=(0, 1)))
    return lambda: jax.block_until_ready(fn(params, xs))


def median_seconds(call: Callable, repeats: int) -> float:
    """Seconds per call of ``call``: the median of ``repeats`` timed calls after one warm-up."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def gflops(call: Callable, num_flops: float, repeats: int) -> float:
    """GFLOP/s of ``call`` (``num_flops`` per call), from :func:`median_seconds`."""
    return num_flops / median_seconds(call, repeats) / 1e9


def time_round_robin(impls: dict, repeats: int, seed: int = 0) -> dict:
    """``{name: [seconds per repeat]}``: two warm-up calls each, then ``repeats`` rounds.

    Each round runs every implementation once, in an order shuffled anew per round
    (seeded). PyTorch's OpenMP threads spin for a while after each parallel region
    and take CPU from whichever call comes next. In a fixed order the same
    implementation always follows PyTorch: it measured 10-15% slower than itself
    timed first (LSTM (32, 100, 128, 128), fwd and fwd+bwd, 2026-12-01). Shuffled,
    each implementation follows PyTorch in about one round in n, which the
    median leaves out. (An untimed pause after each call stops the spinning, but
    it made every implementation slower, PyTorch 2.6x, by waking cold threads.)
    """
    for call in impls.values():
        call()
        call()
    times = {name: [] for name in impls}
    names = list(impls)
    rng = np.random.default_rng(seed)
    for _ in range(repeats):
        for name in rng.permutation(names):
            start = time.perf_counter()
            impls[name]()
            times[name].append(time.perf_counter() - start)
    return times


def write_results(out_dir, name: str, results: dict, markdown_text: str) -> None:
    """Writes ``out_dir/NAME.json`` (the results) and ``out_dir/NAME.md`` (their tables)."""
    out_dir = pathlib.Path(out_dir)
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=1))
    (out_dir / f"{name}.md").write_text(markdown_text)


def provenance(command: str) -> dict:
    """What every results file records: the command, the date, the machine (load now) and versions."""
    return {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {
            "platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "device": str(jax.devices()[0]),
            "load_average_at_end": os.getloadavg(),
        },
        "versions": versions(),
    }


def header(results: dict, title: str) -> list[str]:
    """The Markdown heading and provenance line of a results file made with :func:`provenance`."""
    return [
        f"# {title}, {results['machine']['device']} ({results['date']})", "",
        f"Command: `{results['command']}`; repeats: {results['repeats']} (round-robin); "
        f"versions: {results['versions']}; load average at the end: "
        f"{tuple(round(x, 2) for x in results['machine']['load_average_at_end'])}.", "",
    ]


def versions() -> dict:
    import flax

    versions = {"python": sys.version.split()[0], "jax": jax.__version__,
                "flax": flax.__version__, "rnnlab": rnnlab.__version__}
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:
        pass
    return versions
