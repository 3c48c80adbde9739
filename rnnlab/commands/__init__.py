"""The commands of rnnlab: ``python -m rnnlab COMMAND [flags]`` (or ``python -m rnnlab.commands.COMMAND``).

Each module is flags in and one call into the layer that does the work: ``launch``
(:mod:`rnnlab.training`), ``sweep``, ``search`` and ``plan`` (:mod:`rnnlab.experiments`), ``predict``
(:mod:`rnnlab.inference`), ``report``, ``gates`` and ``behaviour`` (:mod:`rnnlab.analysis`).
:mod:`rnnlab.commands.common` holds what they share: the ``--config`` flag, flag parsing and one-line errors.
"""

COMMANDS = ("launch", "sweep", "search", "plan", "predict", "report", "gates", "behaviour")
