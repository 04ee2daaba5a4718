"""Benchmark shapes: their one home, importable without the engine.

Worker processes that host a PyTorch peer import this module and nothing of the
engine, so a peer's process holds only its own library (see :mod:`bench.harness.worker`).

Sizes follow the model: ``d_model`` is the hidden size, the Mamba inner width is
``d_inner = 2 * d_model`` and minGRU / GRU run with ``H = d_model`` hidden units.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Size", "SIZES", "SMOKE_SIZES", "TRAIN_SIZE", "SMOKE_TRAIN_SIZE", "CLI_TRAIN_SIZE",
           "SMOKE_CLI_TRAIN_SIZE", "DTYPES", "DTYPE_NAMES", "LONG_SEQ_LENGTHS", "SMOKE_LONG_SEQ_LENGTHS",
           "long_seq_sizes", "sizes_for", "train_sizes_for", "layer_data",
           "train_data"]


@dataclass(frozen=True)
class Size:
    """A benchmark shape.

    Parameters
    ----------
    name : str
        Short label used in test ids, groups and tables.
    batch, seq_len : int
    d_model : int
        Hidden size; Mamba's inner width is ``2 * d_model``, minGRU/GRU use ``H = d_model``.
    d_state : int
        SSM state size.
    """

    name: str
    batch: int
    seq_len: int
    d_model: int
    d_state: int = 16

    @property
    def d_inner(self) -> int:
        """Channels of the selective scan (``expand = 2``)."""
        return 2 * self.d_model

    @property
    def hidden(self) -> int:
        """Hidden units of minGRU and GRU."""
        return self.d_model

    def label(self, kernel: str = "selective_scan_fwd") -> str:
        """A compact shape description for tables (scan kernels show d and n)."""
        if kernel.startswith("selective_scan") or kernel == "exp_floor":
            return f"{self.name} (b={self.batch}, L={self.seq_len}, d={self.d_inner}, n={self.d_state})"
        return f"{self.name} (b={self.batch}, L={self.seq_len}, H={self.hidden})"

    def train_label(self) -> str:
        """The shape of a train step: batch, window, hidden size and state size."""
        return f"b={self.batch}, L={self.seq_len}, hidden={self.d_model}, n={self.d_state}"

    def to_dict(self) -> dict:
        """Plain data, for a worker's spec."""
        return asdict(self)


#: The three sizes of the kernel benchmarks: the default model, a long sequence, one long series.
SIZES = (
    Size("default", batch=64, seq_len=60, d_model=64),
    Size("long", batch=4, seq_len=2048, d_model=64),
    Size("single", batch=1, seq_len=512, d_model=16),
)
#: Same names, tiny shapes: used when benchmarks only run once as smoke tests.
SMOKE_SIZES = (
    Size("default", batch=4, seq_len=12, d_model=8, d_state=4),
    Size("long", batch=2, seq_len=96, d_model=4, d_state=4),
    Size("single", batch=1, seq_len=40, d_model=4, d_state=4),
)
#: Train-step and layer-pair shape of issue 9: batch 64, seq_len 60, hidden 64, d_state 16.
TRAIN_SIZE = SIZES[0]
SMOKE_TRAIN_SIZE = SMOKE_SIZES[0]
#: ``python cli.py train`` with its defaults: batch 64, window 60, hidden 16, d_state 16.
#: ``tests/test_benchmarks_cli.py`` holds this to ``forecast.config.RunConfig`` (bench
#: may not import the application).
CLI_TRAIN_SIZE = Size("cli", batch=64, seq_len=60, d_model=16, d_state=16)
SMOKE_CLI_TRAIN_SIZE = Size("cli", batch=3, seq_len=8, d_model=4, d_state=4)
#: Long sequences (issue 19 item 3): each layer pair at these lengths, b=4, d_model 64, d_state 16.
LONG_SEQ_LENGTHS = (256, 1024, 4096, 16384)
SMOKE_LONG_SEQ_LENGTHS = (16, 32, 64)
DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
DTYPE_NAMES = tuple(d.name for d in DTYPES)


def sizes_for(smoke: bool) -> tuple:
    """The kernel sizes of a full run or of a smoke run."""
    return SMOKE_SIZES if smoke else SIZES


def train_sizes_for(smoke: bool) -> tuple:
    """The train-step sizes: issue 9's default and the CLI's default."""
    return (SMOKE_TRAIN_SIZE, SMOKE_CLI_TRAIN_SIZE) if smoke else (TRAIN_SIZE, CLI_TRAIN_SIZE)


def long_seq_sizes(smoke: bool) -> tuple:
    """The shapes of the long-sequence section, shortest first (tiny widths on smoke shapes)."""
    if smoke:
        return tuple(Size(f"L={n}", batch=2, seq_len=n, d_model=4, d_state=4) for n in SMOKE_LONG_SEQ_LENGTHS)
    return tuple(Size(f"L={n}", batch=4, seq_len=n, d_model=64, d_state=16) for n in LONG_SEQ_LENGTHS)


def layer_data(size: Size, dtype, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Input ``x`` and output gradient ``dy`` of a layer pair, both ``(b, L, d_model)``.

    Every worker draws them from the same seed, so the two sides of a pair see
    identical arrays without shipping them between processes.
    """
    rng = np.random.default_rng([seed, 1])
    shape = (size.batch, size.seq_len, size.d_model)
    x = rng.standard_normal(shape).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return x, dy


def train_data(size: Size, dtype, seed: int = 0, n_features: int = 1, horizon: int = 1):
    """A train step's inputs ``(batch, seq_len, n_features)`` and targets ``(batch, horizon)``.

    Here, not beside the engine, so that a worker hosting a PyTorch model draws the same
    batch as ours without importing the engine.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size.batch, size.seq_len, n_features)).astype(dtype)
    y = rng.standard_normal((size.batch, horizon)).astype(dtype)
    return x, y
