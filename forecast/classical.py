"""Classical baselines from statsforecast: ``arima`` (AutoARIMA), ``ets`` (AutoETS), ``theta`` (AutoTheta).

They answer the question a reader asks of any new forecaster: does it beat the textbook
statistical models, not only "tomorrow = today"? Their names live in
:data:`models.names.CLASSICAL`; statsforecast is imported here only, and only when a
baseline is fitted (the import costs about two seconds).

**Fit.** Each baseline is fitted once, with statsforecast's model selection, on the
training rows ``[0, b1)`` of the run's split: the rows its scalers see, so it learns
from exactly what our models learn from. The validation rows are not used (there is no
early stopping to feed).

**Forecast.** For every forecast origin (a window's *today*, row ``t``), the fitted model
is applied to the history ``[0, t]`` with statsforecast's ``forward``: the parameters
chosen on the training rows are kept, only the model's filter is run over the history,
and the next ``horizon`` values are forecast from where it ends. Nothing after row ``t``
is read, and the test part never changes a parameter.

**Series.** ``--target close``: the (adjusted) close itself, in price units.
``--target return``: the daily log return, whose forecasts become prices as our models'
do (today's close times ``exp`` of the cumulative predicted returns). ``--features``,
``--window-norm`` and ``--scaler`` shape the inputs of the neural models and do not apply:
a baseline reads the whole univariate history, not a window. ``--seq-len`` still decides
which days are forecast (the same test windows as every other run, so the rows of the
tables and the Diebold-Mariano tests pair day by day).

**Cost.** ``forward`` runs the filter over the whole history at every origin, so a run
costs O(rows x test days): on sample:AAPL (3,270 rows, 490 test days, 2 cores) 0.6 s for
ARIMA, 0.1 s for ETS and 3.6 s for Theta, beside fits of 2.3, 0.2 and 0.5 s. One pass over
the whole series would be O(rows), and its in-sample fitted values are the one-step
forecasts for ARIMA and ETS, but it cannot serve every model and horizon: AutoTheta's
optimised theta re-estimates its trend from the whole series it is given (one pass would
let later prices into earlier forecasts), and a forecast of several steps needs the state
at its origin, which statsforecast's ARIMA does not keep. At this size the per-origin
calls cost ARIMA less than its fit.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from forecast.errors import UserInputError, first_line
from models.names import CLASSICAL

__all__ = ["STATSFORECAST_CLASSES", "SEASON_LENGTH", "Fitted", "is_classical", "make_model", "closes",
           "model_series", "fit_classical", "forecast_classical"]

#: The statsforecast class behind each name.
STATSFORECAST_CLASSES = {"arima": "AutoARIMA", "ets": "AutoETS", "theta": "AutoTheta"}
#: No seasonal period: rows are trading days, so a calendar week or year is not a fixed
#: number of rows (holidays), and daily closes show no seasonality worth a model.
SEASON_LENGTH = 1


def is_classical(name) -> bool:
    """Whether ``name`` is one of :data:`models.names.CLASSICAL`."""
    return str(name).strip().lower() in CLASSICAL


def make_model(name: str):
    """A fresh, unfitted statsforecast model for ``name`` (statsforecast's defaults otherwise)."""
    if not is_classical(name):
        raise UserInputError(f"unknown classical baseline {name!r}; choose one of {', '.join(CLASSICAL)}")
    try:
        import statsforecast.models as sf_models
    except ImportError as exc:      # a dependency of the project: only a broken install lacks it
        raise UserInputError(f"the classical baselines need statsforecast ({first_line(exc)}); "
                             "pip install statsforecast") from None
    return getattr(sf_models, STATSFORECAST_CLASSES[name.strip().lower()])(season_length=SEASON_LENGTH)


# -- the series ----------------------------------------------------------------------------

def closes(dataset) -> np.ndarray:
    """The close of every row of ``dataset``, rebuilt from its windows.

    Window ``i`` reads rows ``i .. i+L-1`` and targets ``i+L .. i+L+H-1``, so the first
    window's inputs, every window's today and the last window's targets cover each row
    once. Rebuilding from the :class:`~forecast.data.Dataset` (instead of re-reading the
    frame) keeps its rows, NaN policy and adjusted prices as the one definition.
    """
    series = np.concatenate([dataset.history_price[0], dataset.base_price[1:], dataset.actual_price[-1]])
    if len(series) != int(dataset.info["rows"]):
        raise AssertionError(f"rebuilt {len(series)} closes for {dataset.info['rows']} rows")
    return series


def model_series(dataset) -> tuple[np.ndarray, int]:
    """The series a baseline models, and the dataset row of its first value.

    Closes from row 0 for ``target="close"``; for ``target="return"`` the log returns
    ``log(c[t] / c[t-1])`` from row 1 (the dataset's row 0 has no close before it).
    """
    close = closes(dataset)
    if dataset.target == "close":
        return close, 0
    return np.log(close[1:] / close[:-1]), 1


# -- fit and forecast ---------------------------------------------------------------------

@dataclass
class Fitted:
    """A baseline fitted on the training rows of one series.

    Attributes
    ----------
    name : str
        ``arima``, ``ets`` or ``theta``.
    model : statsforecast model
        Fitted (``model_`` set).
    values : ndarray
        The modelled series over every row (see :func:`model_series`).
    offset : int
        Dataset row of ``values[0]``.
    fit_rows : int
        Training rows ``b1``: the fit read ``values`` of rows ``[offset, b1)``.
    description : str
        The selected model, e.g. ``ARIMA(5,1,3)``, ``ETS(M,N,N)``, ``Theta (OTM)``.
    parameters : dict
        The fitted parameters by name (floats).
    seconds : float
        Wall time of the fit.
    notes : list of str
        Distinct warnings statsforecast raised while fitting or forecasting.
    """

    name: str
    model: object
    values: np.ndarray
    offset: int
    fit_rows: int
    description: str
    parameters: dict
    seconds: float
    notes: list = field(default_factory=list)

    def config(self) -> dict:
        """What ``summary.json`` says about the model (its ``model_config``)."""
        import statsforecast

        return {"name": self.name, "library": f"statsforecast {statsforecast.__version__}",
                "class": STATSFORECAST_CLASSES[self.name], "season_length": SEASON_LENGTH,
                "series": "close" if self.offset == 0 else "log return",
                "training_rows": [self.offset, self.fit_rows],    # half-open: [first, end)
                "selected": self.description,
                "parameters": self.parameters}


def _collect(caught, notes: list) -> None:
    for w in caught:
        text = first_line(w.message)
        if text not in notes:
            notes.append(text)


def fit_classical(name: str, dataset) -> Fitted:
    """Fit baseline ``name`` on the training rows of ``dataset`` (see the module docstring).

    Raises
    ------
    UserInputError
        statsforecast could not fit the series (too short, constant...), in one line.
    """
    name = str(name).strip().lower()
    model = make_model(name)
    values, offset = model_series(dataset)
    b1 = int(dataset.info["split"]["train"]["rows"])
    notes: list = []
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(values[:b1 - offset])
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            raise UserInputError(f"{name}: statsforecast's {STATSFORECAST_CLASSES[name]} could not be "
                                 f"fitted on the {b1} training rows ({first_line(exc)})") from exc
    _collect(caught, notes)
    description, parameters = _describe(name, model.model_)
    return Fitted(name, model, values, offset, b1, description, parameters, time.perf_counter() - t0, notes)


def forecast_classical(fitted: Fitted, dataset, idx) -> dict:
    """Forecasts of windows ``idx`` by a fitted baseline, in price units.

    Each window's forecast is ``forward`` of the fitted model on the history up to the
    window's today (row ``i + seq_len - 1``), so it reads no later value.

    Returns
    -------
    dict of str to ndarray
        The keys of :func:`forecast.pipeline.forecast_prices`: ``actual``, ``predicted``,
        ``naive``, ``drift`` (each (len(idx), horizon)) and ``base`` (len(idx),).
    """
    from forecast.metrics import drift_forecast, naive_forecast

    idx = np.asarray(idx)
    H = dataset.horizon
    out = np.empty((len(idx), H))
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        for k, window in enumerate(idx):
            today = int(window) + dataset.seq_len - 1
            history = fitted.values[:today + 1 - fitted.offset]
            out[k] = fitted.model.forward(y=history, h=H)["mean"]
    _collect(caught, fitted.notes)
    base = dataset.base_price[idx]
    # A return forecast becomes prices as our models' do (Dataset.to_price).
    predicted = out if fitted.offset == 0 else base[:, None] * np.exp(np.cumsum(out, axis=1))
    return {"actual": dataset.actual_price[idx], "predicted": predicted, "base": base,
            "naive": naive_forecast(base, H), "drift": drift_forecast(dataset.history_price[idx], H)}


# -- what was selected --------------------------------------------------------------------

def _number(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _describe(name: str, state: dict) -> tuple[str, dict]:
    """``(selected model, {parameter: value})`` of a fitted statsforecast model's state."""
    if name == "arima":
        from statsforecast.arima import arima_string

        params = {str(k): _number(v) for k, v in state["coef"].items()}
        return " ".join(arima_string(state).split()), params
    if name == "ets":
        components = str(state["components"])      # error, trend, season, damped: e.g. "MNNN"
        damped = components[3] != "N"
        text = f"ETS({components[0]},{components[1]}{'d' if damped else ''},{components[2]})"
        names = ("alpha", "beta", "gamma", "phi")
        par = np.asarray(state["par"], dtype=float)
        params = {n: _number(v) for n, v in zip(names, par[:4]) if math.isfinite(v)}
        params.update({f"initial_state_{i}": _number(v) for i, v in enumerate(par[4:])})
        return text, params
    params = {str(k): _number(v) for k, v in state["par"].items()}
    return f"Theta ({state['modeltype']})", params
