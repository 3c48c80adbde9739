"""Experiment tools: sweeps, searches (Optuna), predictions of a trained run and reports (tables,
plots, gate analysis). Built on the training stack."""
