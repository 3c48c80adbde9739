"""The import graph of rnnlab: a folder is a layer, and no lower layer imports a higher one.

library (``rnnlab/*.py``, ``rnnlab/cells/``, ``rnnlab/backends/``) < ``rnnlab/data/`` < ``rnnlab/training/`` <
``rnnlab/inference/`` < ``rnnlab/experiments/`` < ``rnnlab/analysis/`` < ``rnnlab/commands/`` (and
``rnnlab/__main__.py``, which dispatches to them). Every ``rnnlab`` import, at module level or inside a
function, counts. The package imports no study (``studies/``) and no test.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "rnnlab")
FOLDERS = ["data", "training", "inference", "experiments", "analysis", "commands"]
LAYERS = ["library", *FOLDERS]


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


def _imports(path: str, roots: tuple[str, ...]) -> set[str]:
    """The modules under the top-level names ``roots`` that the file at ``path`` imports."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] in roots)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] in roots:
            names.add(node.module)
    return names


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
    parts = module.split(".")
    if module == "rnnlab.__main__":
        return LAYERS.index("commands")
    if len(parts) > 1 and parts[1] in FOLDERS:
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
    assert folders == sorted(["backends", "cells", *FOLDERS])
    top = sorted(n[:-3] for n in os.listdir(PACKAGE) if n.endswith(".py"))
    # the library's folder holds library modules only (and __main__, the commands' dispatcher)
    assert set(top) == {"__init__", "__main__", "bidirectional", "contract", "convert", "extras", "introspect",
                        "lengths", "nn", "scan", "types"}


def test_layers_the_package_imports_no_study_and_no_test():
    outside = [f"{module} imports {target}" for module, path in sorted(_modules(PACKAGE, "rnnlab").items())
               for target in sorted(_imports(path, ("studies", "tests")))]
    assert not outside, "\n".join(outside)


@pytest.mark.parametrize("folder", ["rnnlab", "tests", "benchmarks", "configs"])
def test_layers_every_rnnlab_import_names_a_module_that_exists(folder):
    stale = [f"{os.path.relpath(path, ROOT)}: {target}"
             for path in _modules(os.path.join(ROOT, folder), "").values()
             for target in sorted(_rnnlab_imports(path)) if not _is_module(target)]
    assert not stale, "\n".join(stale)


def _entry_modules() -> list[str]:
    from rnnlab.commands import COMMANDS

    return [f"rnnlab.commands.{name}" for name in COMMANDS]


def test_layers_every_command_module_is_listed():
    folder = os.path.join(PACKAGE, "commands")
    found = {n[:-3] for n in os.listdir(folder) if n.endswith(".py")} - {"__init__", "common"}
    assert sorted(found) == sorted(m.rsplit(".", 1)[1] for m in _entry_modules())


def test_layers_command_entries_are_thin():
    # An entry module defines only main, run and _define_flags: the work lives in a layer below
    for name in _entry_modules():
        path = os.path.join(ROOT, *name.split(".")) + ".py"
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert defined <= {"main", "run", "_define_flags"}, (name, sorted(defined))
        assert "run" in defined, name  # what python -m rnnlab COMMAND calls
