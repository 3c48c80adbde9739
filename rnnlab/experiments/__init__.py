"""Running experiments: a grid of configs over seeds (:mod:`~rnnlab.experiments.sweep`), hyperparameter
searches on Optuna (:mod:`~rnnlab.experiments.search`, with :mod:`~rnnlab.experiments.search_space` and
:mod:`~rnnlab.experiments.search_trials`) and plans of searches run in lanes (:mod:`~rnnlab.experiments.plan`).
Reading their runs back is :mod:`rnnlab.analysis`."""
