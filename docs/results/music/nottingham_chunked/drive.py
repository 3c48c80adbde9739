"""Part 1 driver: Nottingham, chunk 100, Adam; per cell 3 rates on seed 0, pick by valid NLL, seeds 1,2."""
import json, os, subprocess, sys, time
ROOT = "."  # run from the checkout's root
OUT = f"{ROOT}/runs/nott"
LRS = ["1e-3", "3e-3", "1e-2"]
CELLS = sys.argv[1:] or ["gru", "tanh", "lstm"]

def cfg(cell, lr, seed):
    return (f"configs/music.py:dataset=nottingham,cell={cell},data.chunk_len=100,"
            f"data.path=../shared/data/polyphonic,optim.learning_rate={lr},seed={seed},train.num_steps=60000")

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


if __name__ == "__main__":
    for cell in CELLS:
        res = {lr: run(cell, lr, 0) for lr in LRS}
        best = min(LRS, key=lambda lr: res[lr]["valid"]["nll"])
        with open(f"{OUT}/{cell}-chosen.txt", "w") as f:
            f.write(best + "\n")
        print(cell, "chosen lr", best, {lr: round(res[lr]["valid"]["nll"], 4) for lr in LRS}, flush=True)
        for seed in (1, 2):
            run(cell, best, seed)
    print("done", flush=True)
