"""The forecasting application: data, training, evaluation and the study, built on the engine.

pandas, yfinance, SciPy, matplotlib and tqdm live here (never in ``engine`` or
``models``). :mod:`forecast.config` holds the options of a run, :mod:`forecast.pipeline`
turns one into trained, evaluated outputs, and :mod:`forecast.study` compares models.
"""
