"""Reading finished runs: statistics over seeds (:mod:`~rnnlab.analysis.stats`,
:mod:`~rnnlab.analysis.significance`), figures (:mod:`~rnnlab.analysis.plots`), reports of run directories
(:mod:`~rnnlab.analysis.report`) and of a plan's searches (:mod:`~rnnlab.analysis.tuned`), and gate
analyses of trained models (:mod:`~rnnlab.analysis.gate_analysis`, :mod:`~rnnlab.analysis.saturation`)."""
