"""Polyphonic music: a per-step Bernoulli density model of piano rolls (Chung et al. 2014, Table 2).

Reads the Boulanger-Lewandowski ``.mat`` files from ``data.path`` (a folder
holding ``JSB_Chorales.mat``, ``Nottingham.mat``, ``MuseData.mat``,
``Piano_midi.mat``). Reports the NLL per time step (``test/nll``)::

  python launch.py --config=configs/music.py:dataset=jsb,cell=gru --workdir=runs/music-jsb-gru

Variants: ``dataset=jsb|nottingham|musedata|piano`` (each sets its buckets),
``cell=...``, ``smoke``.
"""

import ml_collections

from configs import default

# Padded lengths per corpus: the longest training sequences are 129, 1788, 3457, 3857 steps.
BUCKETS = {
    "jsb": (64, 128, 160),
    "nottingham": (128, 256, 512, 1024, 2048),
    "musedata": (256, 512, 1024, 2048, 4096),
    "piano": (512, 1024, 2048, 4096),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """JSB Chorales by default: GRU-sized LSTM, H=100, Adam 1e-3, clipping 1.0."""
    config = default.get_config()
    config.data.name = "jsb"
    config.data.path = "../shared/data/polyphonic"
    config.data.batch_size = 16
    config.model.kind = "density"
    config.model.cell = "lstm"
    config.model.hidden_size = 100
    config.optim.learning_rate = 1e-3
    config.optim.clip_norm = 1.0
    config.train.num_steps = 3000
    config.train.log_every = 100
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    config.train.early_stopping_metric = "nll"
    config.train.early_stopping_mode = "min"
    config.train.patience = 4
    default.apply_variants(config, arg)
    if not arg or "buckets" not in arg:
        buckets = BUCKETS[config.data.name]
        smoke = bool(arg) and "smoke" in arg.split(",")
        config.data.buckets = buckets[:1] if smoke else buckets
        config.data.crop = smoke  # smoke runs crop every piece to the first bucket
    return config
