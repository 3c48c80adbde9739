"""Part 2: MuseData peephole LSTM, chunk 100, 3,000 steps, one change at a time."""
import os, subprocess, sys, time, json
ROOT = "."  # run from the checkout's root
OUT = f"{ROOT}/runs/stall2"
os.makedirs(OUT, exist_ok=True)
BASE = ("configs/music.py:dataset=musedata,cell=lstm,data.chunk_len=100,data.path=../shared/data/polyphonic,"
        "train.num_steps=3000,train.eval_every=1000")
RUNS = [a.split("=", 1) for a in sys.argv[1:]]  # name=extra,variants
for name, extra in RUNS:
    wd = f"{OUT}/{name}"
    variant = BASE + ("," + extra if extra else "")
    cmd = ["taskset", "-c", "1", sys.executable, "launch.py", f"--config={variant}", f"--workdir={wd}"]
    t = time.time()
    with open(f"{wd}.log", "a") as log:
        subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=ROOT))
    wall = time.time() - t
    open(f"{wd}.wall", "a").write(f"{wall:.1f}\n")
    open(f"{wd}.cmd", "w").write(" ".join(["python", *cmd[4:]]) + "\n")
    vals = [json.loads(l) for l in open(f"{wd}/metrics.jsonl")]
    print(name, [(v["step"], round(v["valid/nll"], 3)) for v in vals if "valid/nll" in v], "wall", round(wall), flush=True)
