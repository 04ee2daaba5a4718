"""The names a reader knows the benchmark's datasets and forecasts by, in tables and legends."""
from __future__ import annotations

from forecast.ltsf.published import published_name
from forecast.ltsf.summary import BASELINE, LINEAR_OURS, MODEL, REPEAT_OURS

__all__ = ["dataset_label", "row_label"]

_BASELINE_LABELS = {REPEAT_OURS: "Repeat (ours)", LINEAR_OURS: "Linear map (ours)"}


def dataset_label(spec: str) -> str:
    """The name a reader knows a dataset by (``ETTh1`` for ``ett:ETTh1``)."""
    return published_name(spec) or spec


def row_label(group: str, name: str) -> str:
    """The name of a forecast in tables and legends."""
    if group == MODEL:
        from forecast.study.figures import display_name   # matplotlib only when a name is needed
        return display_name(name)
    if group == BASELINE:
        return _BASELINE_LABELS.get(name, name)
    return name
