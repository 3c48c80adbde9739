"""Tests of rnnlab.analysis.stats's inference over seeds: t-intervals, Welch and paired tests.

References are independent of the implementation: printed t-table values, hand-computed
examples, the closed-form t CDF for 2 and 4 degrees of freedom, and scipy's own test functions.
"""

import math

import numpy as np
import pytest

from rnnlab.analysis import stats
from rnnlab.analysis import significance


def _p_df2(t):
    """Two-sided p of Student's t with 2 degrees of freedom: ``1 - |t| / sqrt(2 + t^2)``."""
    return 1.0 - abs(t) / math.sqrt(2.0 + t * t)


def _p_df4(t):
    """Two-sided p with 4 degrees of freedom, from the closed-form CDF
    ``F(t) = 1/2 + x (3 - x^2) / 4`` with ``x = t / sqrt(4 + t^2)``."""
    x = abs(t) / math.sqrt(4.0 + t * t)
    return 1.0 - x * (3.0 - x * x) / 2.0


@pytest.mark.parametrize("q, df, table", [(0.975, 2, 4.303), (0.975, 4, 2.776), (0.975, 10, 2.228),
                                          (0.95, 5, 2.015), (0.995, 3, 5.841), (0.975, 1, 12.706)])
def test_t_quantile_matches_printed_table(q, df, table):
    assert significance.t_quantile(q, df) == pytest.approx(table, abs=6e-4)


def test_closed_form_references_agree_with_each_other():
    # The df=4 formula is checked at its known quantile: t_{0.975,4} = 2.776 gives p = 0.05
    assert _p_df4(2.7764451) == pytest.approx(0.05, abs=1e-6)
    assert _p_df2(4.3026527) == pytest.approx(0.05, abs=1e-6)


def test_t_interval_hand_computed():
    # [1, 2, 3]: mean 2, sd 1, half-width 4.3027 / sqrt(3) = 2.48414
    low, high = significance.t_interval([1.0, 2.0, 3.0])
    assert (low, high) == (pytest.approx(2 - 2.48414, abs=1e-4), pytest.approx(2 + 2.48414, abs=1e-4))
    low90, high90 = significance.t_interval([1.0, 2.0, 3.0], level=0.90)  # t_{0.95,2} = 2.920
    assert high90 - 2 == pytest.approx(2.920 / math.sqrt(3), abs=1e-3)
    assert all(math.isnan(v) for v in significance.t_interval([1.0]))
    # Two values left, [1, 3]: sd sqrt(2), df = 1, half-width 12.706 * sqrt(2) / sqrt(2)
    low2, high2 = significance.t_interval([1.0, None, float("nan"), 3.0])
    assert (low2, high2) == (pytest.approx(2 - 12.7062, abs=1e-3), pytest.approx(2 + 12.7062, abs=1e-3))


def test_describe_keeps_every_seed_value():
    d = significance.describe([0.9, None, 0.7], seeds=[1, 2, 3])
    assert d["seeds"] == [1, 2, 3] and d["values"] == [0.9, None, 0.7]
    assert (d["mean"], d["n"]) == (pytest.approx(0.8), 2)
    assert d["std"] == pytest.approx(np.std([0.9, 0.7], ddof=1))
    assert d["ci"] == pytest.approx(list(significance.t_interval([0.9, 0.7])))
    assert significance.format_ci(significance.describe([1.0, 2.0, 3.0])) == "2.000 +- 1.000 [-0.484, 4.484]"
    assert significance.format_ci(significance.describe([])) == "-"


def test_paired_test_hand_computed_df2():
    # Given differences [-1, -1, -2]: mean -4/3, sd 1/sqrt(3), se 1/3, t = -4, df = 2
    r = significance.paired_test([1.0, 2.0, 3.0], [2.0, 3.0, 5.0])
    assert (r["test"], r["n"], r["df"]) == ("paired", 3, 2.0)
    assert r["t"] == pytest.approx(-4.0)
    assert r["p"] == pytest.approx(_p_df2(-4.0))  # 1 - 4 / sqrt(18) = 0.05719
    assert r["p"] == pytest.approx(0.057191, abs=1e-6)
    assert r["ci"] == pytest.approx([-4 / 3 - 4.302653 / 3, -4 / 3 + 4.302653 / 3], abs=1e-5)
    assert not significance.is_separable(r)  # p > 0.05: the interval holds 0
    with pytest.raises(ValueError, match="equal lengths"):
        significance.paired_test([1.0, 2.0], [1.0])


def test_welch_test_hand_computed_df4():
    # Equal variances and sizes: df = 2n - 2 = 4; t = -3 / sqrt(2/3) = -3.674
    r = significance.welch_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert r["df"] == pytest.approx(4.0)
    assert r["t"] == pytest.approx(-3.0 / math.sqrt(2.0 / 3.0))
    assert r["p"] == pytest.approx(_p_df4(r["t"]))
    assert r["ci"] == pytest.approx([-3 - 2.776445 * math.sqrt(2 / 3), -3 + 2.776445 * math.sqrt(2 / 3)], abs=1e-5)
    # Unequal variances: df = (1/3 + 4/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = 50/17
    r2 = significance.welch_test([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    assert r2["df"] == pytest.approx(50 / 17)
    assert r2["t"] == pytest.approx(-2.0 / math.sqrt(5 / 3))


def test_tests_agree_with_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.normal(0.0, 1.0, 3), rng.normal(0.7, 2.0, 4)
        ref = scipy_stats.ttest_ind(a, b, equal_var=False)
        r = significance.welch_test(a, b)
        assert (r["t"], r["p"]) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
        c = rng.normal(0.3, 0.5, 3)
        ref = scipy_stats.ttest_rel(a, c)
        r = significance.paired_test(a, c)
        assert (r["t"], r["p"]) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))


def test_compare_pairs_by_seed_and_falls_back_to_welch():
    # Seeds in different orders pair up by seed: a - b = 0.1 on every seed
    r = significance.compare([0.5, 0.7, 0.6], [0.5, 0.6, 0.4], seeds_a=[1, 3, 2], seeds_b=[2, 3, 1])
    assert (r["test"], r["diff"], r["p"]) == ("paired", pytest.approx(0.1), 0.0)  # identical differences
    assert r["separable"] and significance.separable([0.5, 0.7, 0.6], [0.5, 0.6, 0.4], [1, 3, 2], [2, 3, 1])
    # No shared seeds: Welch
    w = significance.compare([0.5, 0.7, 0.6], [0.5, 0.6, 0.4], seeds_a=[1, 2, 3], seeds_b=[4, 5, 6])
    assert w["test"] == "welch" and w["p"] == pytest.approx(significance.welch_test([0.5, 0.7, 0.6], [0.5, 0.6, 0.4])["p"])
    # Keys (seed, gen_seed): runs of equal seeds but different data do not pair
    k = significance.compare([0.5, 0.7, 0.6], [0.4, 0.6, 0.5], [(1, 1), (2, 2), (3, 3)], [(1, 0), (2, 0), (3, 0)])
    assert k["test"] == "welch"
    # Noisy, overlapping groups are not separable at 3 seeds; clearly apart ones are
    assert not significance.separable([0.90, 0.95, 0.85], [0.88, 0.97, 0.86], [1, 2, 3], [1, 2, 3])
    assert significance.separable([0.90, 0.91, 0.92], [0.50, 0.52, 0.49])
    # Equal groups: no difference, p = 1
    same = significance.compare([0.5, 0.5], [0.5, 0.5], [1, 2], [1, 2])
    assert (same["p"], same["separable"]) == (1.0, False)
    assert math.isnan(significance.compare([0.5], [0.4])["p"])


def test_steady_steps_per_sec_skips_the_first_window():
    metrics = [{"step": 50, "train/steps_per_sec": 5.0}, {"step": 100, "valid/accuracy": 0.5},
               {"step": 100, "train/steps_per_sec": 100.0}, {"step": 150, "train/steps_per_sec": 50.0},
               {"step": 200, "train/steps_per_sec": 200.0}]
    assert stats.steady_steps_per_sec(metrics) == 100.0  # median of 100, 50, 200
    assert stats.first_window_overhead(metrics) == pytest.approx(50 / 5.0 - 50 / 100.0)  # 9.5 s
    assert math.isnan(stats.steady_steps_per_sec(metrics[:1]))
    assert math.isnan(stats.first_window_overhead([]))


def _holm_by_definition(p_values, alpha):
    """Holm's step-down procedure as stated: test the sorted p-values in turn against alpha / (m - k),
    stopping at the first that fails; the ones tested before it are rejected."""
    m = len(p_values)
    rejected = [False] * m
    for k, i in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        if p_values[i] > alpha / (m - k):
            break
        rejected[i] = True
    return rejected


def test_holm_adjusts_by_hand_and_rejects_as_the_step_down_procedure():
    # By hand: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> running max
    result = significance.holm([0.01, 0.04, 0.03, 0.005])
    assert [r["p_holm"] for r in result] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [r["rejected"] for r in result] == [True, False, False, True]
    # NaN (no test) is left out of the family: m = 2 here
    with_nan = significance.holm([0.02, float("nan"), 0.04])
    assert [r["p_holm"] for r in with_nan][::2] == pytest.approx([0.04, 0.04])
    assert math.isnan(with_nan[1]["p_holm"]) and not with_nan[1]["rejected"]
    assert [r["p_holm"] for r in significance.holm([0.9, 0.8])] == [1.0, 1.0]  # 2 * 0.8 capped at 1, then monotone
    # And on random families, rejections equal the step-down procedure's at several levels
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = list(rng.uniform(0, 0.1, rng.integers(1, 12)))
        for alpha in (0.01, 0.05, 0.1):
            assert [r["rejected"] for r in significance.holm(p, alpha)] == _holm_by_definition(p, alpha)


def test_page_block_reads_and_rewrites_one_marked_block(tmp_path):
    page = "# A page\n\n<!-- table: python make_table.py -->\n| old |\n<!-- /table -->\n\nprose | old |\n"
    assert stats.page_block(page, "table").strip() == "| old |"
    new = stats.with_page_block(page, "table", "| new |\n|---|")
    assert new == "# A page\n\n<!-- table: python make_table.py -->\n| new |\n|---|\n<!-- /table -->\n\nprose | old |\n"
    assert stats.page_block(new, "table").strip() == "| new |\n|---|"
    (tmp_path / "page.md").write_text(page)
    stats.write_page_block(str(tmp_path / "page.md"), "table", "| new |\n|---|")
    assert (tmp_path / "page.md").read_text() == new
    with pytest.raises(ValueError, match="exactly one block"):
        stats.page_block(page, "figure")
    with pytest.raises(ValueError, match="exactly one block"):
        stats.page_block(page + page, "table")


@pytest.mark.parametrize("successes,n", [(0, 1), (0, 10), (3, 10), (9, 9), (330, 378), (55, 76)])
def test_wilson_interval_agrees_with_scipy(successes, n):
    from scipy import stats as scipy_stats

    reference = scipy_stats.binomtest(successes, n).proportion_ci(0.95, method="wilson")
    low, high = significance.wilson_interval(successes, n)
    assert (low, high) == pytest.approx((reference.low, reference.high), abs=1e-12)
    assert 0.0 <= low <= successes / n <= high <= 1.0


def test_wilson_interval_rejects_impossible_counts():
    for successes, n in [(0, 0), (-1, 5), (6, 5)]:
        with pytest.raises(ValueError, match="0 <= successes <= n"):
            significance.wilson_interval(successes, n)
