"""rnnlab.experiments.plan: searches run in lanes, a variant's grid around its family's best, resumption."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from rnnlab.experiments import plan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "negation.py")

PLAN = textwrap.dedent(f'''
    from rnnlab.experiments.plan import Search, around

    def get_plan():
        return [
            Search("family", "{CONFIG}:smoke", "valid/accuracy:max",
                   "optim.learning_rate=grid(0.01)", trials=1, seeds=0),
            Search("variant", "{CONFIG}:smoke,cell=gru", "valid/accuracy:max",
                   around("family", factors=(0.5, 2.0)), trials=5, seeds=1, after=("family",)),
        ]
''')


def _search(out, name):
    with open(os.path.join(out, name, "search.json")) as f:
        return json.load(f)


@pytest.mark.slow
def test_two_lanes_run_a_variant_around_its_family(tmp_path):
    # Given a plan whose second search (lane 1) waits for the first (lane 0) and reads its best rate
    path = tmp_path / "plan.py"
    path.write_text(PLAN)
    out = str(tmp_path / "out")
    env = {**os.environ, "PYTHONPATH": ROOT}
    # When both lanes run at once
    lanes = [subprocess.Popen([sys.executable, "-m", "rnnlab", "plan", str(path), f"--out={out}", f"--lane={i}",
                               "--lanes=2", "--poll=0.5"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in (0, 1)]
    errors = [lane.communicate(timeout=600)[1].decode()[-2000:] for lane in lanes]
    assert [lane.returncode for lane in lanes] == [0, 0], errors
    # Then the variant ran exactly the grid x0.5, x2 around the family's rate, then its seed
    rates = sorted(t["params"]["optim.learning_rate"] for t in _search(out, "variant")["trials"])
    assert rates == pytest.approx([0.005, 0.02])
    assert all(s["results"] for s in _search(out, "variant")["seeds"])
    # and both count as done; the status says so
    items = plan.load_plan(str(path))
    assert plan.status(items, out) == [("family", "done"), ("variant", "done")]
    # and a rerun of a lane finds nothing left to do
    assert plan.run_lane(items, out, lane=0, lanes=2, poll=0.1) == []


def test_failed_dependency_skips_its_dependants(tmp_path, monkeypatch):
    # Given a family search that fails (every trial pruned, say)
    items = [plan.Search("family", "x.py", "valid/mse:min", "optim.learning_rate=grid(0.01)", trials=1),
             plan.Search("variant", "x.py", "valid/mse:min", plan.around("family"), trials=3, after=("family",))]

    def failing(out, item, **options):
        os.makedirs(os.path.join(out, item.name), exist_ok=True)
        with open(os.path.join(out, item.name, plan.FAILED_FILE), "w") as f:
            f.write("no trial completed\n")
        return False

    monkeypatch.setattr(plan, "run_item", failing)
    # When one lane runs both
    failed = plan.run_lane(items, str(tmp_path), poll=0.01)
    # Then the variant is skipped as failed instead of waiting for ever
    assert failed == ["family", "variant"]
    assert plan.status(items, str(tmp_path))[0] == ("family", "failed")


def _plan_file(path, *searches: str) -> str:
    """Writes a plan file at ``path`` whose ``get_plan()`` returns ``searches`` (Python expressions)."""
    path.write_text("from rnnlab.experiments.plan import Search\n"
                    "def get_plan():\n"
                    f"    return [{', '.join(searches)}]\n")
    return str(path)


def test_plan_errors(tmp_path):
    search = "Search('a', 'x.py', 'valid/mse:min', 'optim.learning_rate=grid(1.0)', trials=1{})"
    with pytest.raises(ValueError, match="duplicate"):
        plan.load_plan(_plan_file(tmp_path / "dup.py", search.format(""), search.format("")))
    with pytest.raises(ValueError, match="unknown dependencies"):
        plan.load_plan(_plan_file(tmp_path / "missing.py", search.format(", after=('b',)")))
    assert [item.name for item in plan.load_plan(_plan_file(tmp_path / "one.py", search.format("")))] == ["a"]
    with pytest.raises(ValueError, match="lane"):
        plan.run_lane([], str(tmp_path), lane=2, lanes=2)


def test_a_plan_whose_searches_wait_for_each_other_is_refused_at_load(tmp_path):
    # Given plans whose `after` lists form a cycle, or name the search itself
    search = "Search('{}', 'x.py', 'valid/mse:min', 'optim.learning_rate=grid(1.0)', trials=1, after={})"
    cyclic = _plan_file(tmp_path / "cycle.py", search.format("a", "('b',)"), search.format("b", "('c',)"),
                        search.format("c", "('a',)"), search.format("d", "('a',)"))
    itself = _plan_file(tmp_path / "self.py", search.format("a", "('a',)"))
    # Then loading them fails at once, naming the cycle (they used to wait for ever without a log line)
    with pytest.raises(ValueError, match="cycle, a -> b -> c -> a"):
        plan.load_plan(cyclic)
    with pytest.raises(ValueError, match="cycle, a -> a"):
        plan.load_plan(itself)
    # and the command says so in one line
    run = subprocess.run([sys.executable, "-m", "rnnlab", "plan", itself, f"--out={tmp_path / 'out'}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1].startswith("rnnlab plan: plan")


def _with_best(out, name, rate):
    """Writes the ``search.json`` of a finished search ``OUT/<name>`` whose best learning rate is ``rate``."""
    os.makedirs(os.path.join(out, name))
    with open(os.path.join(out, name, "search.json"), "w") as f:
        json.dump({"best": {"params": {"optim.learning_rate": rate}}, "seeds": []}, f)


def test_bracket_keeps_an_inside_best_and_extends_past_an_edge(tmp_path):
    grid = (1e-3, 1e-2, 1e-1)
    out = str(tmp_path)
    for name, rate in [("inside", 1e-2), ("top", 1e-1), ("bottom", 1e-3)]:
        _with_best(out, name, rate)
    # A best inside the grid is taken alone; at an edge, two more values beyond it join it
    assert plan.bracket("inside", grid)(out) == "optim.learning_rate=grid(0.01)"
    top = plan.bracket("top", grid)(out)
    assert top.startswith("optim.learning_rate=grid(")
    assert [float(v) for v in top[len("optim.learning_rate=grid("):-1].split(",")] == pytest.approx([0.1, 0.3, 0.9])
    bottom = plan.bracket("bottom", grid, factor=10.0)(out)
    assert [float(v) for v in bottom[len("optim.learning_rate=grid("):-1].split(",")] == pytest.approx(
        [1e-5, 1e-4, 1e-3])
    with pytest.raises(ValueError, match="no completed trial"):
        os.makedirs(os.path.join(out, "empty"))
        with open(os.path.join(out, "empty", "search.json"), "w") as f:
            json.dump({"best": None}, f)
        plan.bracket("empty", grid)(out)
