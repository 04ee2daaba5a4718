"""Shapes and data of the long-horizon workload (issue 19, item 2), for both sides of a row.

The long-horizon protocol's model (:class:`models.longhorizon.LongHorizonForecaster` at
``forecast.ltsf.protocol.LTSF_DEFAULTS``) and its data (ETTh1's training part, standard
scaler per channel fitted on it, every window of ``L`` inputs then ``H`` targets, step-major
targets ``y (n, H * C)``, :mod:`forecast.ltsf.dataset`) are restated here: a worker hosting
the PyTorch model must not import the engine, ``models`` or ``forecast``, so this module
imports NumPy and the standard library only. ``tests/test_bench_ltsf.py`` holds these
constants and windows to the application's own.

One epoch is what the application's training loop does with the protocol's settings
(:meth:`forecast.train._Trainer.train_epoch`): the windows in a shuffled order
(``numpy.random.default_rng(seed).permutation``), mini-batches of ``batch`` in that order,
the last one partial. The bench's epoch keeps the order and the batches and makes each
step the textbook one (MSE, backward, Adam at the protocol's learning rate): the cosine
schedule and the gradient clipping of the application are left out on both sides, as
neither library offers them as part of a step.
"""
from __future__ import annotations

import gzip
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["PROTOCOL", "NORM", "LINEAR_PATH", "ETT_TRAIN_ROWS", "ETTH1_FILE", "LtsfShape", "STEP_SHAPES",
           "EPOCH_SHAPE", "SMOKE_STEP_SHAPES", "SMOKE_EPOCH_SHAPE", "step_data", "ett_train_values",
           "train_windows", "epoch_order", "epoch_batches"]

#: The protocol's defaults this workload uses (``forecast.ltsf.protocol.LTSF_DEFAULTS``; the
#: model's d_state and fusion are the run configuration's defaults, ``forecast.config.RunConfig``).
PROTOCOL = {"seq_len": 96, "horizon": 96, "hidden": 64, "layers": 1, "channels": "independent", "seg_len": 12,
            "norm": "revin", "linear_path": True, "batch_size": 64, "lr": 1e-3, "dtype": "float32",
            "d_state": 16, "fusion": "scalar"}
NORM, LINEAR_PATH = PROTOCOL["norm"], PROTOCOL["linear_path"]
#: ETT hourly training part: 12 months of 30 x 24 rows (``forecast.ltsf.protocol.part_rows``).
ETT_TRAIN_ROWS = 12 * 30 * 24
#: The bundled data set (``forecast/data/ltsf``), read by path: no import of ``forecast``.
ETTH1_FILE = Path(__file__).resolve().parents[2] / "forecast" / "data" / "ltsf" / "ETTh1.csv.gz"


@dataclass(frozen=True)
class LtsfShape:
    """One shape of the long-horizon workload.

    Parameters
    ----------
    name : str
        ``"protocol"`` for full shapes, ``"smoke"`` for the tiny ones.
    lookback, horizon : int
        ``L`` input steps, ``H`` forecast steps.
    layout : {"independent", "mixed"}
        How channels meet the encoder (:mod:`models.longhorizon`).
    n_channels, batch, hidden, d_state, seg_len : int
    rows : int
        Training rows of ETTh1 an epoch reads (the protocol's 8640; fewer on smoke shapes).
    """

    name: str
    lookback: int
    horizon: int
    layout: str = PROTOCOL["channels"]
    n_channels: int = 7
    batch: int = PROTOCOL["batch_size"]
    hidden: int = PROTOCOL["hidden"]
    d_state: int = PROTOCOL["d_state"]
    seg_len: int = PROTOCOL["seg_len"]
    rows: int = ETT_TRAIN_ROWS

    @property
    def n_tokens(self) -> int:
        """Tokens the encoder sees: ``lookback / seg_len`` segments."""
        return self.lookback // self.seg_len

    @property
    def token_size(self) -> int:
        """Values per token: a segment of one channel, or of every channel (``mixed``)."""
        return self.seg_len * (1 if self.layout == "independent" else self.n_channels)

    @property
    def outputs(self) -> int:
        """Outputs of the encoder's head per sequence."""
        return self.horizon * (1 if self.layout == "independent" else self.n_channels)

    @property
    def sequences(self) -> int:
        """Sequences per batch the encoder runs (each channel its own when independent)."""
        return self.batch * (self.n_channels if self.layout == "independent" else 1)

    def label(self) -> str:
        """Compact description for tables."""
        return (f"L={self.lookback} H={self.horizon} {self.layout} (C={self.n_channels}, b={self.batch}, "
                f"hidden {self.hidden}, seg {self.seg_len})")

    def to_dict(self) -> dict:
        """Plain data, for a worker's spec."""
        return asdict(self)


#: The train-step rows: every lookback x horizon channel-independent, the mixed layout at
#: lookback 96 (the longer lookbacks are the independent layout's ground in the literature,
#: and mixed tokens of 12 x 7 values change nothing else of the model).
STEP_SHAPES = tuple(LtsfShape("protocol", L, H) for L in (96, 336, 720) for H in (96, 720)) + tuple(
    LtsfShape("protocol", 96, H, layout="mixed") for H in (96, 720))
#: The epoch rows' shape: the protocol's defaults.
EPOCH_SHAPE = LtsfShape("protocol", PROTOCOL["seq_len"], PROTOCOL["horizon"])
#: Tiny shapes for smoke runs (seconds, numbers meaningless).
SMOKE_STEP_SHAPES = (LtsfShape("smoke", 24, 8, n_channels=3, batch=4, hidden=8, d_state=4, seg_len=4, rows=120),
                     LtsfShape("smoke", 24, 8, layout="mixed", n_channels=3, batch=4, hidden=8, d_state=4,
                               seg_len=4, rows=120))
SMOKE_EPOCH_SHAPE = LtsfShape("smoke", 24, 8, batch=16, hidden=8, d_state=4, seg_len=4, rows=200)


def step_data(shape: LtsfShape, dtype, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One train step's batch: ``x (batch, L, C)``, ``y (batch, H * C)``, standard normal.

    Drawn from ``seed`` alone, so every worker of a row draws the same batch.
    """
    rng = np.random.default_rng([seed, 19])
    x = rng.standard_normal((shape.batch, shape.lookback, shape.n_channels)).astype(dtype)
    y = rng.standard_normal((shape.batch, shape.horizon * shape.n_channels)).astype(dtype)
    return x, y


def ett_train_values(rows: int = ETT_TRAIN_ROWS, path=ETTH1_FILE) -> np.ndarray:
    """ETTh1's first ``rows`` rows (its training part), standardised per channel on them.

    Returns
    -------
    ndarray, shape (rows, 7), float64
        The seven channels after the date, each minus its training mean over its
        training standard deviation (``ddof=0``, as scikit-learn's StandardScaler).
    """
    with gzip.open(path, "rt") as fh:
        header = fh.readline()
        lines = [fh.readline() for _ in range(rows)]
    if not lines or not lines[-1]:
        raise ValueError(f"{path}: fewer than {rows} rows")
    n_cols = header.count(",")
    values = np.array([[float(v) for v in line.rstrip("\n").split(",")[1:]] for line in lines], dtype=np.float64)
    if values.shape != (rows, n_cols):
        raise ValueError(f"{path}: expected {n_cols} channels after the date, got {values.shape[1]}")
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    scale[scale == 0] = 1.0         # StandardScaler's rule for a constant channel
    return (values - mean) / scale


def train_windows(shape: LtsfShape, dtype, path=ETTH1_FILE) -> tuple[np.ndarray, np.ndarray]:
    """Every training window: ``X (n, L, C)`` and step-major ``y (n, H * C)``, in ``dtype``.

    Windows start at every row ``s`` with ``s + L + H <= rows`` (``forecast.ltsf.protocol.window_starts``).
    """
    values = ett_train_values(shape.rows, path)
    if values.shape[1] != shape.n_channels:
        raise ValueError(f"ETTh1 has {values.shape[1]} channels, the shape asks for {shape.n_channels}")
    L, H = shape.lookback, shape.horizon
    starts = np.arange(max(shape.rows - L - H + 1, 0))
    X = np.stack([values[s:s + L] for s in starts]).astype(dtype)
    y = np.stack([values[s + L:s + L + H].reshape(-1) for s in starts]).astype(dtype)
    return X, y


def epoch_order(n: int, seed: int = 0) -> np.ndarray:
    """The epoch's shuffled order of ``n`` windows (the training loop's first epoch)."""
    return np.random.default_rng(seed).permutation(n)


def epoch_batches(n: int, batch: int, seed: int = 0) -> list[np.ndarray]:
    """Index arrays of the epoch's mini-batches, in order; the last one may be partial."""
    order = epoch_order(n, seed)
    return [order[i:i + batch] for i in range(0, n, batch)]
