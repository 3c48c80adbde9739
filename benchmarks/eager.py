"""``rnnlab.unroll_batch`` called eagerly vs under ``jax.jit``: what a loop in a notebook pays per call.

    python -m benchmarks.eager                # 20 rounds, writes benchmarks/results/eager_cpu.{json,md}
    python -m benchmarks.eager --repeats=3    # a quick look

Why it exists: called eagerly (no ``jax.jit`` around it), ``unroll_batch`` builds its scan anew at
every call, so JAX traces the step function again each time. Under ``jax.jit`` the first call traces
and compiles once, and later calls with the same shapes run the compiled program. This benchmark
measures both, at the README's example size, for each kind of backend.

Per case (cell, backend), the two calls are timed round-robin (:func:`common.time_round_robin`,
the order shuffled per round) after their first calls, which are timed on their own. Reported: the
first call, the median of the later calls, and the ratio of the eager median to the jitted one.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import rnnlab
from benchmarks import common

CASES = (("lstm", "fused"), ("gru", "fused"), ("lstm", "reference"), ("min_gru", "parallel"))
B, T, D, H = 4, 10, 8, 32  # the README's example: xs [B, T, D], hidden size H
LENGTHS = (10, 7, 3, 0)


def calls(kind: str, backend: str) -> dict:
    """``{"eager": call, "jit": call}``: blocking calls of ``unroll_batch`` on xs ``f32[B, T, D]``."""
    cell = rnnlab.get_cell(kind, H)
    params = cell.init(jax.random.key(0), D)
    xs = jax.random.normal(jax.random.key(1), (B, T, D))
    lengths = jnp.array(LENGTHS)

    def run(p, x):
        return rnnlab.unroll_batch(cell, p, x, lengths, backend=backend)

    jitted = jax.jit(run)
    return {"eager": lambda: jax.block_until_ready(run(params, xs)),
            "jit": lambda: jax.block_until_ready(jitted(params, xs))}


def measure(repeats: int, cases=CASES) -> list[dict]:
    """Per case: seconds of the first call and the median of ``repeats`` later calls, eager and jitted."""
    rows = []
    for kind, backend in cases:
        impls = calls(kind, backend)
        first = {}
        for name, call in impls.items():
            start = time.perf_counter()
            call()
            first[name] = time.perf_counter() - start
        times = common.time_round_robin(impls, repeats)
        rows.append({"cell": kind, "backend": backend, "first_s": first,
                     "median_s": {name: float(np.median(t)) for name, t in times.items()}, "times_s": times})
    return rows


def table(results: dict) -> str:
    """The Markdown table of the results (docs/performance.md shows it; a test keeps the two equal)."""
    lines = ["| cell | backend | first call, eager (s) | first call, jit (s) | later calls, eager (ms) | "
             "later calls, jit (ms) | eager / jit |", "|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        first, median = row["first_s"], row["median_s"]
        lines.append(f"| {row['cell']} | {row['backend']} | {first['eager']:.2f} | {first['jit']:.2f} | "
                     f"{1e3 * median['eager']:.1f} | {1e3 * median['jit']:.3f} | "
                     f"{median['eager'] / median['jit']:.0f}x |")
    return "\n".join(lines) + "\n"


def markdown(results: dict) -> str:
    lines = common.header(results, "unroll_batch eagerly vs under jax.jit")
    lines += [f"xs [B, T, D] = [{B}, {T}, {D}], H = {H}, lengths {list(LENGTHS)}; medians of "
              f"{results['repeats']} later calls each.", ""]
    return "\n".join(lines) + "\n" + table(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    results = {**common.provenance(" ".join(["python -m benchmarks.eager", *sys.argv[1:]])),
               "repeats": args.repeats, "rows": measure(args.repeats)}
    name = f"eager_{jax.default_backend()}"
    common.write_results(common.RESULTS, name, results, markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
