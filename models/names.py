"""Model and fusion names: their one home.

The command line, the pipeline, the study and the benchmarks take their choices from
here, so a model is added (or renamed) in one place.
"""
from __future__ import annotations

__all__ = ["BRANCHES", "HYBRID", "RNN_BASELINE", "MODEL_NAMES", "STUDY_ORDER", "CLASSICAL", "FUSIONS"]

#: The two sequence mixers the hybrid fuses.
BRANCHES = ("mamba", "mingru")
#: The fused model.
HYBRID = "hybrid"
#: The classic recurrent network the others are measured against.
RNN_BASELINE = "gru"
#: Every model :func:`models.build_model` knows.
MODEL_NAMES = (*BRANCHES, RNN_BASELINE, HYBRID)
#: The order of a study's tables and figures: the hybrid beside its branches, the GRU last.
STUDY_ORDER = (*BRANCHES, HYBRID, RNN_BASELINE)
#: Classical baselines fitted by statsforecast (AutoARIMA, AutoETS, AutoTheta; see
#: forecast/classical.py): a study or a backtest may add them, :func:`models.build_model`
#: does not build them, and nothing in models/ imports statsforecast.
CLASSICAL = ("arima", "ets", "theta")
#: How the hybrid weighs its branches (see :class:`models.forecasters.HybridForecaster`).
FUSIONS = ("scalar", "channel", "gate")
