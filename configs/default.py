"""Every configuration field of rnnlab, with its default and one comment each.

Experiment files (``configs/negation.py``, ...) call :func:`get_config` and
override what differs. Launch any of them with::

    python launch.py --config=configs/negation.py --workdir=runs/negation

and override single fields from the command line, e.g. ``--config.model.cell=gru``.
"""

import typing

import ml_collections

import rnnlab.data


def _data() -> ml_collections.ConfigDict:
    """``config.data``: read by rnnlab.data. Each default comes from the dataclass of ``rnnlab.data``
    that reads the field (``LoaderOptions``, ``GeneratedOptions``, the default dataset's ``Options``):
    the one place it is defined. A dataset's own further fields: :func:`data_fields`."""
    loader, generated = rnnlab.data.LoaderOptions(), rnnlab.data.GeneratedOptions()
    chunks = rnnlab.data.chunking.ChunkOptions()
    data = ml_collections.ConfigDict()
    data.name = "negation"  # registered dataset name (rnnlab.data.dataset_names())
    data.data_dir = ml_collections.config_dict.placeholder(str)  # tfds data dir; None -> ~/tensorflow_datasets
    data.path = ml_collections.config_dict.placeholder(str)  # real data file or folder (.mat file, SST folder)
    data.batch_size = loader.batch_size  # examples per batch (global, over all devices)
    data.buckets = loader.buckets  # padded lengths T; a batch uses the smallest that fits
    data.crop = loader.crop  # crop examples longer than the largest bucket instead of failing
    data.num_threads = loader.num_threads  # grain threads preparing batches ahead of training (0 = inline)
    data.chunk_len = chunks.chunk_len  # truncated BPTT: train on chunks of this many steps, carry passed on (0 = off)
    data.chunk_eval = chunks.chunk_eval  # with chunk_len: evaluate in chunks too (same metrics), else whole sequences
    data.num_train = generated.num_train  # generated datasets: training examples
    data.num_valid = generated.num_valid  # generated datasets: validation examples
    data.num_test = generated.num_test  # generated datasets: test examples
    data.max_len = rnnlab.data.get_dataset(data.name).Options().max_len  # generated sentences: longest one
    data.gen_seed = generated.gen_seed  # generated datasets: seed of the generator (not of the shuffling)
    return data


def data_fields(config: ml_collections.ConfigDict, dataset: str, *names: str) -> None:
    """Adds the fields ``names`` that ``dataset`` reads to ``config.data``, at the defaults of its ``Options``.

    For an experiment that sets or varies a dataset's own fields (``sst``'s
    ``phrases``, ``copy``'s ``copy_length``); their meaning is documented in
    that dataclass and in docs/data.md.
    """
    options_class = rnnlab.data.get_dataset(dataset).Options
    options = options_class()
    with config.unlocked():
        for name in names:
            config.data[name] = _field_default(options_class, name, getattr(options, name))


def _field_default(options_class: type, name: str, value):
    """``value``, or for a ``None`` default a placeholder of the field's type (``Optional[str]`` -> ``str``), so
    that ``--config.data.NAME=...`` can set it from the command line (ml_collections refuses to override a
    field whose value is a bare ``None``)."""
    if value is not None:
        return value
    kinds = [t for t in typing.get_args(typing.get_type_hints(options_class)[name]) if t is not type(None)]
    return ml_collections.config_dict.placeholder(kinds[0] if len(kinds) == 1 else object)


def _model() -> ml_collections.ConfigDict:
    """``config.model``: built by rnnlab.training.models.build_model from a registry of kinds."""
    model = ml_collections.ConfigDict()
    model.kind = "classifier"  # bag_of_words | classifier | tagger | density | step_regressor (per-step regress)
    model.cell = "lstm"  # a registered cell: rnnlab.cell_names() (tanh, lstm, gru, variants, min_gru, ...)
    model.hidden_size = 128  # H per direction and layer
    model.num_layers = 1  # stacked recurrent layers
    model.bidirectional = False  # read each sequence both ways (outputs concatenated)
    model.embed_size = 64  # token embedding width (ignored for float feature inputs)
    model.pooling = "last"  # classifier: last | mean | max | attention over valid steps
    model.mlp_sizes = ()  # hidden widths of the MLP head before the output layer
    model.embed_dropout = 0.0  # dropout rate on the embeddings / inputs
    model.word_dropout = 0.0  # training: each token id becomes <unk> with this probability
    model.dropout = 0.0  # dropout rate between recurrent layers
    model.recurrent_dropout = 0.0  # variational dropout on h in the recurrent products (Gal 2016)
    model.zoneout = 0.0  # probability that a unit keeps its previous value (Krueger 2017)
    model.head_dropout = 0.0  # dropout rate before the head
    model.forget_bias = 1.0  # lstm: constant added to the forget gate pre-activation
    model.reset_after = False  # gru: False = Cho et al. 2014 form, True = cuDNN/PyTorch form
    model.peephole = False  # lstm: peephole connections
    model.cell_clip = 0.0  # lstm: clip the cell state to [-cell_clip, cell_clip] (0 = no clip)
    model.backend = ""  # recurrence: "" (library default) | reference | fused | parallel | cudnn | pallas
    model.dtype = "float32"  # recurrent matrix products: float32 | bfloat16 (params and carries stay float32)
    model.param_dtype = "float32"  # recurrent params: float32 | bfloat16
    model.kernel_init = "glorot_uniform"  # w_x initializer: a name of rnnlab.cells.INITIALIZERS
    model.recurrent_init = "orthogonal"  # each [H, H] gate block of w_h: a name of rnnlab.cells.INITIALIZERS
    return model


def _optim() -> ml_collections.ConfigDict:
    """``config.optim``: optax optimiser, schedule, clipping, weight decay."""
    optim = ml_collections.ConfigDict()
    optim.name = "adam"  # adam | rmsprop | sgd (sgd uses momentum below)
    optim.learning_rate = 1e-3  # peak learning rate
    optim.schedule = "constant"  # constant | cosine | linear | exponential (after warmup)
    optim.warmup_steps = 0  # linear warmup steps from 0 to the peak learning rate
    optim.decay_rate = 0.1  # exponential: factor reached at the last step; cosine/linear: final fraction
    optim.momentum = 0.9  # sgd momentum (0 = plain sgd); rmsprop momentum
    optim.clip_norm = 1.0  # clip gradients by global norm (0 = no clipping)
    optim.weight_decay = 0.0  # decoupled weight decay (AdamW style for adam)
    optim.peephole_lr_scale = 1.0  # lstm: the peephole weights' (p_i, p_f, p_o) steps are scaled by this
    optim.average_decay = 0.0  # > 0: evaluate (and keep) an exponential moving average of the params (Polyak)
    return optim


def _train() -> ml_collections.ConfigDict:
    """``config.train``: loop, evaluation, checkpoints, devices."""
    train = ml_collections.ConfigDict()
    train.num_steps = 1000  # training steps (optimizer updates); may grow on resume to extend a run
    train.log_every = 50  # steps between training-metric log lines
    train.eval_every = 250  # steps between validation evaluations (0 = only at the end)
    train.checkpoint_every = 250  # steps between checkpoints (0 = only at the end)
    train.max_to_keep = 3  # checkpoints kept in workdir/checkpoints
    train.seed = 0  # seed of the parameters, dropout and data shuffling
    train.eval_split = "valid"  # split evaluated during training (early stopping reads it)
    train.test_split = "test"  # split evaluated once at the end into results.json ("" = none)
    train.final_splits = ()  # more splits evaluated once at the end with the final params, e.g. ("train",)
    train.weight_noise = 0.0  # std of Gaussian noise on every weight per training step (Graves 2011); 0 = off
    train.loss_mask = ""  # per-step tasks: batch key (e.g. "target_mask") whose 1-steps alone make the loss
    train.early_stopping_metric = ""  # e.g. "accuracy" on eval_split; "" = no early stopping
    train.early_stopping_mode = "max"  # max | min: direction in which the metric improves
    train.patience = 0  # evaluations without improvement before stopping (0 = never stop)
    train.mesh = 0  # devices on the "data" mesh axis (0 = all of jax.devices())
    train.num_processes = 1  # hosts; > 1 calls jax.distributed.initialize
    train.coordinator_address = ml_collections.config_dict.placeholder(str)  # host:port of process 0
    train.process_id = 0  # this host's index when num_processes > 1
    return train


def get_config() -> ml_collections.ConfigDict:
    """The default configuration: sections ``data``, ``model``, ``optim``, ``train``."""
    config = ml_collections.ConfigDict()
    config.plugins = ""  # your modules, imported first by every command: "my_cells.py,my_pkg.data" (names or .py paths)
    config.data, config.model, config.optim, config.train = _data(), _model(), _optim(), _train()
    return config


# Top-level fields a variant may set as ``key=value`` (``plugins=my_cells.py``).
TOP_LEVEL = ("plugins",)
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


def bow(config: ml_collections.ConfigDict) -> None:
    """The bag-of-words baseline: mean of the (embedded) inputs over the valid steps -> MLP(64) (ignores order)."""
    config.model.kind = "bag_of_words"
    config.model.mlp_sizes = (64,)


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


def _split_items(arg: str) -> list[str]:
    """``"lstm,model.mlp_sizes=(150, 75),lr=1e-3"`` -> its items: commas inside brackets do not split."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(arg):
        depth += (char in "([{") - (char in ")]}")
        if depth < 0:
            raise ValueError(f"unbalanced brackets in config variants {arg!r}")
        if char == "," and depth == 0:
            items.append(arg[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced brackets in config variants {arg!r}")
    return items + [arg[start:]]


def apply_variants(config: ml_collections.ConfigDict, arg: str | None, named: dict | None = None):
    """Applies ``get_config(arg)`` variants: ``"cell=gru,smoke"``, ``"model.mlp_sizes=(150,)"``.

    Each comma-separated item is ``smoke``, the name of a function in ``named``
    (a variant of that experiment), a flag of :data:`SHORTCUTS` (``bidirectional``
    sets it True), or ``key=value`` where key is a shortcut, a dotted field
    (``model.dropout=0.2``) or ``plugins`` (one module or ``.py`` path, e.g.
    ``plugins=my_cells.py,cell=my_janet``). A comma inside brackets belongs to its value (a tuple).
    Items apply left to right; an unknown one is an error.
    """
    named = {"smoke": smoke, **(named or {})}
    for item in filter(None, _split_items(arg or "")):
        key, _, value = item.partition("=")
        key = key.strip()
        if key in named and not value:
            named[key](config)
            continue
        path = SHORTCUTS.get(key, key)
        if path in TOP_LEVEL and value:
            config[path] = value
            continue
        section, _, field = path.partition(".")
        if section not in config or field not in config[section]:
            raise ValueError(
                f"unknown config variant {item!r}; variants: {', '.join(sorted(named))}, "
                f"shortcuts {', '.join(sorted(SHORTCUTS))}=..., section.field=value, or plugins=MODULE"
            )
        config[section][field] = _parse(value) if value else True
    return config
