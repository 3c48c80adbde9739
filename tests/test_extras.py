"""The core install: the library and the training stack run without the ``experiments`` extra.

A subprocess hides Optuna and Matplotlib (an import of either
fails as if it were not installed), imports the library and training modules,
trains the smoke negation run through the training entry point, imports every
command module, and checks that a tool needing an extra says which one to install.
"""

import os
import subprocess
import sys
import textwrap

from rnnlab.extras import EXTRAS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent('''
    import importlib.abc, sys
    HIDDEN = {hidden!r}

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in HIDDEN:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Hide())
    import rnnlab, rnnlab.nn, rnnlab.data, rnnlab.inference.predict
    from rnnlab.training import config_files, train
    config = config_files.load_config("configs/negation.py", "smoke")
    config.data.data_dir = sys.argv[1]
    results = train.train_and_evaluate(config, sys.argv[2])
    print("trained", results["step"])
    from rnnlab.analysis import plots
    try:
        plots.new_figure((2, 2))
    except ImportError as e:
        print("plots:", e)
    from rnnlab.experiments import search_space
    try:
        search_space.draw_point([search_space.parse_param("optim.learning_rate=loguniform(1e-3,1e-2)")], 0, 0)
    except ImportError as e:
        print("search:", e)
    import importlib
    from rnnlab.commands import COMMANDS
    for command in COMMANDS:  # every command module imports; only running a tool needs its extra
        importlib.import_module("rnnlab.commands." + command)
    print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in HIDDEN))
''')


def test_core_trains_without_the_experiments_extra_and_tools_name_it(tmp_path):
    # Given a Python where the experiments extra's packages cannot be imported
    script = SCRIPT.format(hidden=tuple(EXTRAS["experiments"]))
    # When the library and training stack are imported and a smoke run trains
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "data"), str(tmp_path / "run")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    # Then it trains, none of them was imported, and the tools that need one name the extra
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trained 6" in done.stdout
    assert "loaded: []" in done.stdout
    assert "plots: matplotlib is needed for figures but is not installed: pip install 'rnnlab[experiments]'" \
        in done.stdout
    assert "search: optuna is needed for searches but is not installed" in done.stdout
