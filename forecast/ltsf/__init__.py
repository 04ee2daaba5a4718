"""The long-horizon benchmark protocol (``--protocol ltsf``) of DLinear, PatchTST, iTransformer.

Multichannel series (ETT, Exchange, any dated CSV) under the reference code's fixed
borders, one standard scaler per channel fitted on the training rows, all channels in and
out, and metrics on the standardised scale over every test window, step and channel,
beside two baselines computed here: Repeat and a closed-form linear map.

* :mod:`forecast.ltsf.protocol` - the borders and the protocol's defaults;
* :mod:`forecast.ltsf.dataset` - windows, scaler and the two baselines;
* :mod:`forecast.ltsf.run` - one training run under the protocol;
* :mod:`forecast.ltsf.report` - the study's benchmark table beside the published figures, built from
  :mod:`forecast.ltsf.runs` (the run folders read back), :mod:`forecast.ltsf.summary` (the
  summary, computed once), :mod:`forecast.ltsf.labels`, :mod:`forecast.ltsf.markdown` and
  :mod:`forecast.ltsf.figures` (its renderers).
"""
