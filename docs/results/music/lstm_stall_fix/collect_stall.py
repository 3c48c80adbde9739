"""Per-run JSON of the peephole-LSTM stall fixes (runs/stall2/*) into docs/results/music/lstm_stall_fix/."""
import json, os, sys
SRC = "runs/stall2"  # run from the checkout's root
DST = sys.argv[1]
os.makedirs(DST, exist_ok=True)
CHANGE = {"baseline": "nothing (the stalled peephole LSTM; the fix's options at their defaults)",
          "clip10": "model.cell_clip=10.0", "clip3": "model.cell_clip=3.0",
          "plr0.1": "optim.peephole_lr_scale=0.1", "plr0.01": "optim.peephole_lr_scale=0.01",
          "clip3-full": "model.cell_clip=3.0, trained long (cap 60,000, then resumed to a cap of 150,000)",
          "plr0.01-full": "optim.peephole_lr_scale=0.01, trained long (cap 60,000)"}
NOTES = {
    "clip3-full": "first run with train.num_steps=60000 (it reached the cap, best step 59000, still improving), then the same "
                  "workdir resumed with train.num_steps=150000; wall_seconds sums both processes",
    "plr0.01-full": "wall time from results.json (the process that timed it from outside was stopped)",
}
sat = json.load(open(f"{SRC}/saturation.json")) if os.path.exists(f"{SRC}/saturation.json") else {}
for name, change in CHANGE.items():
    wd = f"{SRC}/{name}"
    if not os.path.exists(f"{wd}/results.json"):
        continue
    r = json.load(open(f"{wd}/results.json"))
    c = json.load(open(f"{wd}/config.json"))
    cmds = ["PYTHONPATH=. " + l.strip().replace(os.path.abspath(".") + "/", "") for l in open(f"{wd}.cmd") if l.strip()]
    walls = [float(x) for x in open(f"{wd}.wall").read().split()] if os.path.exists(f"{wd}.wall") else [round(r["wall_time_sec"], 1)]
    curve, seen = [], set()
    for line in open(f"{wd}/metrics.jsonl"):
        m = json.loads(line)
        if "valid/nll" in m and m["step"] not in seen:
            seen.add(m["step"]); curve.append([m["step"], round(m["valid/nll"], 5)])
    out = {"corpus": "musedata", "cell": "lstm", "hidden_size": c["model"]["hidden_size"], "peephole": c["model"]["peephole"],
           "change": change, "cell_clip": c["model"].get("cell_clip"), "peephole_lr_scale": c["optim"].get("peephole_lr_scale"),
           "learning_rate": c["optim"]["learning_rate"], "optimizer": c["optim"]["name"], "seed": c["train"]["seed"],
           "chunk_len": c["data"]["chunk_len"], "num_params": r["num_params"],
           "valid_nll": r["valid"]["nll"], "test_nll": r["test"]["nll"], "train_nll": r["train"]["nll"],
           "best_step": r["best_step"], "stop_step": r["step"], "stopped_early": r["stopped_early"],
           "step_cap": c["train"]["num_steps"], "eval_every": c["train"]["eval_every"], "patience_evals": c["train"]["patience"],
           "wall_seconds": round(sum(walls), 1), "wall_seconds_per_process": walls, "results_wall_time_sec": round(r["wall_time_sec"], 1),
           "commands": cmds, "note": NOTES.get(name), "valid_curve": curve, "saturation": sat.get(name),
           "code": "the diff in README.md (rnnlab/cells/lstm.py cell_clip, rnnlab/training/optim.py peephole_lr_scale) on 99adca4",
           "machine": "shared 2-core CPU, one core (taskset -c 1), 2026-12-06"}
    json.dump(out, open(f"{DST}/musedata-lstm-c100-{name}.json", "w"), indent=1)
    print(name, [v for s, v in curve][-3:], "valid %.3f test %.3f train %.3f" % (out["valid_nll"], out["test_nll"], out["train_nll"]),
          "best", out["best_step"], "stop", out["stop_step"], "early", out["stopped_early"], "wall", out["wall_seconds"])
