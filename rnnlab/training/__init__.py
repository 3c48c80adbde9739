"""The training stack: models, tasks (losses, metrics), the train loop, checkpoints, the workdir
layout, metric writers and the launch of one run. Built on the library (``rnnlab``) and ``rnnlab.data``."""
