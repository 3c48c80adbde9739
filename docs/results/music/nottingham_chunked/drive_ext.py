"""Part 1, grid extension: where seed 0's choice sat at the grid's edge, one more rate (drive.run)."""
import json as _j

from drive import OUT, run

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
