"""Statistics of one metric over seeds: mean +- std, t-intervals, and two-sample tests (Welch, paired by
seed) that say whether two groups are separable. Reading runs and their tables is
:mod:`rnnlab.analysis.stats`, which re-exports these names.
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Iterable, Mapping, Optional, Sequence

import numpy as np


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """``(mean, sample std (ddof=1; 0 for one value), count)``, NaNs ignored."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], np.float64)
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std, int(arr.size)


# ---------------------------------------------------------------------------
# Inference over seeds: t-intervals and two-sample tests
#
# With 3 seeds per group, the 95% t-interval of a mean is mean +- 4.303 * std / sqrt(3)
# (t_{0.975, 2} = 4.303): about +-2.5 std. Two groups are "separable" when the 95% interval of
# the difference of their means excludes 0, which is the same event as the test's two-sided
# p < 0.05. Runs of two models with the same seed also share their generated data (the seed
# runs of a plan set ``data.gen_seed`` to the seed), so their difference is paired by seed.

LEVEL = 0.95


def _finite(values: Iterable[Optional[float]]) -> np.ndarray:
    """f64[N]: the values that are numbers and not NaN."""
    return np.asarray([v for v in values if v is not None and is_number(v) and not math.isnan(v)], np.float64)


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (``t_quantile(0.975, 2) = 4.303``)."""
    from scipy import stats as scipy_stats

    return float(scipy_stats.t.ppf(q, df))


def _two_sided_p(t: float, df: float) -> float:
    """``P(|T| >= |t|)`` for ``T ~ t(df)``."""
    from scipy import stats as scipy_stats

    return float(2.0 * scipy_stats.t.sf(abs(t), df))


def t_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """The ``level`` t-interval of the mean, ``mean -+ t_{(1+level)/2, n-1} * std / sqrt(n)``.

    Args:
      values: f[N] per-seed values (NaN and None are left out).
      level: the coverage, 0.95 by default.

    Returns:
      ``(low, high)``; ``(nan, nan)`` with fewer than 2 values.
    """
    arr = _finite(values)
    if arr.size < 2:
        return float("nan"), float("nan")
    half = t_quantile((1 + level) / 2, arr.size - 1) * arr.std(ddof=1) / math.sqrt(arr.size)
    return float(arr.mean() - half), float(arr.mean() + half)


def wilson_interval(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The ``level`` Wilson score interval of a proportion, ``successes`` of ``n`` trials.

    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` with ``p = successes / n`` and ``z`` the
    normal ``(1 + level) / 2`` quantile; it stays inside [0, 1] and is not degenerate at 0 or n.

    Raises:
      ValueError: ``n < 1`` or ``successes`` outside ``0 .. n``.
    """
    from scipy import stats as scipy_stats

    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"a proportion needs 0 <= successes <= n and n >= 1, got {successes} of {n}")
    z = float(scipy_stats.norm.ppf((1 + level) / 2))
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return max(0.0, (centre - half) / scale), min(1.0, (centre + half) / scale)


def describe(values: Sequence[Optional[float]], seeds: Optional[Sequence[int]] = None,
             level: float = LEVEL) -> dict[str, Any]:
    """Mean, sample std, the t-interval of the mean and the per-seed values, as JSON-ready data.

    Args:
      values: f[N], one value per seed (None or NaN for a seed without a value: kept in
        ``values``, left out of the statistics).
      seeds: int[N], the seed of each value (default ``0 .. N-1``).
      level: the interval's coverage.

    Returns:
      ``{"mean", "std", "n", "ci": [low, high], "level", "seeds": [...], "values": [...]}``
      (``std`` is 0 for one value; ``mean``, ``ci`` are NaN without values).
    """
    values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values]
    mean, std, n = mean_std([v for v in values if v is not None])
    return {"mean": mean, "std": std, "n": n, "ci": list(t_interval([v for v in values if v is not None], level)),
            "level": level, "seeds": list(seeds) if seeds is not None else list(range(len(values))),
            "values": values}


def format_ci(stats: Mapping[str, Any], digits: int = 3) -> str:
    """``"0.912 +- 0.004 [0.902, 0.922]"`` from :func:`describe`'s dict (``"-"`` without values)."""
    if not stats["n"]:
        return "-"
    text = f"{stats['mean']:.{digits}f} +- {stats['std']:.{digits}f}"
    low, high = stats["ci"]
    if not math.isnan(low):
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def _test_result(test: str, n: int, diff: float, se: float, df: float, level: float) -> dict[str, Any]:
    """t, p and the interval of ``diff`` from its standard error and degrees of freedom."""
    if se == 0.0:  # every difference equal: exact (infinite t) unless there is no difference at all
        t = 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
        p = 1.0 if diff == 0.0 else 0.0
        ci = [diff, diff]
    else:
        t = diff / se
        p = _two_sided_p(t, df)
        half = t_quantile((1 + level) / 2, df) * se
        ci = [diff - half, diff + half]
    return {"test": test, "n": n, "diff": diff, "se": se, "df": df, "t": t, "p": p, "ci": ci, "level": level}


def _nan_result(test: str, n: int, level: float) -> dict[str, Any]:
    nan = float("nan")
    return {"test": test, "n": n, "diff": nan, "se": nan, "df": nan, "t": nan, "p": nan, "ci": [nan, nan],
            "level": level}


def welch_test(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> dict[str, Any]:
    """Welch's two-sample t-test of ``mean(a) - mean(b)`` (unequal variances, unpaired).

    ``se = sqrt(s_a^2/n_a + s_b^2/n_b)``; the Welch-Satterthwaite degrees of freedom
    ``df = se^4 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1))``.

    Args:
      a: f[Na]; b: f[Nb] (NaN and None left out; each needs 2 values).
      level: coverage of the interval of the difference.

    Returns:
      ``{"test": "welch", "n": min(Na, Nb), "diff", "se", "df", "t", "p" (two-sided),
      "ci": [low, high], "level"}``; NaNs when a group has fewer than 2 values.
    """
    x, y = _finite(a), _finite(b)
    if x.size < 2 or y.size < 2:
        return _nan_result("welch", int(min(x.size, y.size)), level)
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(va + vb)
    df = float((va + vb) ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))) if se > 0 else float("nan")
    return _test_result("welch", int(min(x.size, y.size)), float(x.mean() - y.mean()), float(se), df, level)


def paired_test(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> dict[str, Any]:
    """The paired t-test of ``mean(a - b)``: ``a[i]`` and ``b[i]`` are runs of the same seed.

    Args:
      a, b: f[N] aligned by seed (pairs holding a NaN or None are left out; 2 pairs needed).
      level: coverage of the interval of the mean difference.

    Returns:
      As :func:`welch_test`, with ``"test": "paired"``, ``df = n - 1``.
    """
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b) if _finite([x]).size and _finite([y]).size]
    if len(pairs) < 2:
        return _nan_result("paired", len(pairs), level)
    d = np.asarray([x - y for x, y in pairs], np.float64)
    se = float(d.std(ddof=1) / math.sqrt(d.size))
    return _test_result("paired", int(d.size), float(d.mean()), se, float(d.size - 1), level)


def compare(a: Sequence[float], b: Sequence[float], seeds_a: Optional[Sequence[Hashable]] = None,
            seeds_b: Optional[Sequence[Hashable]] = None, level: float = LEVEL) -> dict[str, Any]:
    """``a`` against ``b``: paired by seed when both give seeds and share 2 or more, else Welch.

    Args:
      a: f[Na] values of group a; seeds_a: [Na] their pairing keys: the seed, or any hashable
        such as ``(seed, gen_seed)`` so that runs pair only when their data agree too (likewise b).
      level: coverage of the interval of the difference.

    Returns:
      The test's dict (:func:`paired_test` on the shared seeds, or :func:`welch_test`), plus
      ``"separable"``: whether the interval of ``mean(a) - mean(b)`` excludes 0.
    """
    result = None
    if seeds_a is not None and seeds_b is not None:
        by_seed_b = dict(zip(seeds_b, b))
        shared = [(x, by_seed_b[s]) for s, x in zip(seeds_a, a) if s in by_seed_b]
        shared = [(x, y) for x, y in shared if _finite([x]).size and _finite([y]).size]
        if len(shared) >= 2:
            result = paired_test([x for x, _ in shared], [y for _, y in shared], level)
    if result is None:
        result = welch_test(a, b, level)
    result["separable"] = is_separable(result)
    return result


def holm(p_values: Sequence[float], alpha: float = 1 - LEVEL) -> list[dict[str, Any]]:
    """Holm-Bonferroni over one family of tests: the adjusted p of each and whether it is rejected.

    With the family's ``m`` finite p-values sorted, ``p_(1) <= ... <= p_(m)``, the adjusted value is
    ``p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`` and a test is rejected when ``p~ <= alpha``:
    the step-down procedure, which keeps the chance of any false rejection in the family at most
    ``alpha`` whatever the tests' dependence.

    Args:
      p_values: f[m] two-sided p-values of the family (NaN or None: no test; left out of ``m``).
      alpha: the family-wise error rate.

    Returns:
      ``[{"p", "p_holm", "rejected"}]`` in the order given (``p_holm`` NaN and ``rejected`` False
      where there was no test).
    """
    finite = sorted((p, i) for i, p in enumerate(p_values) if p is not None and not math.isnan(p))
    m = len(finite)
    adjusted, running = {}, 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    nan = float("nan")
    return [{"p": nan if p is None else float(p), "p_holm": adjusted.get(i, nan),
             "rejected": i in adjusted and adjusted[i] <= alpha} for i, p in enumerate(p_values)]


def is_separable(result: Mapping[str, Any]) -> bool:
    """Whether a test's interval of the difference (``result["ci"]``) excludes 0."""
    low, high = result["ci"]
    return bool(low > 0 or high < 0)


def separable(a: Sequence[float], b: Sequence[float], seeds_a: Optional[Sequence[Hashable]] = None,
              seeds_b: Optional[Sequence[Hashable]] = None, level: float = LEVEL) -> bool:
    """Whether groups ``a`` and ``b`` (f[N] each, e.g. 3 seeds) are told apart: :func:`compare`'s
    interval of the difference excludes 0 (paired by seed when seeds are given and shared)."""
    return compare(a, b, seeds_a, seeds_b, level)["separable"]
