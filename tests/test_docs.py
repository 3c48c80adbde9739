"""The README's and docs/api.md's examples run as written and print what they claim."""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import re

import pytest

from tests import committed

ROOT = pathlib.Path(__file__).resolve().parents[1]

EXAMPLES = [
    # (file, the heading the example sits under, what its last line prints)
    ("README.md", "## The library in ten lines", "(4, 10, 32) (4, 32)"),
    ("docs/api.md", "## An example that runs as written",
     "(3, 10, 16) (10, 32) ['candidate', 'reset', 'update']"),
]


def python_block(path: pathlib.Path, heading: str) -> str:
    """The first ```python block after ``heading`` in a Markdown file."""
    text = path.read_text()
    start = text.find(heading + "\n")
    assert start >= 0, f"{path.name} has no heading {heading!r}"
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, f"{path.name} has no python block under {heading!r}"
    return match.group(1)


@pytest.mark.parametrize("name,heading,printed", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_runs_as_written(name, heading, printed):
    code = python_block(ROOT / name, heading)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, name, "exec"), {"__name__": "__example__"})
    assert out.getvalue().strip() == printed


def test_unroll_targets_table_in_performance_md_is_made_from_the_committed_json():
    # The issue-22 targets table of docs/performance.md equals what benchmarks.unroll makes of its JSON
    from benchmarks import unroll

    results = json.loads((ROOT / "benchmarks" / "results" / "unroll_cpu.json").read_text())
    assert committed.block("performance.md", "targets") == unroll.targets_markdown(results).strip()


def test_compile_ratios_table_in_performance_md_is_made_from_the_committed_json():
    # The compile-time trade of docs/performance.md equals what benchmarks.compile_time makes of its JSON
    from benchmarks import compile_time

    results = json.loads((ROOT / "benchmarks" / "results" / "compile_time.json").read_text())
    assert committed.block("performance.md", "compile-ratios") == compile_time.ratios_markdown(results).strip()


def test_eager_table_in_performance_md_is_made_from_the_committed_json_and_api_md_quotes_it_right():
    # docs/performance.md's eager-vs-jit table equals what benchmarks.eager makes of its JSON, and the API
    # guide's "hundreds of times" holds for every sequential backend in it (the parallel one is not claimed)
    from benchmarks import eager

    results = json.loads((ROOT / "benchmarks" / "results" / "eager_cpu.json").read_text())
    assert committed.block("performance.md", "eager") == eager.table(results).strip()
    assert "costs hundreds of times the compiled call" in " ".join((ROOT / "docs" / "api.md").read_text().split())
    sequential = [row for row in results["rows"] if row["backend"] in ("fused", "reference")]
    assert sequential and all(100 <= row["median_s"]["eager"] / row["median_s"]["jit"] < 1000 for row in sequential)


def test_eager_benchmark_measures_both_calls():
    # The benchmark's measurement on one case, so that it never rots (a tiny, untimed check)
    from benchmarks import eager

    (row,) = eager.measure(1, cases=(("gru", "reference"),))
    assert set(row["first_s"]) == set(row["median_s"]) == {"eager", "jit"}
    assert all(seconds > 0 for seconds in row["median_s"].values())


def test_the_benchmarks_last_compile_setting_is_the_test_suites():
    # The flags the tests compile with (tests/session.py) are the ones the compile-time benchmark measured
    from benchmarks import compile_time
    from tests import session

    measured = json.loads((ROOT / "benchmarks" / "results" / "compile_time.json").read_text())["settings"]
    suite = " ".join(f"--{name}={value}" for name, value in session.FAST_COMPILE.items())
    assert list(compile_time.SETTINGS.values())[-1] == suite
    assert list(measured)[-1] in compile_time.SETTINGS and compile_time.SETTINGS[list(measured)[-1]] == suite


PAGES = sorted({p.relative_to(ROOT).as_posix() for pattern in ("*.md", "docs/**/*.md", "studies/**/*.md", "benchmarks/**/*.md")
                for p in ROOT.glob(pattern)})


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_a_page_embeds_or_links_is_committed(page):
    # Given a Markdown page, When its images and links to local files are read, Then each names a file that exists
    text = (ROOT / page).read_text()
    targets = re.findall(r"\]\(((?!https?://|#)[^)\s]+)\)", text)
    missing = [t for t in targets if not ((ROOT / page).parent / t.split("#")[0]).exists()]
    assert not missing, f"{page} names files that are not committed: {missing}"
