"""Per-seed JSON of the Nottingham chunked runs (runs/nott/*) into docs/results/music/nottingham_chunked/."""
import glob, json, os, re, sys
SRC = "runs/nott"  # run from the checkout's root
DST = sys.argv[1]
HIDDEN = {"tanh": 100, "gru": 46, "lstm": 36}
PAPER = {"tanh": {"train": 3.22, "test": 3.13}, "gru": {"train": 2.79, "test": 3.23}, "lstm": {"train": 3.08, "test": 3.20}}
GRID = ["1e-3", "3e-3", "1e-2"]
extra = json.load(open(f"{SRC}/extra_grid.json")) if os.path.exists(f"{SRC}/extra_grid.json") else {}
os.makedirs(DST, exist_ok=True)
rows = []
for wd in sorted(glob.glob(f"{SRC}/*-lr*-s*")):
    if not os.path.isdir(wd) or not os.path.exists(f"{wd}/results.json"):
        continue
    name = os.path.basename(wd)
    cell, lr, seed = re.match(r"(\w+)-lr([0-9e.-]+)-s(\d)", name).groups()
    r = json.load(open(f"{wd}/results.json"))
    cfgd = json.load(open(f"{wd}/config.json"))
    variant = (f"dataset=nottingham,cell={cell},data.chunk_len=100,data.path=../shared/data/polyphonic,"
               f"optim.learning_rate={lr},seed={seed},train.num_steps=60000")
    cmd = f"PYTHONPATH=. taskset -c 1 python launch.py --config=configs/music.py:{variant} --workdir=runs/nott/{name}"
    walls = [float(x) for x in open(f"{wd}.wall").read().split()] if os.path.exists(f"{wd}.wall") else []
    note = None
    if name == "gru-lr1e-3-s0":  # the timing probe: first run at the config's 30,000-step cap, then extended
        walls = [249.9] + walls
        note = ("trained in two processes: first with the config's own cap (train.num_steps=30000; it reached "
                "step 30000, best 27000, not stopped early), then the same workdir resumed with "
                "train.num_steps=60000 (steps 30000-33000, where patience ended it). wall_seconds sums both "
                "processes (249.9 s + the second).")
    if name in ("tanh-lr3e-4-s0", "gru-lr3e-2-s0"):
        note = ("grid extension (drive_ext.py): the seed-0 choice sat at the 3-rate grid's edge, so one more rate "
                "beyond it was run; it lost, the choice stands. Run after the lstm_stall_fix diff was applied to the "
                "worktree: its config.json also has model.cell_clip=0.0 and optim.peephole_lr_scale=1.0, no-ops here.")
    if name == "lstm-lr1e-3-s1":
        note = ("patience ran out at step 60000, which is also the step cap: best step 54000, then 6 evaluations "
                "without improvement (stopped_early is true), but the cap would have ended it at the same step.")
    curve, seen = [], set()
    for line in open(f"{wd}/metrics.jsonl"):
        m = json.loads(line)
        if "valid/nll" in m and m["step"] not in seen:
            seen.add(m["step"]); curve.append([m["step"], round(m["valid/nll"], 5)])
    chosen_lr = open(f"{SRC}/{cell}-chosen.txt").read().strip() if os.path.exists(f"{SRC}/{cell}-chosen.txt") else None
    role = ("lr grid, seed 0" if seed == "0" else "seed at the chosen rate")
    out = {
        "corpus": "nottingham", "cell": cell, "hidden_size": HIDDEN[cell], "num_params": r["num_params"],
        "learning_rate": float(lr), "seed": int(seed), "role": role,
        "chosen_learning_rate": float(chosen_lr) if chosen_lr else None,
        "at_chosen_rate": chosen_lr == lr,
        "valid_nll": r["valid"]["nll"], "test_nll": r["test"]["nll"], "train_nll": r["train"]["nll"],
        "best_step": r["best_step"], "stop_step": r["step"], "stopped_early": r["stopped_early"],
        "step_cap": cfgd["train"]["num_steps"], "patience_evals": cfgd["train"]["patience"],
        "eval_every": cfgd["train"]["eval_every"],
        "wall_seconds": round(sum(walls), 1), "wall_seconds_per_process": walls,
        "results_wall_time_sec": round(r["wall_time_sec"], 1),
        "optimizer": cfgd["optim"], "chunk_len": cfgd["data"]["chunk_len"], "batch_size": cfgd["data"]["batch_size"],
        "config_variant": variant, "command": cmd, "note": note,
        "valid_curve": curve, "paper_chung2014": PAPER[cell],
        "machine": "shared 2-core CPU, one core (taskset -c 1), 2026-12-06",
    }
    json.dump(out, open(f"{DST}/{name}.json", "w"), indent=1)
    rows.append(out)
for r in rows:
    print(r["cell"], r["learning_rate"], r["seed"], "valid %.3f test %.3f train %.3f" % (r["valid_nll"], r["test_nll"], r["train_nll"]),
          "best", r["best_step"], "stop", r["stop_step"], "early", r["stopped_early"], "wall", r["wall_seconds"])
