"""Every config file in configs/ and studies/ loads, builds its model and runs 2 training steps (smoke
variant); every plan file there loads, and so does the config of each of its searches.

Config files (defining ``get_config``) and plan files (``get_plan``) are
discovered by glob, so new ones are covered without editing this test.
Datasets read from files get small generated stand-ins.
"""

from __future__ import annotations

import functools
import glob
import importlib
import os

import jax
import numpy as np
import pytest
import scipy.io

import rnnlab.data
from rnnlab.training import models, tasks, train
from tests.test_user_data import write_sample_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _files_defining(name: str) -> list[str]:
    """The files under configs/ and studies/ (relative to the repository) that define the function ``name``
    (a study deleted from a fork has none)."""
    found = []
    paths = [p for folder in ("configs", "studies") for p in glob.glob(os.path.join(ROOT, folder, "**", "*.py"),
                                                                          recursive=True)]
    for path in (p for p in paths if os.sep + "tests" + os.sep not in p):  # a study's tests hold plans as text
        with open(path, encoding="utf-8") as f:
            if f"\ndef {name}(" in f.read():
                found.append(os.path.relpath(path, ROOT))
    return sorted(found)


CONFIG_FILES = _files_defining("get_config")
PLAN_FILES = _files_defining("get_plan")

def _load(path: str, arg: str):
    module = importlib.import_module(path[: -len(".py")].replace(os.sep, "."))
    if path == os.path.join("configs", "default.py"):
        config = module.get_config()
        module.smoke(config)
        return config
    return module.get_config(arg)


def _fake_piano_rolls(folder, filename):
    """A tiny .mat file with the Boulanger-Lewandowski layout (cell arrays of [T, 88] rolls)."""
    rng = np.random.default_rng(0)
    contents = {}
    for key in ("traindata", "validdata", "testdata"):
        cells = np.empty((1, 3), dtype=object)
        for i in range(3):
            cells[0, i] = (rng.random((int(rng.integers(5, 20)), 88)) < 0.1).astype(np.uint8)
        contents[key] = cells
    scipy.io.savemat(os.path.join(folder, filename), contents)


def _fake_trees(folder):
    """Tiny SST tree files: positive and negative sentences (labels 0..4 on every node)."""
    lines = ["(4 (3 a) (4 (4 great) (2 film)))", "(0 (1 a) (0 (0 awful) (2 film)))",
             "(3 (2 not) (3 bad))", "(1 (2 not) (1 (3 good) (2 enough)))"]
    for name in ("train.txt", "dev.txt", "test.txt"):
        with open(os.path.join(folder, name), "w") as f:
            f.write("\n".join(lines * 3) + "\n")


def _point_at_fake_files(config, tmp_path):
    """Sets data.path to generated stand-ins for datasets read from files."""
    if "path" not in config.data:
        return
    if write_sample_folder(config.data.name, str(tmp_path), config.data.get("task")):  # users' own files
        config.data.path = str(tmp_path)
        return
    if config.data.path is None:
        return
    dataset = rnnlab.data.get_dataset(config.data.name)
    filename = getattr(dataset, "filename", "")
    if filename:
        _fake_piano_rolls(str(tmp_path), filename)
    else:
        _fake_trees(str(tmp_path))
    config.data.path = str(tmp_path)


def test_configs_are_found():
    assert os.path.join("configs", "negation.py") in CONFIG_FILES
    assert os.path.join("configs", "default.py") in CONFIG_FILES
    assert all(path.startswith("studies" + os.sep) for path in PLAN_FILES)  # plans are studies' (none in configs/)


@pytest.mark.parametrize("path", PLAN_FILES)
def test_plan_loads_with_the_config_of_every_search(path):
    from rnnlab.experiments import plan, sweep

    for spec in dict.fromkeys(item.config for item in plan.load_plan(path)):  # each distinct config once
        config_path, _, arg = spec.partition(":")
        config = sweep.load_config(config_path, arg)
        train.check_config(config)


# Variants that change the task or the loss, run beside each file's default (path, variant argument).
@pytest.mark.parametrize("path", CONFIG_FILES)
def test_config_smoke_variant_builds_its_model_and_runs_two_steps(path, tmp_path):
    smoke_two_steps(path, "smoke", tmp_path)


def smoke_two_steps(path: str, arg: str, tmp_path) -> None:
    """Loads ``path`` with variants ``arg`` (which must shrink the run), builds its model, runs 2 train steps."""
    config = _load(path, arg)
    assert config.train.num_steps <= 50 and config.model.hidden_size <= 16, "smoke must shrink the run"
    config.data.data_dir = str(tmp_path / "tfds")
    _point_at_fake_files(config, tmp_path)
    train.check_config(config)
    spec = rnnlab.data.prepare(config.data)
    model = models.build_model(config.model, spec)
    tx = train.make_optimizer(config.optim, config.train.num_steps)
    loader = rnnlab.data.make_loader(config.data, "train", seed=0, shuffle=True, num_epochs=None)
    batch = next(loader)
    state = jax.jit(functools.partial(train.init_state, model, tx))(jax.random.PRNGKey(0), batch)
    mesh = train.make_mesh(1)
    train_fn, _ = train.compile_steps(model, tx, tasks.get_task(spec.task, config.train.loss_mask), mesh)
    for batch in [batch, next(loader)]:
        state, stats = train_fn(state, train.shard_batch(batch, mesh))
        assert np.isfinite(tasks.finalize(jax.device_get(stats))["loss"])
    assert int(state.step) == 2


def test_config_docstrings_show_a_launch_command():
    for path in CONFIG_FILES:
        module = importlib.import_module(path[: -len(".py")].replace(os.sep, "."))
        assert "python launch.py --config=" in (module.__doc__ or ""), path


def test_default_data_fields_are_the_defaults_of_the_datasets_options():
    # configs/default.py takes its data section from rnnlab.data's Options dataclasses: one source
    from configs import default
    from rnnlab.data.registry import read_options

    data = default.get_config().data
    dataset = rnnlab.data.get_dataset(data.name)
    defaults = {**vars(read_options(rnnlab.data.LoaderOptions, {})), **vars(dataset.options({})),
                **vars(read_options(rnnlab.data.chunking.ChunkOptions, {}))}
    fields = [f for f in data if f not in ("name", "path")]
    assert fields and {f: data[f] for f in fields} == {f: defaults[f] for f in fields}


def test_a_dataset_field_with_a_none_default_can_be_set_from_the_command_line(monkeypatch):
    # configs/default.data_fields gives a None default a placeholder of its type (here data.extra_train, a str):
    # ml_collections refuses to override a bare None from the command line
    import sys

    from absl import flags

    from rnnlab.commands.common import config_flag

    def parsed(*args):
        values = flags.FlagValues()
        config_flag("config", "the config", flag_values=values)
        argv = ["launch", f"--config={ROOT}/configs/sst.py:glue", *args]
        monkeypatch.setattr(sys, "argv", argv)  # ml_collections reads the overrides from sys.argv
        values(argv)
        return values.config

    assert parsed("--config.data.extra_train=my_sentences.tsv").data.extra_train == "my_sentences.tsv"
    config = parsed()
    assert config.data.extra_train is None
    with pytest.raises(TypeError):  # and the placeholder is typed: a str field refuses a number
        config.data.extra_train = 3


def test_a_tuple_variant_keeps_the_commas_inside_its_brackets():
    # "model.mlp_sizes=(150, 75)" is one item: split at every comma, it was "(150" and " 75)", an error
    from configs import default

    config = _load("configs/sst.py", "lstm,model.mlp_sizes=(150, 75),lr=3e-3")
    assert config.model.mlp_sizes == (150, 75) and config.optim.learning_rate == 3e-3
    assert _load("configs/sst.py", "model.mlp_sizes=(150,)").model.mlp_sizes == (150,)
    for unbalanced in ("model.mlp_sizes=(150,", "model.mlp_sizes=150),lstm"):
        with pytest.raises(ValueError, match="unbalanced brackets"):
            default.apply_variants(default.get_config(), unbalanced)
