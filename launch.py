"""Runs one experiment: ``python launch.py --config=configs/negation.py --workdir=runs/negation``.

Override config fields with flags, e.g. ``--config.model.cell=gru``; rerunning
the same command on the same workdir resumes from its latest checkpoint.
"""

from rnnlab.commands.launch import run

if __name__ == "__main__":
    run()
