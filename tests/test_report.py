"""Tests of rnnlab.analysis.report on small fake run directories (no training)."""

import json
import os
import sys

import numpy as np
import pytest

from rnnlab.analysis import plots, report, stats
from rnnlab.analysis import significance


def _write_run(root, name, seed, accuracy, curve, finished=True, torn=False):
    workdir = os.path.join(root, f"{name}__seed{seed}")
    os.makedirs(workdir)
    json.dump({"train": {"seed": seed}, "model": {"cell": name}}, open(os.path.join(workdir, "config.json"), "w"))
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        for step, value in curve:
            f.write(json.dumps({"step": step, "valid/accuracy": value, "train/steps_per_sec": 10.0 + seed}) + "\n")
        if torn:
            f.write('{"step": 99, "valid/acc')
    if finished:
        results = {"test": {"accuracy": accuracy, "loss": 1.0 - accuracy}, "num_params": 1234, "note": "text"}
        json.dump(results, open(os.path.join(workdir, "results.json"), "w"))
    return workdir


@pytest.fixture
def runs(tmp_path):
    root = str(tmp_path / "runs")
    dirs = [
        _write_run(root, "lstm", 0, 0.90, [(10, 0.5), (20, 0.8), (30, 0.9)]),
        _write_run(root, "lstm", 1, 0.80, [(10, 0.6), (20, 0.7), (30, 0.8)], torn=True),
        _write_run(root, "gru", 0, 0.70, [(10, 0.5), (20, 0.6)]),
        _write_run(root, "gru", 1, 0.0, [(10, 0.5)], finished=False),
    ]
    return dirs


def test_load_run_flattens_results_and_drops_torn_metric_line(runs):
    run = stats.load_run(runs[1])
    assert (run.group, run.seed, run.finished) == ("lstm", 1, True)
    assert run.results == {"test/accuracy": 0.80, "test/loss": pytest.approx(0.2), "num_params": 1234}
    assert [m["step"] for m in run.metrics] == [10, 20, 30]
    assert not stats.load_run(runs[3]).finished
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        stats.load_run(os.path.join(runs[0], "missing"))


def test_summarize_mean_and_sample_std_over_finished_seeds(runs):
    groups = stats.group_runs(stats.load_run(w) for w in runs)
    assert list(groups) == ["lstm", "gru"]
    summary = stats.summarize(groups, ["test/accuracy"])
    mean, std, n = summary["lstm"]["test/accuracy"]
    assert (mean, n) == (pytest.approx(0.85), 2)
    assert std == pytest.approx(np.std([0.9, 0.8], ddof=1))
    assert summary["gru"]["test/accuracy"] == (pytest.approx(0.7), 0.0, 1)  # the unfinished seed is left out


def test_mean_std_ignores_nan_and_handles_empty():
    assert significance.mean_std([1.0, float("nan"), 3.0]) == (2.0, pytest.approx(np.sqrt(2.0)), 2)
    mean, _, n = significance.mean_std([])
    assert np.isnan(mean) and n == 0
    assert stats.format_mean_std((0.5, 0.01, 3)) == "0.500 +- 0.010"
    assert stats.format_mean_std((float("nan"), float("nan"), 0)) == "-"


def test_first_step_reaching_both_directions():
    metrics = [{"step": 1, "mse": 0.5}, {"step": 2}, {"step": 3, "mse": 0.04}, {"step": 4, "mse": 0.01}]
    assert stats.first_step_reaching(metrics, "mse", 0.05, mode="min") == 3
    assert stats.first_step_reaching(metrics, "mse", 0.001, mode="min") is None
    assert stats.first_step_reaching(metrics, "mse", 0.4, mode="max") == 1
    with pytest.raises(ValueError, match="mode"):
        stats.first_step_reaching(metrics, "mse", 0.1, mode="up")


def test_train_seconds_to_step_sums_windows():
    metrics = [{"step": 10, "train/steps_per_sec": 5.0}, {"step": 10, "valid/accuracy": 0.5},
               {"step": 20, "train/steps_per_sec": 10.0}, {"step": 40, "train/steps_per_sec": 20.0}]
    assert stats.train_seconds_to_step(metrics, 10) == pytest.approx(2.0)
    assert stats.train_seconds_to_step(metrics, 20) == pytest.approx(3.0)
    assert stats.train_seconds_to_step(metrics, 40) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="stops at step 40"):
        stats.train_seconds_to_step(metrics, 50)


def test_saturation_fractions():
    s = stats.saturation(np.array([0.01, 0.05, 0.5, 0.95, 0.99, 0.999, 0.3, 0.2]))
    assert s == {"near_0": 0.25, "near_1": 0.375, "middle": pytest.approx(0.375)}
    with pytest.raises(ValueError):
        stats.saturation(np.array([]))


def test_markdown_table_shape():
    table = stats.markdown_table(["a", "b"], [[1, 2], [3, 4]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |", "| 3 | 4 |"]


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_write_report_writes_tables_and_figures(runs, tmp_path):
    out = str(tmp_path / "results" / "toy")
    result = report.write_report(runs, out, gates=False)
    assert {os.path.basename(p) for p in result["figures"]} == {"curves.png", "bars.png"}
    assert "matplotlib.pyplot" not in sys.modules or not __import__("matplotlib.pyplot").pyplot.get_fignums()
    assert all(_is_png(p) for p in result["figures"])
    md = open(os.path.join(out, "summary.md")).read()
    assert "| lstm | 2 | 0.850 +- 0.071 |" in md
    assert "| gru | 1 | 0.700 +- 0.000 |" in md
    saved = json.load(open(os.path.join(out, "summary.json")))
    assert saved["timing"]["lstm"]["params"] == "1234"
    # each seed's value and the 95% t-interval of the mean: 0.85 -+ 12.706 * 0.0707 / sqrt(2)
    lstm = saved["per_seed"]["lstm"]["test/accuracy"]
    assert (lstm["seeds"], lstm["values"], lstm["n"]) == ([0, 1], [0.9, 0.8], 2)
    assert lstm["ci"] == pytest.approx([0.85 - 12.7062 * 0.05, 0.85 + 12.7062 * 0.05], abs=1e-3)
    assert saved["per_seed"]["gru"]["test/accuracy"]["values"] == [0.7]  # the unfinished seed has no value
    assert "| lstm | 0, 1 | 0.900, 0.800 [0.215, 1.485] |" in md
    assert saved["timing"]["lstm"]["steps_per_sec"][0] == pytest.approx(10.5)


def test_target_table_counts_seeds_steps_and_seconds(runs):
    groups = stats.group_runs(stats.load_run(w) for w in runs)
    md, data = stats.target_table(groups, "valid/accuracy>=0.8")
    assert (data["lstm"]["reached"], data["lstm"]["seeds"]) == (2, 2)
    assert data["lstm"]["step"][:2] == (25.0, pytest.approx(np.std([20, 30], ddof=1)))
    assert data["lstm"]["per_seed"] == {"seeds": [0, 1], "steps": [20, 30],
                                        "seconds": [pytest.approx(2.0), pytest.approx(30 / 11.0)]}
    assert (data["gru"]["reached"], data["gru"]["seeds"]) == (0, 1)
    assert "| gru | 0/1 | - | - |" in md
    assert stats.parse_target("valid/mse<=0.01") == ("valid/mse", "min", 0.01)
    with pytest.raises(ValueError, match="METRIC"):
        stats.parse_target("valid/mse=0.01")


def test_gate_plots_return_figures_and_write_pngs(tmp_path):
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    words = ["the", "film", "is", "not", "good"]
    gates = {"forget": rng.uniform(size=(5, 8)), "candidate": rng.uniform(-1, 1, size=(5, 8))}
    heat = plots.plot_gate_heatmap(gates, words, str(tmp_path / "heat.png"), title="x")
    hist = plots.plot_gate_histograms({"lstm": rng.uniform(size=100)}, str(tmp_path / "hist.png"))
    assert isinstance(heat, Figure) and len(heat.axes) == 4  # two panels, each with its colour bar
    assert isinstance(hist, Figure)
    assert _is_png(str(tmp_path / "heat.png")) and _is_png(str(tmp_path / "hist.png"))
    # Word labels upright-rotated at 9 points, with room enough that two never overlap
    long_words = [f"word{i}" for i in range(40)]
    wide = plots.plot_gate_heatmap({"forget": rng.uniform(size=(40, 8))}, long_words)
    wide.canvas.draw()
    labels = wide.axes[0].get_xticklabels()
    assert all(t.get_fontsize() >= 9 and t.get_rotation() == 90 for t in labels)
    boxes = [t.get_window_extent() for t in labels]
    assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:]))
    shown = plots.plot_gate_heatmap(gates, words)  # no path: a figure for a notebook, no file
    assert isinstance(shown, Figure) and sorted(os.listdir(tmp_path)) == ["heat.png", "hist.png"]
    with pytest.raises(ValueError, match="6 words"):
        plots.plot_gate_heatmap(gates, words + ["!"], str(tmp_path / "bad.png"))


def test_quiet_sets_absl_to_warning_and_turns_tfds_bars_off():
    from absl import logging
    from tensorflow_datasets.core.utils import tqdm_utils

    before = logging.get_verbosity()
    try:
        tqdm_utils.enable_progress_bar()
        logging.set_verbosity(logging.INFO)
        report.quiet()
        assert logging.get_verbosity() == logging.WARNING
        assert isinstance(tqdm_utils.tqdm(range(3)), tqdm_utils.EmptyTqdm)
    finally:
        logging.set_verbosity(before)
        tqdm_utils.enable_progress_bar()


def test_report_cli_with_run_directories(runs, tmp_path):
    import subprocess

    out = str(tmp_path / "cli")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "rnnlab", "report", *runs, f"--out={out}", "--nogates"],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| lstm | 2 | 0.850 +- 0.071 |" in done.stdout
    assert {"summary.md", "summary.json", "curves.png", "bars.png"} <= set(os.listdir(out))


def test_seed_bars_clip_intervals_to_the_metric_range_and_label_reference_lines():
    from rnnlab.analysis import plots

    # Given accuracies near 1 over 3 seeds (a t-interval far above 1) and an mse panel
    panels = {"negation": {"cell=lstm": np.array([1.0, 0.5, 1.0]), "cell=gru": np.array([0.9, 1.0, 0.95])},
              "adding": {"cell=lstm": np.array([0.01, 0.02, 0.015])}}
    fig = plots.plot_seed_bars(panels, None, {"negation": "test/accuracy", "adding": "test/mse"},
                               lines={"negation": {"chance": 0.5}}, labels={"cell=lstm": "LSTM"},
                               colors={"cell=lstm": "tab:red", "cell=gru": "tab:green"})
    accuracy, mse = fig.axes[:2]
    # Then the accuracy axis stays in [0, 1] (plus a margin) and no whisker leaves it
    assert accuracy.get_ylim()[0] == 0.0 and accuracy.get_ylim()[1] <= 1.02
    whiskers = [seg for c in accuracy.collections for seg in c.get_segments()]
    assert whiskers and all(0.0 <= y <= 1.0 for seg in whiskers for _, y in seg)
    assert min(y for seg in [s for c in mse.collections for s in c.get_segments()] for _, y in seg) >= 0.0
    # And the labels are the human ones, the reference line is in a legend, text is at least 9 points
    assert [t.get_text() for t in accuracy.get_xticklabels()] == ["LSTM", "gru"]
    assert [t.get_text() for t in accuracy.texts] == ["chance"]
    assert all(t.get_fontsize() >= 9 for t in accuracy.get_xticklabels() + accuracy.get_yticklabels())
    assert "t-interval" in fig._suptitle.get_text()  # the caption defines the error bars
    # And each model's bar has its colour, the same in every panel
    import matplotlib.colors as mcolors

    bars = lambda ax: [mcolors.to_hex(p.get_facecolor(), keep_alpha=False) for p in ax.patches]  # noqa: E731
    assert bars(accuracy) == [mcolors.to_hex("tab:red"), mcolors.to_hex("tab:green")]
    assert bars(mse) == [mcolors.to_hex("tab:red")]


def test_trials_plot_gives_a_model_one_colour_in_every_panel_and_its_legend_off_the_data():
    import matplotlib.colors as mcolors

    from rnnlab.analysis import plots

    panels = {"adding": {"cell=lstm": {"trials": [(1e-3, 0.2, True), (1e-2, 0.01, False)], "seeds": [(1e-2, 0.02)]},
                         "cell=gru": {"trials": [(1e-3, 0.1, True)]}},
              "copy": {"cell=gru": {"trials": [(3e-3, 0.9, True)], "seeds": [(3e-3, 0.95)]}}}
    fig = plots.plot_trials_vs_param(panels, None, {"adding": "mse", "copy": "accuracy"})
    adding, copy = fig.axes[:2]
    colour = lambda line: mcolors.to_hex(line.get_color())  # noqa: E731
    gru_adding = {colour(line) for line in adding.lines[3:]}
    assert gru_adding == {colour(line) for line in copy.lines}  # the GRU's colour in both panels
    assert {colour(line) for line in adding.lines[:3]}.isdisjoint(gru_adding)
    # One legend for the figure, none inside a panel; text of at least 9 points
    assert adding.get_legend() is None and copy.get_legend() is None and len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["lstm", "gru"]
    assert all(t.get_fontsize() >= 9 for t in fig.legends[0].get_texts() + adding.get_xticklabels())
    assert "validation" in fig._suptitle.get_text() and "test" in fig._suptitle.get_text()


def test_learning_curves_use_a_log_axis_only_over_a_decade():
    from rnnlab.analysis import plots

    steps = np.arange(1, 6)
    narrow = plots.plot_learning_curves({"nll": [(steps, np.linspace(9.5, 8.4, 5))]}, None, "valid/nll", logy=True)
    wide = plots.plot_learning_curves({"mse": [(steps, np.geomspace(0.2, 1e-4, 5))]}, None, "valid/mse", logy=True)
    assert narrow.axes[0].get_yscale() == "linear" and wide.axes[0].get_yscale() == "log"
    assert all(t.get_fontsize() >= 9 for t in narrow.axes[0].get_legend().get_texts())
