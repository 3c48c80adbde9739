"""saturation.py of docs/results/music/lstm_stall, reading each run's cell options from its config.json.

    python saturation2.py DATA_FOLDER RUN [RUN ...]
"""
import json, os, sys
import numpy as np
import rnnlab
from rnnlab.data.music import density_example, read_piano_rolls
from rnnlab.training import checkpoint


def main(folder, *runs):
    rolls = read_piano_rolls(os.path.join(folder, "MuseData.mat"))["valid"]
    xs = density_example(rolls[0])["inputs"].astype(np.float32)[:1500]
    out = {}
    for run in runs:
        m = json.load(open(os.path.join(run, "config.json")))["model"]
        opts = {"peephole": m["peephole"], "forget_bias": m["forget_bias"]}
        if m.get("cell_clip"):
            opts["cell_clip"] = m["cell_clip"]
        checkpoints = checkpoint.Checkpointer(os.path.join(run, "checkpoints"))
        step = checkpoints.steps()[-1]
        layer = checkpoints._manager.restore(step)["arrays"]["state"]["params"]["encoder"]["rnn"]["layer_0"]
        params = {k: np.asarray(v) for k, v in layer.items()}
        cell = rnnlab.get_cell("lstm", params["w_h"].shape[0], **opts)
        carry, ys = rnnlab.unroll(cell, params, xs)
        gates = rnnlab.gate_trace(cell, params, xs, len(xs))
        sat = {g: round(float(np.mean((np.asarray(v) < 0.02) | (np.asarray(v) > 0.98))), 2)
               for g, v in gates.items() if g != "candidate"}
        peeps = {k: round(float(np.abs(v).max()), 3) for k, v in params.items() if k.startswith("p_")}
        row = {"step": step, "options": opts, "peephole_max_abs": peeps,
               "max_abs_c_after_1500_frames": round(float(np.abs(np.asarray(carry.c)).max()), 2),
               "saturated_fraction": sat, "h_std_over_time": round(float(np.asarray(ys).std(0).mean()), 4)}
        print(run, row, flush=True)
        out[os.path.basename(run.rstrip("/"))] = row
        checkpoints.close()
    json.dump(out, open(os.environ.get("SAT_OUT", "/dev/null"), "w"), indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
