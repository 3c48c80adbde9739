"""Backend.FUSED with the hand-written backward step vs the generic one vs Flax, fwd+bwd.

    python -m benchmarks.hand_backward                 # LSTM and GRU at two grid points
    python -m benchmarks.hand_backward --repeats 9 --cells lstm

The generic backward (the definition without its ``backward``) runs ``jax.vjp`` of the
cell's step inside the backward loop; the hand-written one (the default)
saves the gate activations in the forward pass and runs the step's
backward written out, with all gate cotangents in one ``[B, G*H]`` array and
one ``[B, G*H] x [G*H, H]`` product for ``dh`` (see :mod:`rnnlab.backends.fused`).
Timed round-robin as in :mod:`benchmarks.speed` (gradient of the sum of the
outputs w.r.t. params and inputs); prints medians in ms and the ratios.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks import common, speed

POINTS = ((32, 100, 128, 128), (64, 200, 256, 256))


def measure(kind: str, point: tuple[int, int, int, int], repeats: int) -> dict:
    """``{impl: median ms}`` for the hand-written and generic FUSED and Flax at ``point``."""
    B, T, D, H = point
    impls = {"hand": speed.rnnlab_impls(kind, B, T, D, H, "fwdbwd")["rnnlab_fused"]}
    impls["generic"] = speed.rnnlab_impls(kind, B, T, D, H, "fwdbwd",
                                          hand_backward=False)["rnnlab_fused"]
    impls.update(speed.flax_impl(kind, B, T, D, H, "fwdbwd"))
    times = common.time_round_robin(impls, repeats)
    return {name: 1e3 * float(np.median(ts)) for name, ts in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cells", default="lstm,gru")
    args = parser.parse_args(argv)
    for kind in args.cells.split(","):
        for point in POINTS:
            ms = measure(kind, point, args.repeats)
            print(f"{kind} {point}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items())
                  + f"; generic/hand {ms['generic'] / ms['hand']:.2f}, "
                  f"flax/hand {ms['flax'] / ms['hand']:.2f}", flush=True)


if __name__ == "__main__":
    main()
