"""Peak memory of forward+backward, with and without rematerialisation.

    python -m benchmarks.memory            # -> benchmarks/results/memory_<device>.md / .json

For T in {100, 1000, 10000}, H = D = 256, B = 16, an LSTM and a GRU, every
backend, and ``remat`` in {None, K} (K = round(sqrt(T)), the choice that
minimises ``T/K + K``): the memory XLA plans for the compiled gradient step
(``Compiled.memory_analysis()``: temporaries plus arguments and outputs).
This is the compiler's own buffer plan, so it is exact and does not need
running 10000 steps; it excludes only the Python process itself.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
import time

import jax
import jax.numpy as jnp

import rnnlab
from benchmarks import common
from rnnlab.backends import Backend

RESULTS = pathlib.Path(__file__).parent / "results"
STEPS = (100, 1000, 10000)


def planned_bytes(kind: str, backend: Backend, remat, B: int, T: int, D: int, H: int) -> dict:
    """XLA's buffer plan (bytes) for ``grad(sum(unroll_batch(...)))``."""
    cell = rnnlab.lstm(H) if kind == "lstm" else rnnlab.gru(H, reset_after=True)
    params = jax.eval_shape(lambda: cell.init(jax.random.PRNGKey(0), D))
    xs = jax.ShapeDtypeStruct((B, T, D), jnp.float32)

    def loss(p, x):
        return jnp.sum(rnnlab.unroll_batch(cell, p, x, backend=backend, remat=remat)[1])

    compiled = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(params, xs).compile()
    stats = compiled.memory_analysis()
    temp = int(stats.temp_size_in_bytes)
    io = int(stats.argument_size_in_bytes + stats.output_size_in_bytes)
    return {"temp_bytes": temp, "args_and_outputs_bytes": io, "total_bytes": temp + io}


def run(steps=STEPS, B: int = 16, H: int = 256, out_dir: pathlib.Path = RESULTS) -> dict:
    """Measures every (cell, T, backend, remat) and writes ``memory_<device>.{json,md}``."""
    rows = []
    for kind in ("lstm", "gru"):
        for T in steps:
            for backend in Backend:
                for remat in (None, max(1, round(math.sqrt(T)))):
                    row = {"cell": kind, "T": T, "B": B, "H": H, "backend": backend.value,
                           "remat": remat}
                    row.update(planned_bytes(kind, backend, remat, B, T, H, H))
                    rows.append(row)
    results = {"command": "python -m benchmarks.memory",
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "device": str(jax.devices()[0]), "jax": jax.__version__, "rows": rows}
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"memory_{jax.default_backend()}"
    common.write_results(out_dir, name, results, markdown(results))
    return results


def markdown(results: dict) -> str:
    lines = [f"# Peak memory of forward+backward ({results['device']}, {results['date']})", "",
             f"Command: `{results['command']}`; jax {results['jax']}. XLA's planned buffers "
             "(temporaries + arguments + outputs), MiB.", "",
             "| cell | T | backend | remat | temp MiB | total MiB |", "|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['cell']} | {r['T']} | {r['backend']} | {r['remat']} "
                     f"| {r['temp_bytes'] / 2**20:.1f} | {r['total_bytes'] / 2**20:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    sys.stdout.write(markdown(run(out_dir=pathlib.Path(args.out))))


if __name__ == "__main__":
    main()
