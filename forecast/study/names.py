"""How a comparison study names and orders its rows.

Summary rows of naive baselines are named ``naive_<baseline>`` (:data:`NAIVE_PREFIX`,
:func:`is_naive`); models sort in the study's usual order, the classical baselines after
the neural models (:func:`model_rank`). The run loader, the summary, the figure data and
the renderers share these.
"""
from __future__ import annotations

from models.names import CLASSICAL, STUDY_ORDER

__all__ = ["NAIVE_PREFIX", "is_naive", "model_rank"]

#: Summary rows of naive baselines are named ``naive_<baseline>`` (``naive_last``...).
NAIVE_PREFIX = "naive_"


def is_naive(name: str) -> bool:
    """Whether a summary row name denotes a naive baseline."""
    return name.startswith(NAIVE_PREFIX)


#: The order of models in every table: the neural models, then the classical baselines.
_MODEL_ORDER = (*STUDY_ORDER, *CLASSICAL)


def model_rank(name: str) -> tuple:
    """Sort key of a model name: the study's usual order first (the classical baselines
    after the neural models), then alphabetical."""
    return (_MODEL_ORDER.index(name) if name in _MODEL_ORDER else len(_MODEL_ORDER), name)
