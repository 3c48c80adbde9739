"""Run directories and their statistics: reading runs, grouping seeds, mean +- std, tables, targets,
gate saturation.

A run directory (a workdir of ``rnnlab.training.train.train_and_evaluate``) holds
``config.json``, ``metrics.jsonl`` (one JSON object per logged step, metrics
named ``split/name``) and ``results.json`` (``{split: {name: value}}``); the names
are :mod:`rnnlab.training.workdir`'s. Runs whose directory names differ only in
their ``__seedS`` suffix form a *group* (see :mod:`rnnlab.experiments.sweep`);
statistics are each group's mean +- sample standard deviation over its seeds.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Hashable, Iterable, Mapping, Optional, Sequence

import numpy as np

from rnnlab.experiments.sweep import group_name
from rnnlab.training.workdir import CONFIG_FILE, RESULTS_FILE, flatten, read_json, read_metrics


@dataclasses.dataclass
class RunRecord:
    """What one finished (or unfinished) run directory holds.

    Attributes:
      workdir: the directory.
      group: its name without the seed suffix.
      seed: ``config.train.seed`` (or -1 when unknown).
      config: ``config.json`` as a nested dict (``{}`` when missing).
      metrics: the ``metrics.jsonl`` lines in file order.
      results: ``results.json`` flattened to ``{"split/name": value}``
        (``{}`` while the run is unfinished).
    """

    workdir: str
    group: str
    seed: int
    config: dict
    metrics: list
    results: dict

    @property
    def finished(self) -> bool:
        return bool(self.results)


def _read_json(path: str, default: Any) -> Any:
    if not os.path.isfile(path):
        return default
    return read_json(path)


def load_run(workdir: str) -> RunRecord:
    """Reads one run directory; raises ``FileNotFoundError`` if it is not a folder."""
    if not os.path.isdir(workdir):
        raise FileNotFoundError(f"not a run directory: {workdir!r}")
    config = _read_json(os.path.join(workdir, CONFIG_FILE), {})
    seed = config.get("train", {}).get("seed", -1)
    results = _read_json(os.path.join(workdir, RESULTS_FILE), {})
    return RunRecord(
        workdir=workdir,
        group=group_name(workdir),
        seed=int(seed),
        config=config,
        metrics=read_metrics(workdir),
        results={k: v for k, v in flatten(results).items() if _is_number(v)},
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def group_runs(runs: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    """``{group: runs sorted by seed}``, groups in order of first appearance."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    return {g: sorted(rs, key=lambda r: r.seed) for g, rs in groups.items()}


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """``(mean, sample std (ddof=1; 0 for one value), count)``, NaNs ignored."""
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], np.float64)
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std, int(arr.size)


def first_step_reaching(
    metrics: Sequence[Mapping[str, Any]], key: str, threshold: float, mode: str = "max"
) -> Optional[int]:
    """The first logged step at which ``key`` is ``>= threshold`` (mode max) or ``<=`` (min).

    Returns ``None`` when it never gets there.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    for record in metrics:
        value = record.get(key)
        if value is None or not _is_number(value) or math.isnan(value):
            continue
        if (value >= threshold) if mode == "max" else (value <= threshold):
            return int(record["step"])
    return None


def train_seconds_to_step(metrics: Sequence[Mapping[str, Any]], step: int) -> float:
    """Training time until ``step``, summed from the logged ``train/steps_per_sec`` windows.

    Each training log line covers the steps since the previous one at its
    rate; compile, evaluation and checkpoint time are excluded. The window
    holding ``step`` counts in full (``step`` is normally a log step).
    """
    seconds, previous = 0.0, 0
    for record in metrics:
        sps = record.get("train/steps_per_sec")
        if sps is None or not _is_number(sps) or sps <= 0 or record["step"] <= previous:
            continue
        seconds += (record["step"] - previous) / sps
        previous = record["step"]
        if previous >= step:
            return seconds
    raise ValueError(f"the log stops at step {previous}, before step {step}")


def curve(metrics: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps int[N], values f64[N])`` of one metric over a run's log."""
    pairs = [(r["step"], r[key]) for r in metrics if key in r and _is_number(r[key])]
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    steps, values = zip(*pairs)
    return np.asarray(steps, np.int64), np.asarray(values, np.float64)


def summarize(
    groups: Mapping[str, Sequence[RunRecord]], keys: Optional[Sequence[str]] = None
) -> dict[str, dict[str, tuple[float, float, int]]]:
    """``{group: {metric: (mean, std, n)}}`` over the finished runs of each group.

    Args:
      groups: from :func:`group_runs`.
      keys: metric names (``"test/accuracy"``); default every numeric result.
    """
    summary = {}
    for group, runs in groups.items():
        done = [r for r in runs if r.finished]
        names = keys or sorted({k for r in done for k in r.results})
        summary[group] = {k: mean_std([r.results.get(k, float("nan")) for r in done]) for k in names}
    return summary


def format_mean_std(stats: tuple[float, float, int], digits: int = 3) -> str:
    """``"0.912 +- 0.004"`` (``"-"`` when there are no values)."""
    mean, std, n = stats
    if n == 0:
        return "-"
    return f"{mean:.{digits}f} +- {std:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def summary_table(
    summary: Mapping[str, Mapping[str, tuple[float, float, int]]],
    keys: Sequence[str],
    digits: int = 3,
) -> str:
    """One row per group: ``seeds`` and ``mean +- std`` of each key."""
    header = ["run", "seeds"] + list(keys)
    rows = []
    for group, stats in summary.items():
        n = max((stats[k][2] for k in keys if k in stats), default=0)
        rows.append([group, n] + [format_mean_std(stats.get(k, (0, 0, 0)), digits) for k in keys])
    return markdown_table(header, rows)


def negated_counts(data_config: Any, split: str) -> tuple[int, int]:
    """``(examples, examples with negated == True)`` in ``split`` of a dataset with a ``negated`` flag.

    Raises:
      ValueError: the dataset's batches carry no ``negated`` flag.
    """
    import rnnlab.data

    total = negated = 0
    for batch in rnnlab.data.make_loader(data_config, split, seed=0, shuffle=False, num_epochs=1):
        if "negated" not in batch:
            raise ValueError(f"dataset {data_config.get('name')!r} has no 'negated' flag")
        weights = np.asarray(batch["weights"]) > 0
        total += int(weights.sum())
        negated += int((np.asarray(batch["negated"]).astype(bool) & weights).sum())
    return total, negated


def negation_breakdown(
    workdirs: Sequence[str],
    splits: Sequence[str] = ("valid", "test"),
    counts: Optional[Mapping[str, tuple[int, int]]] = None,
) -> list[dict[str, Any]]:
    """Per finished run: accuracy on all, negated and other (non-negated) sentences of each split.

    The other sentences' accuracy is ``(accuracy * N - negated_accuracy * N_neg) / (N - N_neg)``
    from ``results.json``.

    Args:
      workdirs: run directories of classification runs with a ``negated`` flag.
      splits: the result splits to break down.
      counts: ``{split: (N, N_neg)}``; default counted from each run's dataset
        (:func:`negated_counts`).

    Returns:
      ``[{"workdir", "group", "seed", "learning_rate", "wall_time_sec",
      split: {"accuracy", "negated_accuracy", "other_accuracy", "count", "negated"}}]``.
    """
    records = []
    for workdir in workdirs:
        run = load_run(workdir)
        if not run.finished:
            continue
        record = {"workdir": workdir, "group": run.group, "seed": run.seed,
                  "learning_rate": run.config.get("optim", {}).get("learning_rate"),
                  "wall_time_sec": run.results.get("wall_time_sec")}
        for split in splits:
            n, n_neg = counts[split] if counts else negated_counts(run.config["data"], split)
            acc, neg = run.results[f"{split}/accuracy"], run.results[f"{split}/negated_accuracy"]
            other = (acc * n - neg * n_neg) / (n - n_neg) if n > n_neg else float("nan")
            record[split] = {"accuracy": acc, "negated_accuracy": neg, "other_accuracy": other,
                             "count": n, "negated": n_neg}
        records.append(record)
    return records


def saturation(values: np.ndarray, eps: float = 0.1) -> dict[str, float]:
    """The fraction of gate values ``< eps`` (near 0), ``> 1 - eps`` (near 1) and between."""
    values = np.asarray(values, np.float64).ravel()
    if values.size == 0:
        raise ValueError("no gate values to measure")
    low = float(np.mean(values < eps))
    high = float(np.mean(values > 1 - eps))
    return {"near_0": low, "near_1": high, "middle": 1.0 - low - high}


def parse_target(text: str) -> tuple[str, str, float]:
    """``"valid/mse<=0.01"`` -> ``("valid/mse", "min", 0.01)``; ``">="`` gives ``"max"``."""
    for op, mode in (("<=", "min"), (">=", "max")):
        if op in text:
            key, _, value = text.partition(op)
            return key.strip(), mode, float(value)
    raise ValueError(f"a target is METRIC<=VALUE or METRIC>=VALUE, got {text!r}")


def target_table(groups: Mapping[str, Sequence[RunRecord]], target: str) -> tuple[str, dict]:
    """Per group: seeds that reach ``target`` on their logged curve, the step and the training time.

    Steps and seconds (:func:`train_seconds_to_step`) are mean +- std over the
    seeds that reach it.

    Returns:
      ``(markdown, {group: {"reached": k, "seeds": n, "step": stats, "seconds": stats, "per_seed":
      {"seeds", "steps", "seconds"} (None for a seed that misses it)}})``.
    """
    key, mode, threshold = parse_target(target)
    rows, data = [], {}
    for group, runs in groups.items():
        done = [r for r in runs if r.finished]
        steps = [first_step_reaching(r.metrics, key, threshold, mode) for r in done]
        hits = [(r, s) for r, s in zip(done, steps) if s is not None]
        seconds = [train_seconds_to_step(r.metrics, s) for r, s in hits]
        data[group] = {"reached": len(hits), "seeds": len(done), "step": mean_std([s for _, s in hits]),
                       "seconds": mean_std(seconds),
                       "per_seed": {"seeds": [r.seed for r in done], "steps": steps,
                                    "seconds": [train_seconds_to_step(r.metrics, s) if s is not None else None
                                                for r, s in zip(done, steps)]}}
        rows.append([group, f"{len(hits)}/{len(done)}", format_mean_std(data[group]["step"], 0),
                     format_mean_std(data[group]["seconds"], 1)])
    md = f"\nTarget `{target}` (first logged evaluation reaching it):\n\n"
    return md + markdown_table(["run", "seeds reaching", "step", "train seconds"], rows), data


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
    return np.asarray([v for v in values if v is not None and _is_number(v) and not math.isnan(v)], np.float64)


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


def is_separable(result: Mapping[str, Any]) -> bool:
    """Whether a test's interval of the difference (``result["ci"]``) excludes 0."""
    low, high = result["ci"]
    return bool(low > 0 or high < 0)


def separable(a: Sequence[float], b: Sequence[float], seeds_a: Optional[Sequence[Hashable]] = None,
              seeds_b: Optional[Sequence[Hashable]] = None, level: float = LEVEL) -> bool:
    """Whether groups ``a`` and ``b`` (f[N] each, e.g. 3 seeds) are told apart: :func:`compare`'s
    interval of the difference excludes 0 (paired by seed when seeds are given and shared)."""
    return compare(a, b, seeds_a, seeds_b, level)["separable"]


def per_seed(groups: Mapping[str, Sequence[RunRecord]], keys: Sequence[str],
             level: float = LEVEL) -> dict[str, dict[str, dict[str, Any]]]:
    """``{group: {key: describe(...)}}``: each finished seed's value with mean, std and t-interval.

    Args:
      groups: from :func:`group_runs`.
      keys: metric names (``"test/accuracy"``).
      level: the interval's coverage.
    """
    out = {}
    for group, runs in groups.items():
        done = [r for r in runs if r.finished]
        out[group] = {k: describe([r.results.get(k) for r in done], [r.seed for r in done], level) for k in keys}
    return out


def steady_steps_per_sec(metrics: Sequence[Mapping[str, Any]]) -> float:
    """Training speed after compilation: the median ``train/steps_per_sec`` of the log windows
    after the first (the first window includes compiling the train step).

    Returns NaN when the log holds fewer than 2 windows.
    """
    rates = curve(metrics, "train/steps_per_sec")[1]
    return float(np.median(rates[1:])) if rates.size > 1 else float("nan")


def first_window_overhead(metrics: Sequence[Mapping[str, Any]]) -> float:
    """Seconds the first log window took beyond its steps at the steady speed: an estimate of
    compile and start-up time, ``s1 / r1 - s1 / steady`` (``s1`` steps at ``r1`` steps/s).

    Returns NaN when the log holds fewer than 2 windows.
    """
    steps, rates = curve(metrics, "train/steps_per_sec")
    steady = steady_steps_per_sec(metrics)
    if math.isnan(steady) or rates[0] <= 0 or steady <= 0:
        return float("nan")
    return float(steps[0] / rates[0] - steps[0] / steady)
