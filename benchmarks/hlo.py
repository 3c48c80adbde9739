"""What XLA makes of the loops: op counts in every while-loop body of the gradient step.

    python -m benchmarks.hlo      # LSTM, B=32, T=100, D=H=128, every backend

Each op in a loop body is one kernel launch per step on CPU; at small B*H the
launches, not the FLOPs, set the time per step (see docs/performance.md).
"""

from __future__ import annotations

import re
import sys

import jax
import jax.numpy as jnp

import rnnlab
from rnnlab.backends import Backend


def loop_stats(backend: Backend, B: int = 32, T: int = 100, D: int = 128, H: int = 128,
               masked: bool = False) -> list:
    """``[{body, fusions, transposes, dynamic_update_slices, ...}]`` per while loop.

    ``masked``: with lengths (a padded batch: the loops select between the new and
    the old carry per step); else whole sequences, ``lengths=None``.
    """
    cell = rnnlab.lstm(H)
    params = cell.init(jax.random.PRNGKey(0), D)
    xs = jnp.ones((B, T, D))
    lengths = jnp.full((B,), T, jnp.int32) if masked else None

    def loss(p, x):
        return jnp.sum(rnnlab.unroll_batch(cell, p, x, lengths, backend=backend)[1])

    text = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(params, xs).compile().as_text()
    computations = re.split(r"\n(?=\S)", text)
    stats = []
    for body in re.findall(r"while\(.*?body=%?([\w.\-]+)", text):
        found = [c for c in computations if re.match(rf"%?{re.escape(body)} ", c)]
        if found:
            c = found[0]
            stats.append({"body": body, "ops": c.count(" = "), "fusions": c.count(" fusion("),
                          "selects": c.count("select("),
                          "transposes": c.count("transpose("), "copies": c.count(" copy("),
                          "dynamic_update_slices": c.count("dynamic-update-slice")})
    return stats


def main() -> None:
    for backend in (Backend.REFERENCE, Backend.FUSED):
        for masked in (False, True):
            for s in loop_stats(backend, masked=masked):
                sys.stdout.write(f"{backend.value:9s} {'lengths' if masked else 'whole  '} {s}\n")


if __name__ == "__main__":
    main()
