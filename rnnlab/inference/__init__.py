"""One trained run in use: restored from its workdir (:mod:`~rnnlab.inference.trained_run`) and run on new
inputs of any task (:mod:`~rnnlab.inference.predict`, behind ``python -m rnnlab predict``)."""
