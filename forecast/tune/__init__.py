"""Hyper-parameter tuning (``cli.py tune``): Optuna's TPE sampler over a documented
search space per model, pruning on the validation loss of each epoch.

* :mod:`forecast.tune.space` - the search space per model and protocol, ``--space`` narrowing;
* :mod:`forecast.tune.objective` - one trial: train, report each epoch, prune (runs in a worker too);
* :mod:`forecast.tune.runner` - the ask-and-tell loop, in this process or on Dask workers;
* :mod:`forecast.tune.storage` - the study's storage (SQLite in the output folder by default) and
  the check that a continued study searches what it searched before;
* :mod:`forecast.tune.report` - ``best.json``, ``trials.csv``, figures, ``tune.json``;
* :mod:`forecast.tune.tuner` - the session (:func:`plan_tune`, :func:`run_tune`): the Python API;
* :mod:`forecast.tune.command` - the command line.

The objective of a trial is its best validation loss; the test part is never looked at.
"""
