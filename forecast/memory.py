"""Will a run fit in memory? An estimate made before the model is built.

A model allocates its weights when it is built, and training adds gradients, the
optimiser's two moments, copies of the best and the initial weights and the
activations of a mini-batch. :func:`check_training_memory` adds these up from the
configuration alone (:mod:`models.footprint`) and refuses a run whose estimate exceeds
the memory this machine has available, before anything large is allocated: otherwise
``--hidden 100000000`` ends in a MemoryError traceback, and a size just over the limit
in the kernel's out-of-memory killer.
"""
from __future__ import annotations

import os

import numpy as np

from forecast.errors import UserInputError
from models.footprint import activation_count, parameter_count

__all__ = ["PARAMETER_COPIES", "training_bytes", "available_bytes", "format_bytes", "check_training_memory",
           "check_window_memory"]

#: Parameter-sized arrays alive while training: weights, gradients, the AdamW moments m
#: and v, the initial and the best weights, and a new best's snapshot while it is taken.
PARAMETER_COPIES = 7


def training_bytes(config, input_size: int, windows: int | None = None) -> tuple[int, int]:
    """``(parameters, bytes)``: the model's size and the memory training it needs, estimated.

    Parameters
    ----------
    config : forecast.config.RunConfig
        Validated.
    input_size : int
        Features (channels) per time step of the data.
    windows : int or None
        Training windows, when known: a batch is never larger.
    """
    model = config.model_options(input_size)
    params = parameter_count(model)
    batch = config.batch_size if windows is None else max(min(config.batch_size, int(windows)), 1)
    acts = activation_count(model, batch, config.seq_len, reference_scan=config.backend == "numpy")
    itemsize = np.dtype(config.dtype).itemsize
    return params, itemsize * (PARAMETER_COPIES * params + acts)


def available_bytes() -> int | None:
    """Memory this process can still take, or None when the platform does not say.

    Linux: ``MemAvailable`` of ``/proc/meminfo``, lowered to the room left under a
    cgroup v2 memory limit (containers). Elsewhere: the free physical pages.
    """
    found = _meminfo_available()
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    room = _cgroup_room()
    return found if room is None else min(found, room)


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as fh:
            used = int(fh.read().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def format_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KiB``; binary units up to YiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} YiB"


def check_training_memory(config, input_size: int, windows: int | None = None,
                          available: int | None = None) -> int:
    """Refuse a run whose estimated memory exceeds what is available.

    Parameters
    ----------
    config : forecast.config.RunConfig
        Validated.
    input_size : int
        Features (channels) per time step.
    windows : int or None
        Training windows, when known.
    available : int or None
        Bytes available; None: :func:`available_bytes` (no check when unknown).

    Returns
    -------
    int
        The estimate in bytes.

    Raises
    ------
    UserInputError
        The estimate exceeds the available memory; the message gives both.
    """
    params, need = training_bytes(config, input_size, windows)
    have = available_bytes() if available is None else available
    if have is not None and need > have:
        sizes = f"--hidden {config.hidden}, --layers {config.layers}"
        if config.model in ("mamba", "hybrid"):
            sizes += f", --d-state {config.d_state}"
        raise UserInputError(
            f"the model ({sizes}) has {params:.3g} parameters and training it needs about "
            f"{format_bytes(need)} of memory (weights, gradients, optimiser moments and the activations at "
            f"--batch-size {config.batch_size}, --seq-len {config.seq_len}), more than the "
            f"{format_bytes(have)} available; choose smaller sizes")
    return need


def check_window_memory(n_windows: int, seq_len: int, n_features: int, horizon: int,
                        available: int | None = None) -> int:
    """Refuse windows whose arrays would not fit in the available memory.

    Every window copies its ``seq_len`` rows: the row indices, the raw and the scaled
    inputs (float64, ``n_features`` each), the input prices kept for the drift baseline,
    and the targets, so a long ``--seq-len`` on a long series grows like their product.

    Returns
    -------
    int
        The estimate in bytes.

    Raises
    ------
    UserInputError
        The estimate exceeds the available memory.
    """
    need = 8 * int(n_windows) * (int(seq_len) * (3 * int(n_features) + 2) + 4 * int(horizon))
    have = available_bytes() if available is None else available
    if have is not None and need > have:
        raise UserInputError(f"{n_windows} windows of --seq-len {seq_len} need about {format_bytes(need)} of "
                             f"memory, more than the {format_bytes(have)} available; use a shorter --seq-len or "
                             "less data (--start, --end)")
    return need
