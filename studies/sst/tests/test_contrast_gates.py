"""studies.sst.contrast_gates: the forget gate at a contrast boundary against the sentence's other steps."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from studies.sst import contrast_gates as cg


def test_boundaries_find_the_contrast_word_the_clause_comma_and_the_controls():
    assert cg.boundaries("the plot is good , but the film is bad".split()) == [("but", 5)]
    assert cg.boundaries("the plot is good , and the film is bad".split()) == [(cg.BOUNDARIES[1], 5)]
    assert cg.boundaries("although the plot is good , the film is bad".split()) == [("although A , B", 5)]
    assert cg.boundaries("the film is bad , although the plot is good".split()) == [
        ("B , although A", 5), ("B , although A: its comma", 4)]
    with pytest.raises(ValueError, match="no contrast word"):
        cg.boundaries("a good and funny film".split())  # "and" not after a comma: no twin of a but-sentence


def test_sentence_record_compares_the_boundary_with_the_steps_after_the_first():
    rng = np.random.default_rng(0)
    forget = rng.uniform(0.5, 1.0, size=(7, 4))
    forget[3] = 0.1  # the boundary: the lowest step
    forget[0] = 0.0  # the first step is left out, even though it is lower
    record = cg.sentence_record(forget, "but", 3)
    mean = forget.mean(axis=1)
    assert record["boundary"] == pytest.approx(mean[3])
    assert record["elsewhere"] == pytest.approx(np.mean([mean[t] for t in (1, 2, 4, 5, 6)]))
    assert record["lowest_at_boundary"]
    assert record["profile"] == pytest.approx([mean[0], mean[1], mean[2], mean[3], mean[4], mean[5], mean[6]])
    edge = cg.sentence_record(forget, "but", 1)
    assert edge["profile"][:2] == [None, None] and not edge["lowest_at_boundary"]


def test_summarize_runs_paired_tests_over_sentences_with_holm_and_closes_only_when_lower():
    rng = np.random.default_rng(1)

    def records(shift):
        out = []
        for kind in cg.BOUNDARIES:
            for _ in range(12):
                other = rng.uniform(0.6, 0.8)
                out.append({"kind": kind, "boundary": other + shift + rng.normal(0, 0.01), "elsewhere": other,
                            "lowest_at_boundary": shift < 0})
        return out

    runs = {"m/seed1": records(-0.1), "m/seed2": records(+0.1)}
    rows = cg.summarize(runs)
    assert len(rows) == 2 * len(cg.BOUNDARIES)
    first = rows[0]
    chosen = [r for r in runs["m/seed1"] if r["kind"] == first["kind"]]
    reference = scipy_stats.ttest_rel([r["boundary"] for r in chosen], [r["elsewhere"] for r in chosen])
    assert first["p"] == pytest.approx(reference.pvalue, rel=1e-6)
    assert all(r["p_holm"] >= r["p"] for r in rows)
    assert [r["closes"] for r in rows] == [True] * len(cg.BOUNDARIES) + [False] * len(cg.BOUNDARIES)  # higher: no
    assert rows[0]["lowest_share"] == 1.0 and rows[-1]["lowest_share"] == 0.0


def test_behaviour_link_matches_runs_by_workdir_and_ranks_closing_against_failures():
    rows = [{"run": f"m/seed{i}", "kind": "but", "diff": d} for i, d in enumerate((-0.3, -0.2, -0.1), 1)]
    rows.append({"run": "m/seed1", "kind": "and (the but-sentence's twin)", "diff": 0.5})  # another kind: ignored
    workdirs = {"m/seed1": "runs/a/", "m/seed2": "runs/b", "m/seed3": "runs/c"}
    behaviour = {"models": {"m": [{"workdir": w, "groups": {"contrast: but": {"failure_rate": f}}}
                                  for w, f in (("runs/a", 0.1), ("runs/b", 0.2), ("runs/c", 0.4))]}}
    link = cg.behaviour_link(rows, workdirs, behaviour)
    assert [r["failure_rate"] for r in link["runs"]] == [0.1, 0.2, 0.4]
    assert link["spearman"] == pytest.approx(1.0)  # deeper closing (more negative), fewer failures: same ranks
    assert "Spearman's rho = +1.00" in cg.summary_markdown(
        [dict(r, n=1, boundary=0.5, elsewhere=0.5, ci=(0, 0), p_holm=1, lowest_share=0, closes=False)
         for r in rows], link)
def test_findings_contrast_gates_block_is_what_the_code_makes_of_the_committed_json():
    from tests import committed

    data = committed.results("sst2", "contrast_gates.json")
    made = cg.summary_markdown(data["summary"], data["link"])
    assert committed.block("findings.md", "contrast-gates") == made.strip()
    assert {row["kind"] for row in data["summary"]} == set(cg.BOUNDARIES)



def test_the_findings_reading_of_the_contrast_gates_is_what_the_committed_json_says():
    from tests import committed

    data = committed.results("sst2", "contrast_gates.json")
    rows = {(r["run"], r["kind"]): r for r in data["summary"]}
    runs = list(data["runs"])
    bilstms = [run for run in runs if "bilstm" in run]
    last_lstms = [run for run in runs if run.startswith(("sst2/lstm_last/", "sst2/lstm_last_deep/"))]
    closes = lambda kind, among: [run for run in among if rows[(run, kind)]["closes"]]
    but = [rows[(run, "but")] for run in runs]
    assert len(runs) == 21 and all(r["closes"] for r in but)  # "in all 21 runs"
    assert (f"{min(-r['diff'] for r in but):.3f}", f"{max(-r['diff'] for r in but):.3f}") == ("0.009", "0.224")
    lowest = [100 * rows[(run, "but")]["lowest_share"] for run in bilstms]
    assert (round(min(lowest)), round(max(lowest))) == (98, 100)
    # "and": 6 of 21, each by at most a third of "but" in the same run, at most 0.063 where "but" closes by 0.195
    at_and = closes(cg.BOUNDARIES[1], runs)
    assert len(at_and) == 6
    assert max(rows[(run, cg.BOUNDARIES[1])]["diff"] / rows[(run, "but")]["diff"] for run in at_and) <= 1 / 3
    deepest = min(at_and, key=lambda run: rows[(run, cg.BOUNDARIES[1])]["diff"])
    assert (f"{-rows[(deepest, cg.BOUNDARIES[1])]['diff']:.3f}", f"{-rows[(deepest, 'but')]['diff']:.3f}") == ("0.063",
                                                                                                         "0.195")
    # the comma: 11 of 21 at the although-clause's comma, 9 of them at the control comma too; none for the
    # last-step LSTM with one layer or two; a mid-sentence "although": 1 of 21
    clause, control = closes("although A , B", runs), closes("B , although A: its comma", runs)
    assert (len(clause), len(set(clause) & set(control)), len(control)) == (11, 9, 9)
    assert not closes("although A , B", last_lstms) and not closes("B , although A: its comma", last_lstms)
    assert len(last_lstms) == 6 and len(closes("B , although A", runs)) == 1
    link = data["link"]
    models = {run.rsplit("/seed", 1)[0] for run in runs}
    assert f"rho {link['spearman']:+.2f}, p = {link['p']:.1g}" == "rho +0.76, p = 6e-05" and len(link["runs"]) == 21
    assert len(models) == 7
    behaviour = committed.results("sst2", "behaviour.json")["models"]
    rates = lambda group, phrases=False: [100 * r["groups"][group]["failure_rate"] for name, records in behaviour.items()
                                          for r in records if name in models  # the 21 traced runs
                                          and not (phrases and "sentences" in name)]
    assert (min(rates("contrast: but")), max(rates("contrast: but"))) == pytest.approx((6.25, 45.0))
    assert (min(rates("contrast: but", True)), max(rates("contrast: but", True))) == pytest.approx((6.25, 37.5))
    assert (min(rates("contrast: although")), max(rates("contrast: although"))) == pytest.approx((30.625, 50.0))
    with open(f"{committed.ROOT}/docs/findings.md") as f:
        page = f.read()
    assert "Spearman's rho +0.76, p = 6e-05" in page and "over seven models' runs" in page
    assert "fails 6.2-45.0% of them (6.2-37.5% for the runs" in page.replace("\n  ", " ")
    assert "fail 30.6-50.0% in every run" in page.replace("\n  ", " ")


def test_the_findings_reading_of_the_augmented_models_gates_is_what_the_committed_json_says():
    from tests import committed

    rows = committed.results("sst2_augment", "contrast_gates.json")["summary"]
    behaviour = committed.results("sst2", "behaviour.json")["models"]
    with open(f"{committed.ROOT}/docs/findings.md") as f:
        page = " ".join(f.read().split())
    kind = lambda name: [r for r in rows if r["kind"].startswith(name)]
    but, and_, clause, at_although = kind("but"), kind("and"), kind("although A , B"), kind("B , although A")
    at_although = [r for r in at_although if not r["kind"].endswith("its comma")]
    assert len(but) == len(and_) == len(clause) == len(at_although) == 6
    assert all(r["closes"] for r in but)
    low, high = min(-r["diff"] for r in but), max(-r["diff"] for r in but)
    shares = [100 * r["lowest_share"] for r in but]
    assert (f"closes at \"but\" (by {low:.3f} to {high:.3f}; the lowest step of the sentence in "
            f"{min(shares):.0f}-{max(shares):.0f}% of them)") in page
    closing_and = [r for r in and_ if r["closes"]]
    assert f"\"and\" in {len(closing_and)} of the 6, by at most {max(-r['diff'] for r in closing_and):.3f}" in page
    (closing,) = [r for r in clause if r["closes"]]
    assert f"it closes in 1 of the 6 runs, by {-closing['diff']:.3f}" in page
    assert all(r["diff"] > 0 and r["p_holm"] < 0.05 for r in at_although)  # opens, separably
    assert (f"in all 6 runs (by {min(r['diff'] for r in at_although):.3f} to "
            f"{max(r['diff'] for r in at_although):.3f}, separably)") in page
    passed = [100 - 100 * np.mean([r["groups"]["contrast: although"]["failure_rate"] for r in behaviour[m]])
              for m in ("sst2/lstm_last_augmented", "sst2/lstm_last_deep_augmented")]
    assert f"pass {passed[0]:.1f}% and {passed[1]:.1f}% of the \"although\" sentences" in page
