"""The training stack, built on the library (``rnnlab``) and ``rnnlab.data``. One module per job:

    train       train_and_evaluate(config, workdir): checks, builds and runs one run
    loop        the loop: training windows, evaluation with early stopping, final results
    position    where a run stands (Position, Run); restore-or-init and save
    steps       TrainState, train_step, eval_step, their compilation
    optim       optimizers and learning-rate schedules (config.optim)
    sharding    the device mesh and batch sharding
    models      Flax models by config.model.kind; tasks: losses and metrics per task
    checkpoint  orbax checkpoints with checksums, the config pinned by config.json
    lock        one training process per workdir
    metrics     metrics.jsonl, TensorBoard, log lines, the progress bar (one Recorder)
    workdir     the run directory's file names and JSON helpers
    launch      one run as ``python -m rnnlab launch`` starts it
    checks      the shared helpers of the config checks
"""
