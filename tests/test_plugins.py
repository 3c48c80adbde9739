"""A researcher's own work, with no edit to rnnlab: ``config.plugins``, configs from anywhere, one-line errors.

A plugin file written in a temporary folder outside the repository registers a
cell (JANET: an LSTM with a forget gate only, van der Westhuizen & Lasenby 2018)
and a dataset; it then runs through ``launch.py`` started from another working
directory, ``rnnlab sweep``, ``rnnlab search`` (2 trials, each a child process)
and ``rnnlab predict``, each importing the plugin from the config alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import ml_collections
import pytest

import rnnlab
import rnnlab.data
from rnnlab.training import config_files
from rnnlab.training.checks import SetupPhase, error_line, is_setup_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEGATION = os.path.join(ROOT, "configs", "negation.py")

PLUGIN = textwrap.dedent('''
    """A user's cell and dataset, outside rnnlab."""
    import dataclasses

    import jax
    import jax.numpy as jnp
    import numpy as np

    import rnnlab
    import rnnlab.data
    from rnnlab.data.registry import GeneratedOptions, token_features, vocab_fields

    IMPORTS = globals().setdefault("IMPORTS", 0) + 1


    def janet_step(dot, vecs, carry, px):
        """JANET: c = f * c + (1 - f) * tanh(candidate); h = c."""
        h, c = carry
        z_f, z_g = dot(h, (0, 1))
        f = jax.nn.sigmoid(px[0] + z_f + 1.0)
        c = f * c + (1.0 - f) * jnp.tanh(px[1] + z_g)
        return rnnlab.LSTMState(c, c), c, {"forget": f}


    JANET = rnnlab.CellDef(name="my_janet", blocks=("forget", "candidate"), gate_names=("forget",),
                           equations=janet_step, carry_type=rnnlab.LSTMState)


    def my_janet(hidden_size, dtype=jnp.float32):
        return rnnlab.build_cell(JANET, hidden_size, dtype=dtype)


    rnnlab.register_cell("my_janet", my_janet)

    WORDS = ("<pad>", "<unk>", "yes", "a", "b", "c", "d")


    @rnnlab.data.register
    class Keyword(rnnlab.data.Dataset):
        """Label 1 when the word "yes" occurs in a sequence of random words."""

        name = "my_keyword"
        Options = GeneratedOptions
        task = "classify"
        input_kind = "tokens"

        def features(self, options):
            return token_features(per_step_targets=False)

        def generate(self, options):
            def draw(rng):
                n = int(rng.integers(3, 12))
                ids = rng.integers(3, len(WORDS), n)
                label = int(rng.random() < 0.5)
                if label:
                    ids[rng.integers(n)] = 2
                return {"inputs": ids.astype(np.int32), "length": n, "targets": label}
            return options.draw_splits(0, draw), {"vocab": list(WORDS)}

        def describe(self, options, metadata):
            return vocab_fields(metadata["vocab"], num_outputs=2)
''')


@pytest.fixture(scope="module")
def plugin_home(tmp_path_factory):
    """A folder outside the repository holding the plugin, and a working directory elsewhere."""
    home = tmp_path_factory.mktemp("researcher")
    (home / "my_janet.py").write_text(PLUGIN)
    (home / "elsewhere").mkdir()
    return home


def _spec(home, extra: str = "") -> str:
    """The negation config, smoke-sized, on the plugin's cell and dataset."""
    return f"{NEGATION}:smoke,plugins={home / 'my_janet.py'},cell=my_janet,dataset=my_keyword{extra}"


def _run(args, cwd, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as a user runs it
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600, **kwargs)


@pytest.mark.slow
def test_plugin_runs_through_launch_predict_sweep_and_search(plugin_home, tmp_path):
    data = f"--config.data.data_dir={tmp_path / 'data'}"
    # Given a plugin outside the repository, When launch.py runs it from another working directory
    run = tmp_path / "run"
    done = _run([os.path.join(ROOT, "launch.py"), f"--config={_spec(plugin_home)}", f"--workdir={run}", data],
                cwd=plugin_home / "elsewhere")
    # Then it trains on the plugin's cell and dataset, and config.json records the plugin's absolute path
    assert done.returncode == 0, done.stderr[-3000:]
    saved = json.loads((run / "config.json").read_text())
    assert saved["plugins"] == str(plugin_home / "my_janet.py")
    assert saved["model"]["cell"] == "my_janet" and saved["data"]["name"] == "my_keyword"
    # When predict serves the run from yet another folder, with no flag naming the plugin
    done = _run(["-m", "rnnlab", "predict", f"--workdir={run}"], cwd=tmp_path, input="yes a b\nc d\n")
    # Then it imports the plugin from config.json and answers each line
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["tokens"] for r in records] == [["yes", "a", "b"], ["c", "d"]]
    # When a sweep runs the same spec over a seed
    done = _run(["-m", "rnnlab", "sweep", _spec(plugin_home), "--seeds=1", f"--out={tmp_path / 'sweep'}",
                 data.replace("--config.data.data_dir", "--also=data.data_dir")], cwd=plugin_home / "elsewhere")
    assert done.returncode == 0, done.stderr[-3000:]
    sweep_runs = [p for p in (tmp_path / "sweep").iterdir() if p.is_dir()]
    assert len(sweep_runs) == 1 and (sweep_runs[0] / "results.json").is_file()
    # When a search runs 2 trials, each trial a child process of the worker
    search = ["-m", "rnnlab", "search", _spec(plugin_home, f",data.data_dir={tmp_path / 'data'}"),
              "--space=optim.learning_rate=loguniform(1e-3,1e-2)", "--metric=valid/accuracy:max",
              "--trials=2", "--seeds=0", f"--out={tmp_path / 'search'}"]
    done = _run(search, cwd=plugin_home / "elsewhere")
    # Then the worker finishes and every trial trained the plugin's cell
    assert done.returncode == 0, done.stderr[-3000:]
    trial_configs = list((tmp_path / "search").rglob("config.json"))
    assert len(trial_configs) == 2
    assert {json.loads(p.read_text())["model"]["cell"] for p in trial_configs} == {"my_janet"}


def test_plugin_import_is_idempotent_and_registration_may_repeat(plugin_home):
    # Given the plugin imported by its path twice, spelt differently
    path = str(plugin_home / "my_janet.py")
    first = config_files.import_plugins(path)
    again = config_files.import_plugins(f" {path} ,")
    # Then it was executed once, and its cell and dataset are known
    assert first == again and first[0].IMPORTS == 1
    assert "my_janet" in rnnlab.cell_names()
    assert "my_keyword" in rnnlab.data.dataset_names()
    # When the same definition registers again (a notebook cell run twice), Then it is no error
    rnnlab.register_cell("my_janet", first[0].my_janet)
    # But another constructor under the same name is refused, naming who holds it
    with pytest.raises(ValueError, match="already registered by"):
        rnnlab.register_cell("my_janet", lambda hidden_size, **o: rnnlab.lstm(hidden_size))


def test_plugin_errors_name_the_entry(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.plugins: no file"):
        config_files.import_plugins(str(tmp_path / "missing.py"))
    with pytest.raises(ModuleNotFoundError, match="config.plugins: no module named 'no_such_plugin_module'"):
        config_files.import_plugins("no_such_plugin_module")
    with pytest.raises(ValueError, match="config.plugins must be"):
        config_files.plugin_list(3)


def test_resolved_plugins_are_absolute_and_leave_the_config_unchanged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ml_collections.ConfigDict({"plugins": "my_cells.py, my_pkg.data", "train": {"seed": 0}})
    resolved = config_files.with_resolved_plugins(config)
    assert resolved.plugins == f"{tmp_path / 'my_cells.py'},my_pkg.data"
    assert config.plugins == "my_cells.py, my_pkg.data"
    no_plugins = ml_collections.ConfigDict({"train": {"seed": 0}})
    assert config_files.with_resolved_plugins(no_plugins) is no_plugins


def test_config_loads_from_any_working_directory(tmp_path, monkeypatch):
    # Given a working directory outside the repository
    monkeypatch.chdir(tmp_path)
    # Then a repository config loads by its path, variants applied
    config = config_files.load_config(os.path.join(ROOT, "configs", "negation.py"), "cell=gru,smoke")
    assert config.model.cell == "gru" and config.train.num_steps == 6
    assert config_files.config_root(os.path.join(ROOT, "configs", "negation.py")) == ROOT
    # And a user's own config file outside any package may import the checkout's configs.default
    own = tmp_path / "my_config.py"
    own.write_text("from configs import default\n\ndef get_config(arg=None):\n"
                   "    config = default.get_config()\n    config.model.cell = 'gru'\n    return config\n")
    assert config_files.load_config(str(own)).model.cell == "gru"
    with pytest.raises(FileNotFoundError, match="config file not found"):
        config_files.load_config(str(tmp_path / "nope.py"))


def test_variant_sets_plugins_and_loading_imports_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_variant_plugin.py").write_text("LOADED = True\n")
    config = config_files.load_config(NEGATION, "plugins=my_variant_plugin.py,cell=gru")
    assert config.plugins == "my_variant_plugin.py" and config.model.cell == "gru"
    assert sys.modules["my_variant_plugin"].LOADED


def test_setup_errors_are_marked_only_before_done():
    with pytest.raises(ValueError) as caught, SetupPhase():
        raise ValueError("config.model.cell: unknown cell 'x'")
    assert is_setup_error(caught.value)
    with pytest.raises(ValueError) as caught, SetupPhase() as setup:
        setup.done()
        raise ValueError("a bug while training")
    assert not is_setup_error(caught.value)
    # ml_collections raises KeyError(repr(message)) for a misspelt field: one line, the repr undone
    assert error_line(KeyError(repr("'cel'\nDid you mean \"cell\"?"))) == "'cel' Did you mean \"cell\"?"


@pytest.mark.parametrize("flag, expected", [  # (an unknown cell and a misspelt field: the docs' errors, below)
    ("--config.foo.bar=1", "rnnlab launch: --config.foo.bar: no such config field 'foo'"),
    ("--config.data.batch_size=-1", "rnnlab launch: config.data.batch_size must be a positive integer, got -1"),
])
def test_launch_error_is_one_line_and_creates_no_workdir(tmp_path, flag, expected):
    workdir = tmp_path / "run"
    done = _run([os.path.join(ROOT, "launch.py"), f"--config={NEGATION}:smoke", f"--workdir={workdir}",
                 f"--config.data.data_dir={tmp_path / 'data'}", flag], cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(expected), done.stderr[-2000:]
    assert not workdir.exists()


def test_launch_error_shows_the_traceback_with_verbosity(tmp_path):
    done = _run([os.path.join(ROOT, "launch.py"), f"--config={NEGATION}:smoke", f"--workdir={tmp_path / 'run'}",
                 "--config.model.cell=lstmm", "--verbosity=1"], cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" in done.stderr


def test_user_launcher_in_its_own_folder_runs_a_repository_config(tmp_path):
    # Given a launcher of the user's own, in their folder, that parses the repository's config
    (tmp_path / "my_launch.py").write_text(textwrap.dedent("""
        from absl import app
        from rnnlab.commands.common import config_flag, parse_flags_or_exit
        CONFIG = config_flag("config", "config file")
        def main(argv):
            print("cell", CONFIG.value.model.cell, "steps", CONFIG.value.train.num_steps)
        app.run(main, flags_parser=parse_flags_or_exit("my_launch"))
    """))
    # When it runs from there with the repository's nested config
    done = _run(["my_launch.py", f"--config={ROOT}/configs/negation.py:smoke,cell=gru"], cwd=tmp_path)
    # Then the config loads (its `from configs import default` resolves)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cell gru steps 6" in done.stdout


@pytest.mark.slow
def test_error_lines_in_docs_are_what_launch_prints(tmp_path):
    # Given the one-line errors that docs/training.md quotes, each with the flag that causes it
    with open(os.path.join(ROOT, "docs", "training.md")) as f:
        quoted = [line.rstrip("\n") for line in f if line.startswith("rnnlab launch: ")]
    causes = {"config.model.cell:": ["--config=configs/negation.py:smoke", "--config.model.cell=lstmm"],
              "--config.model.cel:": ["--config=configs/negation.py:smoke", "--config.model.cel=gru"],
              "flag --config=": ["--config=configs/negation.py:cel=gru"]}
    assert len(quoted) == len(causes)
    for line in quoted:
        flags = next(v for k, v in causes.items() if line.startswith(f"rnnlab launch: {k}"))
        # When launch.py runs with it from the repository root
        done = _run(["launch.py", *flags, f"--workdir={tmp_path / 'run'}"], cwd=ROOT)
        # Then its last line is exactly the quoted one, with no traceback, and no workdir was made
        assert done.returncode == 1 and done.stderr.strip().splitlines()[-1] == line
        assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()
