"""The absl entry point behind ``launch.py`` and ``python -m rnnlab launch``.

    python launch.py --config=configs/negation.py --workdir=runs/negation [--config.model.cell=gru]

It parses flags and calls :func:`rnnlab.training.launch.launch`, which logs the
config and runs :func:`rnnlab.training.train.train_and_evaluate`. The config
file may be given by any path, from any working directory
(:mod:`rnnlab.training.config_files`). An error of the config, the data or the
flags prints one line, ``rnnlab launch: <what is wrong>``, and exits with
status 1; ``--verbosity=1`` shows its traceback.
"""

from typing import Optional, Sequence

from absl import app, flags

from rnnlab.commands.common import config_flag, run_app, run_command
from rnnlab.training.launch import launch

_CONFIG = config_flag("config", "Experiment config file, e.g. configs/negation.py[:variants].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: Sequence[str]) -> None:
    """absl entry: ``--config`` and ``--workdir``; no positional arguments."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    run_command("rnnlab launch", lambda: launch(_CONFIG.value, _WORKDIR.value))


def run(argv: Optional[Sequence[str]] = None) -> None:
    """Runs :func:`main` (``launch.py``, ``python -m rnnlab launch``, the ``rnnlab-launch`` script); a user's
    own launcher calls it after registering their cells. ``argv`` defaults to ``sys.argv``."""
    run_app("rnnlab launch", main, lambda: None, argv)  # its flags are defined above, at import


if __name__ == "__main__":
    run()
