"""Config files read from anywhere, and users' plugins imported before anything is built.

A config file is a Python file defining ``get_config(arg=None) ->
ml_collections.ConfigDict``; it is named as ``path[:variants]``
(``configs/negation.py:cell=gru,smoke``). The repository's config files import
``configs.default``, so whoever loads one must put the folder above the
``configs`` package on ``sys.path``: :func:`config_root` finds it from the
file's own path (the parent of the outermost folder holding an
``__init__.py``), so ``python ../rnnlab/launch.py --config=../rnnlab/configs/negation.py``
works from any working directory, a user's launcher in their own folder can
run the repository's configs, and a notebook in ``notebooks/`` can load
``../configs/negation.py``. A user's own config file outside any package
may still ``from configs import default``: the checkout that rnnlab is installed
from (``pip install -e .``) is added after the file's own root.

``config.plugins`` names the user's modules, a comma-separated string of module
names (``my_pkg.cells``) or ``.py`` paths (``my_project/my_cells.py``), that
register their own cells (:func:`rnnlab.register_cell`) and datasets
(``@rnnlab.data.register``). :func:`import_plugins` imports them once per
process; every command calls it before it builds anything (the training entry
:func:`rnnlab.training.train.train_and_evaluate` and the restore of a trained
run do), and the run's ``config.json`` records them, so predict, a resumed run
and a search's trial processes import them with no extra flag.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from types import ModuleType
from typing import Any, Optional

import rnnlab

_PLUGINS: dict[str, ModuleType] = {}  # resolved plugin (absolute path or module name) -> its module


def config_root(path: str) -> str:
    """The folder that must be on ``sys.path`` for the config file ``path`` to import its own package.

    The parent of the outermost folder above ``path`` that holds an
    ``__init__.py`` (``/repo`` for ``/repo/studies/claims/configs/negation.py``, a study's config); the
    file's own folder when it sits in no package.
    """
    folder = os.path.dirname(os.path.abspath(path))
    while os.path.isfile(os.path.join(folder, "__init__.py")) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    return folder


def checkout_root() -> Optional[str]:
    """The source checkout rnnlab is installed from (``pip install -e .``), when it holds ``configs/``; else None."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(rnnlab.__file__)))
    return root if os.path.isfile(os.path.join(root, "configs", "default.py")) else None


def _add_to_path(folder: str) -> None:
    if folder not in sys.path:
        sys.path.insert(0, folder)


def add_config_root(path: str) -> None:
    """Puts :func:`config_root` of ``path`` first on ``sys.path``, and rnnlab's checkout after it.

    Idempotent; a user's own ``configs`` package next to their config file wins
    over the checkout's.
    """
    checkout = checkout_root()
    if checkout is not None and checkout not in sys.path:
        sys.path.append(checkout)
    _add_to_path(config_root(path))


def split_spec(spec: str) -> tuple[str, str]:
    """``"configs/negation.py:cell=gru"`` -> ``("configs/negation.py", "cell=gru")``; ``""`` for no variants."""
    path, _, arg = str(spec).partition(":")
    return path, arg


def load_module(path: str) -> ModuleType:
    """Imports the config file ``path`` (from any working directory) after :func:`add_config_root`.

    Raises:
      FileNotFoundError: no file at ``path`` (the message names it and the working directory).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file not found: {path!r} (working directory {os.getcwd()!r})")
    add_config_root(path)
    module_name = "_rnnlab_config_" + re.sub(r"\W", "_", os.path.abspath(path))
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(path: str, arg: str = "", seed: Optional[int] = None) -> Any:
    """``get_config(arg)`` of the config file ``path``, with ``train.seed`` set if given; its plugins imported.

    Every command that reads a config file reads it here, so the user's
    ``config.plugins`` are imported before the command checks or builds
    anything (a search validating its space, a sweep expanding its grid).

    Args:
      path: a config file defining ``get_config(arg)``.
      arg: its variant argument (``""`` for the default).
      seed: overrides ``config.train.seed``.

    Returns:
      The ``ml_collections.ConfigDict``.

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file defines no ``get_config``, or a variant is unknown.
      ImportError, FileNotFoundError: a plugin that does not import (:func:`import_plugins`).
    """
    module = load_module(path)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {path!r} defines no get_config(arg)")
    config = module.get_config(arg) if arg else module.get_config()
    if seed is not None:
        with config.unlocked():
            config.train.seed = int(seed)
    import_plugins(config.get("plugins", ""))  # the names it uses (cells, datasets) are known from here on
    return config


# ---------------------------------------------------------------------------
# Plugins


def plugin_list(plugins: Any) -> list[str]:
    """The entries of ``config.plugins``: a comma-separated string (or a sequence of strings), blanks dropped.

    Raises:
      ValueError: ``plugins`` is neither a string nor a sequence of strings.
    """
    if plugins is None:
        return []
    items = plugins.split(",") if isinstance(plugins, str) else plugins
    if not isinstance(items, (list, tuple)) or not all(isinstance(p, str) for p in items):
        raise ValueError(f"config.plugins must be a comma-separated string of module names or .py paths, "
                         f"got {plugins!r}")
    return [p.strip() for p in items if p.strip()]


def _is_path(entry: str) -> bool:
    return entry.endswith(".py") or os.sep in entry or "/" in entry


def resolve_plugins(plugins: Any, base: Optional[str] = None) -> str:
    """``config.plugins`` with every ``.py`` path made absolute (against ``base``, default the working directory).

    A run records the resolved form in its ``config.json``, so a command
    started from another folder (predict, a search's trial) finds the files.
    """
    entries = plugin_list(plugins)
    if not any(_is_path(p) for p in entries):
        return ",".join(entries)  # no path to resolve (and no working directory needed)
    base = os.getcwd() if base is None else base
    return ",".join(os.path.abspath(os.path.join(base, os.path.expanduser(p))) if _is_path(p) else p
                    for p in entries)


def _import_path(path: str) -> ModuleType:
    """Imports the file ``path`` as a module named after its stem (its folder goes on ``sys.path``)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config.plugins: no file {path!r}")
    _add_to_path(os.path.dirname(path))
    name = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == path:
        return sys.modules[name]  # already imported by name (e.g. by the user's launcher)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_plugins(plugins: Any) -> list[ModuleType]:
    """Imports each of ``config.plugins`` once per process; returns the modules.

    Args:
      plugins: a comma-separated string (or sequence) of module names
        (``my_pkg.cells``, importable from ``sys.path``) and ``.py`` paths
        (absolute, or relative to the working directory).

    Raises:
      ValueError: a malformed ``plugins`` value.
      FileNotFoundError: a ``.py`` path that does not exist.
      ModuleNotFoundError: a module name that cannot be imported.
      Whatever the plugin itself raises when imported.
    """
    modules = []
    for entry in plugin_list(plugins):
        key = os.path.abspath(os.path.expanduser(entry)) if _is_path(entry) else entry
        if key not in _PLUGINS:
            try:
                _PLUGINS[key] = _import_path(key) if _is_path(entry) else importlib.import_module(entry)
            except ModuleNotFoundError as e:
                if _is_path(entry) or e.name != entry.split(".")[0] and e.name != entry:
                    raise
                raise ModuleNotFoundError(
                    f"config.plugins: no module named {entry!r} on sys.path; give a .py path instead, "
                    f"or install the package", name=e.name) from e
        modules.append(_PLUGINS[key])
    return modules


def with_resolved_plugins(config: Any) -> Any:
    """``config`` itself when its ``plugins`` need no change, else a copy with :func:`resolve_plugins` applied.

    A config without a ``plugins`` field (made before plugins existed) is returned as it is.
    """
    plugins = config.get("plugins", "") if hasattr(config, "get") else ""
    resolved = resolve_plugins(plugins)
    if resolved == plugins or not plugins:
        return config
    copy = config.copy_and_resolve_references()
    with copy.unlocked():
        copy.plugins = resolved
    return copy
