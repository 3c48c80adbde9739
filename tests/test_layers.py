"""The import graph of rnnlab: a folder is a layer, and no lower layer imports a higher one.

library (``rnnlab/*.py``, ``rnnlab/cells/``, ``rnnlab/backends/``) < ``rnnlab/data/`` < ``rnnlab/training/`` <
``rnnlab/experiments/`` < the command entry modules (``python -m rnnlab.launch`` and the others:
flags in, one call out). Every ``rnnlab`` import, at module level or inside a function, counts.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "rnnlab")
ENTRY_MODULES = {"rnnlab.launch", "rnnlab.plan", "rnnlab.predict", "rnnlab.report", "rnnlab.search", "rnnlab.sweep"}
LAYERS = ["library", "data", "training", "experiments", "entry"]


def _is_module(name: str) -> bool:
    """Whether the dotted name ``rnnlab....`` is a module file or package folder of this checkout."""
    path = os.path.join(ROOT, *name.split("."))
    return os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__init__.py"))


def _modules(folder: str, prefix: str) -> dict[str, str]:
    """``{dotted module name: file path}`` of every Python file under ``folder``."""
    found = {}
    for directory, _, files in os.walk(folder):
        for file in files:
            if file.endswith(".py"):
                path = os.path.join(directory, file)
                parts = os.path.relpath(path, folder)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join([prefix, *parts]) if prefix else ".".join(parts)] = path
    return found


def _defines(package: str, name: str) -> bool:
    """Whether the ``__init__.py`` of ``package`` (dotted) binds ``name`` (imports, defines or assigns it)."""
    path = os.path.join(ROOT, *package.split("."), "__init__.py")
    if not os.path.isfile(path):
        return True  # a module: its names are not checked here
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    bound = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.Assign):
            bound.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return name == "*" or name in bound


def _rnnlab_imports(path: str) -> set[str]:
    """The ``rnnlab`` modules that the file at ``path`` imports (``from M import name``: M.name
    when that is a module, else M; ``M.name`` when M is a package that lacks ``name``, so that
    the name shows up as a module that does not exist)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] == "rnnlab")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "rnnlab":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if _is_module(full) or not _defines(node.module, alias.name) else node.module)
    return names


def _layer(module: str) -> int:
    if module in ENTRY_MODULES:
        return LAYERS.index("entry")
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ("data", "training", "experiments"):
        return LAYERS.index(parts[1])
    return LAYERS.index("library")


def test_layers_no_module_imports_a_higher_layer():
    upward = [
        f"{module} ({LAYERS[_layer(module)]}) imports {target} ({LAYERS[_layer(target)]})"
        for module, path in sorted(_modules(PACKAGE, "rnnlab").items())
        for target in sorted(_rnnlab_imports(path))
        if _layer(target) > _layer(module)
    ]
    assert not upward, "\n".join(upward)


def test_layers_cells_import_only_cells_and_types():
    # the cells are the library's floor: the scan, the backends and everything above run them
    outside = [f"{module} imports {target}" for module, path in sorted(_modules(PACKAGE, "rnnlab").items())
               if module.startswith("rnnlab.cells") for target in sorted(_rnnlab_imports(path))
               if not (target.startswith("rnnlab.cells") or target == "rnnlab.types")]
    assert not outside, "\n".join(outside)


def test_layers_every_folder_is_a_layer():
    folders = sorted(n for n in os.listdir(PACKAGE)
                     if os.path.isfile(os.path.join(PACKAGE, n, "__init__.py")))
    assert folders == ["backends", "cells", "data", "experiments", "training"]
    top = sorted(n[:-3] for n in os.listdir(PACKAGE) if n.endswith(".py"))
    entries = {m.split(".")[1] for m in ENTRY_MODULES}
    assert set(top) - entries == {"__init__", "bidirectional", "contract", "convert", "extras", "introspect", "lengths",
                                  "nn", "scan", "types"}


@pytest.mark.parametrize("folder", ["rnnlab", "tests", "benchmarks", "configs"])
def test_layers_every_rnnlab_import_names_a_module_that_exists(folder):
    stale = [f"{os.path.relpath(path, ROOT)}: {target}"
             for path in _modules(os.path.join(ROOT, folder), "").values()
             for target in sorted(_rnnlab_imports(path)) if not _is_module(target)]
    assert not stale, "\n".join(stale)


def test_layers_command_entries_are_thin():
    # An entry module defines only main, run and _define_flags: the work lives in a layer below
    for name in sorted(ENTRY_MODULES):
        path = os.path.join(ROOT, *name.split(".")) + ".py"
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert defined <= {"main", "run", "_define_flags"}, (name, sorted(defined))
