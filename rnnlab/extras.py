"""Optional dependencies: imported where needed, with an error that names the extra to install.

The core install (``pip install -e .``) holds the library and the training
stack. Tools that need more declare it in ``pyproject.toml``'s extras:
``experiments`` (Optuna for searches, Matplotlib for figures); ``dev``
installs every extra. SciPy stays a core dependency: JAX needs it (jaxlib's
LAPACK calls, e.g. the orthogonal initializer) and the music datasets read
``.mat`` files with it.

    optuna = optional_import("optuna", "experiments", "python -m rnnlab search")
"""

from __future__ import annotations

import importlib
from types import ModuleType

# extra -> the packages it brings (the distribution names of pyproject.toml)
EXTRAS = {"experiments": ("optuna", "matplotlib")}


def optional_import(module: str, extra: str, purpose: str = "") -> ModuleType:
    """``importlib.import_module(module)``, or an ImportError saying which extra installs it.

    Args:
      module: the module to import (``"optuna"``, ``"matplotlib.figure"``).
      extra: the extra of ``pyproject.toml`` that provides it (a key of :data:`EXTRAS`).
      purpose: what needs it, for the message (``"figures"``).

    Raises:
      ImportError: the package is not installed; the message gives the pip command.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        top = module.split(".")[0]
        if e.name is not None and e.name.split(".")[0] != top:
            raise  # the package is there but one of its own dependencies is missing
        needed = f" for {purpose}" if purpose else ""
        raise ImportError(f"{top} is needed{needed} but is not installed: pip install 'rnnlab[{extra}]' "
                          f"(or pip install -e '.[{extra}]' in a checkout)", name=top) from e
