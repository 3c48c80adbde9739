"""Cell-state size and gate saturation of a trained music LSTM on one validation piece.

    python studies/music/lstm_stall.py DATA_FOLDER RUN:PEEPHOLE [RUN:PEEPHOLE ...]
    # e.g. ../shared/data/polyphonic runs/stall/baseline:1 runs/stall/no-peephole:0

Prints per run: the largest peephole weights, max |c| after the first 1,500 frames of
MuseData's first validation piece, the fraction of gate values below 0.02 or above 0.98, and the
standard deviation of h over time (mean over units).
"""

import os
import sys

import numpy as np

import rnnlab
from rnnlab.data.music import density_example, read_piano_rolls
from rnnlab.training import checkpoint


def main(folder, *runs):
    rolls = read_piano_rolls(os.path.join(folder, "MuseData.mat"))["valid"]
    xs = density_example(rolls[0])["inputs"].astype(np.float32)[:1500]
    for spec in runs:
        run, peephole = spec.rsplit(":", 1)
        checkpoints = checkpoint.Checkpointer(os.path.join(run, "checkpoints"))
        step = checkpoints.steps()[-1]
        layer = checkpoints._manager.restore(step)["arrays"]["state"]["params"]["encoder"]["rnn"]["layer_0"]
        params = {k: np.asarray(v) for k, v in layer.items()}
        cell = rnnlab.get_cell("lstm", params["w_h"].shape[0], peephole=bool(int(peephole)))
        carry, ys = rnnlab.unroll(cell, params, xs)
        gates = rnnlab.gate_trace(cell, params, xs, len(xs))
        saturated = {g: round(float(np.mean((np.asarray(v) < 0.02) | (np.asarray(v) > 0.98))), 2)
                     for g, v in gates.items() if g != "candidate"}
        peeps = {k: round(float(np.abs(v).max()), 2) for k, v in params.items() if k.startswith("p_")}
        print(run, "step", step, "peepholes", peeps, "max |c|", round(float(np.abs(np.asarray(carry.c)).max()), 1),
              "saturated", saturated, "h std over time", round(float(np.asarray(ys).std(0).mean()), 4))
        checkpoints.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
