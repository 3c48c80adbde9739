"""Claim 4 causally (studies.claims.clamping): the summary of clamped memory units against random ones."""

from studies.claims import clamping
from tests import committed


def _checkpoint(baseline, to_one, randoms, memory=(3,), higher=True):
    entry = {"memory_units": list(memory)}
    if memory:
        entry.update(to_one=to_one, to_mean=baseline, random_to_one=list(randoms),
                     random_to_mean=[baseline] * len(randoms))
    return {"metric": "accuracy", "higher_is_better": higher, "units": 8, "baseline": baseline,
            "thresholds": {str(t): entry for t in clamping.THRESHOLDS}}


def test_summary_counts_damage_against_every_draw_over_the_runs_that_learned():
    runs = [
        {"learned": True, "best": _checkpoint(1.0, 0.2, [0.9, 1.0]), "last": _checkpoint(1.0, 0.2, [0.9, 1.0])},
        {"learned": True, "best": _checkpoint(1.0, 0.95, [0.9, 1.0]), "last": _checkpoint(1.0, 0.95, [0.9, 1.0])},
        {"learned": False, "best": _checkpoint(0.1, 0.1, [0.1]), "last": _checkpoint(0.1, 0.1, [0.1])},
    ]
    rows = clamping.summarise({"copy100/gru": runs}, "best")
    first = rows[0]
    assert first[:5] == ["copy100/gru", "2/3", clamping.THRESHOLDS[0], "1 of 8", 2]
    # damage to one: (0.8 + 0.05) / 2; random draws: mean damage (0.05 + 0.05) / 2; the first run beats
    # every draw (0.8 > 0.1), the second does not (0.05 < 0.1)
    assert first[5:8] == ["+0.425", "+0.05", "1/2"]
    assert first[8:] == ["+0", "+0", "0/2"]  # clamped to its mean: no change, no draw beaten
    # a lower-is-better metric counts damage upwards
    mse = clamping.summarise({"adding100/lstm": [{"learned": True, "best": _checkpoint(0.001, 0.1, [0.002], higher=False)}]},
                             "best")[0]
    assert mse[5:8] == ["+0.099", "+0.001", "1/1"]
    # a run without memory units at a threshold is counted but not clamped
    none = clamping.summarise({"m": [{"learned": None, "best": _checkpoint(1.0, 0, [], memory=())}]}, "best")[0]
    assert none[3:8] == ["0 of 8", 0, "-", "-", "0/0"]


def test_findings_clamping_block_is_what_the_code_makes_of_the_committed_json():
    results = committed.results("memory", "clamping.json")
    assert committed.block("findings.md", "clamping") == clamping.clamping_markdown(results).strip()


def test_the_findings_reading_of_copy_is_what_the_committed_json_says():
    # findings.md: on copy, in every seed that learned, at every threshold and both checkpoints, clamping
    # the memory units (4-12 per seed) did more damage than each random draw; recall fell by 0.67-0.89 per
    # seed, a random draw's by at most 0.66
    results = committed.results("memory", "clamping.json")
    learned = {model: [r for r in runs if r["learned"]] for model, runs in results.items()
               if model.startswith("copy100/")}
    assert {m: len(runs) for m, runs in learned.items() if runs} == {"copy100/lstm_cifg": 5, "copy100/gru": 3}
    damages, ks, random = [], [], []
    for runs in learned.values():
        for run in runs:
            for checkpoint in ("best", "last"):
                c = run[checkpoint]
                for entry in c["thresholds"].values():
                    ks.append(len(entry["memory_units"]))
                    for how in ("to_one", "to_mean"):
                        mine = c["baseline"] - entry[how]
                        draws = [c["baseline"] - v for v in entry[f"random_{how}"]]
                        assert mine > max(draws)
                        damages.append(mine)
                        random += draws
    assert 0.665 <= min(damages) and max(damages) < 0.895 and (min(ks), max(ks)) == (4, 12)
    assert max(random) < 0.665
