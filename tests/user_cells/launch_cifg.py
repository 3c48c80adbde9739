"""The user's own launcher: registers the cell, then runs rnnlab's launch (flags as launch.py)."""

from rnnlab.commands.launch import run
from tests.user_cells import cifg

if __name__ == "__main__":
    cifg.register()
    run()
