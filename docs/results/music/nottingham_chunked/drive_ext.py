"""Part 1 driver: Nottingham, chunk 100, Adam; per cell 3 rates on seed 0, pick by valid NLL, seeds 1,2."""
import json, os, subprocess, sys, time
ROOT = "/tmp/wt25"
OUT = f"{ROOT}/runs/nott"
LRS = ["1e-3", "3e-3", "1e-2"]
CELLS = sys.argv[1:] or ["gru", "tanh", "lstm"]

def cfg(cell, lr, seed):
    return (f"configs/music.py:dataset=nottingham,cell={cell},data.chunk_len=100,"
            f"data.path=/work/shared/data/polyphonic,optim.learning_rate={lr},seed={seed},train.num_steps=60000")

def run(cell, lr, seed):
    wd = f"{OUT}/{cell}-lr{lr}-s{seed}"
    if os.path.exists(f"{wd}/results.json"):
        r = json.load(open(f"{wd}/results.json"))
        if r.get("stopped_early") or r["step"] >= 60000:
            return r
    cmd = ["taskset", "-c", "1", sys.executable, "launch.py", f"--config={cfg(cell, lr, seed)}", f"--workdir={wd}"]
    t = time.time()
    with open(f"{wd}.log", "a") as log:
        subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    wall = time.time() - t
    with open(f"{wd}.wall", "a") as f:
        f.write(f"{wall:.1f}\n")
    r = json.load(open(f"{wd}/results.json"))
    print(cell, lr, seed, "step", r["step"], "best", r["best_step"], "early", r["stopped_early"],
          "valid", round(r["valid"]["nll"], 4), "wall", round(wall), flush=True)
    return r


import json as _j
EXT = {"tanh": "3e-4", "gru": "3e-2"}
extra = {}
for cell, lr in EXT.items():
    r = run(cell, lr, 0)
    old = open(f"{OUT}/{cell}-chosen.txt").read().strip()
    grid = ["1e-3", "3e-3", "1e-2", lr]
    res = {g: _j.load(open(f"{OUT}/{cell}-lr{g}-s0/results.json"))["valid"]["nll"] for g in grid}
    best = min(grid, key=res.get)
    extra[cell] = {"added_rate": lr, "grid": grid, "valid_nll_seed0": res, "chosen_before": old, "chosen_after": best}
    print(cell, "extended grid", res, "chosen", best, flush=True)
    _j.dump(extra, open(f"{OUT}/extra_grid.json", "w"), indent=1)
    if best != old:
        open(f"{OUT}/{cell}-chosen.txt", "w").write(best + "\n")
        for seed in (1, 2):
            run(cell, best, seed)
print("ext done", flush=True)
