"""The absl entry point behind ``launch.py`` and ``python -m rnnlab.launch``.

    python launch.py --config=configs/negation.py --workdir=runs/negation [--config.model.cell=gru]

It parses flags and calls :func:`rnnlab.training.launch.launch`, which logs the
config and runs :func:`rnnlab.training.train.train_and_evaluate`.
"""

from absl import app, flags
from ml_collections import config_flags

from rnnlab.training.launch import launch

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/negation.py[:variants].", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    launch(_CONFIG.value, _WORKDIR.value)


def run() -> None:
    """Console entry point (``rnnlab-launch``)."""
    app.run(main)


if __name__ == "__main__":
    run()
