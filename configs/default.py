"""Every configuration field of rnnlab, with its default and one comment each.

Experiment files (``configs/negation.py``, ...) call :func:`get_config` and
override what differs. Launch any of them with::

    python launch.py --config=configs/negation.py --workdir=runs/negation

and override single fields from the command line, e.g. ``--config.model.cell=gru``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """The default configuration: sections ``data``, ``model``, ``optim``, ``train``."""
    config = ml_collections.ConfigDict()

    # --- data: read by rnnlab.data (the dataset's own builder reads its extra fields) ---
    config.data = ml_collections.ConfigDict()
    config.data.name = "negation"  # registered dataset name (rnnlab.data.dataset_names())
    config.data.data_dir = ml_collections.config_dict.placeholder(str)  # tfds data dir; None -> ~/tensorflow_datasets
    config.data.path = ml_collections.config_dict.placeholder(str)  # real data file or folder (.mat file, SST folder)
    config.data.batch_size = 32  # examples per batch (global, over all devices)
    config.data.buckets = (16, 32, 64)  # padded lengths T; a batch uses the smallest that fits
    config.data.crop = False  # crop examples longer than the largest bucket instead of failing
    config.data.num_threads = 2  # grain threads preparing batches ahead of training (0 = inline)
    config.data.num_train = 10000  # generated datasets: training examples
    config.data.num_valid = 1000  # generated datasets: validation examples
    config.data.num_test = 1000  # generated datasets: test examples
    config.data.max_len = 32  # generated datasets: longest generated sequence
    config.data.gen_seed = 0  # generated datasets: seed of the generator (not of the shuffling)

    # --- model: built by rnnlab.training.models.build_model from a registry of kinds ---
    config.model = ml_collections.ConfigDict()
    config.model.kind = "classifier"  # bag_of_words | classifier | tagger | density
    config.model.cell = "lstm"  # a registered cell: rnnlab.cell_names() (tanh, lstm, gru, variants, min_gru, ...)
    config.model.hidden_size = 128  # H per direction and layer
    config.model.num_layers = 1  # stacked recurrent layers
    config.model.bidirectional = False  # read each sequence both ways (outputs concatenated)
    config.model.embed_size = 64  # token embedding width (ignored for float feature inputs)
    config.model.pooling = "last"  # classifier: last | mean | max | attention over valid steps
    config.model.mlp_sizes = ()  # hidden widths of the MLP head before the output layer
    config.model.embed_dropout = 0.0  # dropout rate on the embeddings / inputs
    config.model.word_dropout = 0.0  # training: each token id becomes <unk> with this probability
    config.model.dropout = 0.0  # dropout rate between recurrent layers
    config.model.recurrent_dropout = 0.0  # variational dropout on h in the recurrent products (Gal 2016)
    config.model.zoneout = 0.0  # probability that a unit keeps its previous value (Krueger 2017)
    config.model.head_dropout = 0.0  # dropout rate before the head
    config.model.forget_bias = 1.0  # lstm: constant added to the forget gate pre-activation
    config.model.reset_after = False  # gru: False = Cho et al. 2014 form, True = cuDNN/PyTorch form
    config.model.peephole = False  # lstm: peephole connections
    config.model.backend = ""  # recurrence: "" (library default) | reference | fused | parallel | cudnn | pallas

    # --- optim: optax optimiser, schedule, clipping, weight decay ---
    config.optim = ml_collections.ConfigDict()
    config.optim.name = "adam"  # adam | rmsprop | sgd (sgd uses momentum below)
    config.optim.learning_rate = 1e-3  # peak learning rate
    config.optim.schedule = "constant"  # constant | cosine | linear | exponential (after warmup)
    config.optim.warmup_steps = 0  # linear warmup steps from 0 to the peak learning rate
    config.optim.decay_rate = 0.1  # exponential: factor reached at the last step; cosine/linear: final fraction
    config.optim.momentum = 0.9  # sgd momentum (0 = plain sgd); rmsprop momentum
    config.optim.clip_norm = 1.0  # clip gradients by global norm (0 = no clipping)
    config.optim.weight_decay = 0.0  # decoupled weight decay (AdamW style for adam)

    # --- train: loop, evaluation, checkpoints, devices ---
    config.train = ml_collections.ConfigDict()
    config.train.num_steps = 1000  # training steps (optimizer updates); may grow on resume to extend a run
    config.train.log_every = 50  # steps between training-metric log lines
    config.train.eval_every = 250  # steps between validation evaluations (0 = only at the end)
    config.train.checkpoint_every = 250  # steps between checkpoints (0 = only at the end)
    config.train.max_to_keep = 3  # checkpoints kept in workdir/checkpoints
    config.train.seed = 0  # seed of the parameters, dropout and data shuffling
    config.train.eval_split = "valid"  # split evaluated during training (early stopping reads it)
    config.train.test_split = "test"  # split evaluated once at the end into results.json ("" = none)
    config.train.weight_noise = 0.0  # std of Gaussian noise on every weight per training step (Graves 2011); 0 = off
    config.train.loss_mask = ""  # per-step tasks: batch key (e.g. "target_mask") whose 1-steps alone make the loss
    config.train.early_stopping_metric = ""  # e.g. "accuracy" on eval_split; "" = no early stopping
    config.train.early_stopping_mode = "max"  # max | min: direction in which the metric improves
    config.train.patience = 0  # evaluations without improvement before stopping (0 = never stop)
    config.train.mesh = 0  # devices on the "data" mesh axis (0 = all of jax.devices())
    config.train.num_processes = 1  # hosts; > 1 calls jax.distributed.initialize
    config.train.coordinator_address = ml_collections.config_dict.placeholder(str)  # host:port of process 0
    config.train.process_id = 0  # this host's index when num_processes > 1
    return config


# Short names for the config fields that variants set most often.
SHORTCUTS = {
    "cell": "model.cell",
    "model": "model.kind",
    "pooling": "model.pooling",
    "hidden": "model.hidden_size",
    "layers": "model.num_layers",
    "bidirectional": "model.bidirectional",
    "dataset": "data.name",
    "seed": "train.seed",
    "steps": "train.num_steps",
    "lr": "optim.learning_rate",
    "optimizer": "optim.name",
}


def smoke(config: ml_collections.ConfigDict) -> None:
    """Shrinks any config to a few seconds on a CPU: tiny data, model and step counts."""
    config.data.num_train, config.data.num_valid, config.data.num_test = 128, 32, 32
    config.data.batch_size = 8
    config.data.buckets = tuple(config.data.buckets)[-1:]  # one shape: one compilation per step function
    config.data.num_threads = 0
    config.model.hidden_size = 8
    config.model.embed_size = 8
    config.model.mlp_sizes = tuple(8 for _ in config.model.mlp_sizes)
    config.train.num_steps = 6
    config.train.log_every = 2
    config.train.eval_every = 3
    config.train.checkpoint_every = 3


def _parse(value: str):
    """``"3"`` -> 3, ``"1e-3"`` -> 0.001, ``"true"`` -> True, ``"(8, 16)"`` -> (8, 16), else the string."""
    import ast

    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def apply_variants(config: ml_collections.ConfigDict, arg: str | None, named: dict | None = None):
    """Applies ``get_config(arg)`` variants: ``"cell=gru,smoke"``.

    Each comma-separated item is ``smoke``, the name of a function in ``named``
    (a variant of that experiment), a flag of :data:`SHORTCUTS` (``bidirectional``
    sets it True), or ``key=value`` where key is a shortcut or a dotted field
    (``model.dropout=0.2``). Items apply left to right; an unknown one is an error.
    """
    named = {"smoke": smoke, **(named or {})}
    for item in filter(None, (arg or "").split(",")):
        key, _, value = item.partition("=")
        key = key.strip()
        if key in named and not value:
            named[key](config)
            continue
        path = SHORTCUTS.get(key, key)
        section, _, field = path.partition(".")
        if section not in config or field not in config[section]:
            raise ValueError(
                f"unknown config variant {item!r}; variants: {', '.join(sorted(named))}, "
                f"shortcuts {', '.join(sorted(SHORTCUTS))}=..., or section.field=value"
            )
        config[section][field] = _parse(value) if value else True
    return config
