"""The files of a run folder and the result dict of a run: one writer for every kind of run.

A trained run of the stock protocol, one of the long-horizon protocol and a classical
baseline differ only in their table (``predictions.csv`` or ``window_losses.csv``) and in
whether they carry a checkpoint; :func:`run_files` and :func:`run_result` render them all.
"""
from __future__ import annotations

import time

from forecast.checkpoint import checkpoint_bytes
from forecast.fileio import json_bytes, to_jsonable

__all__ = ["run_files", "run_result"]


def run_files(config, history, metrics: dict, table_name: str, table, summary: dict, started: float,
              checkpoint: tuple | None = None) -> dict:
    """``{file name: bytes}`` of a run folder, in the order they are written.

    Parameters
    ----------
    config : forecast.config.RunConfig
    history : list of dict
    metrics : dict
    table_name : str
        ``predictions.csv`` or ``window_losses.csv``.
    table : pandas.DataFrame
    summary : dict
        ``summary.json`` without ``seconds``, which is taken here from ``started``.
    started : float
        ``time.perf_counter()`` when the run began.
    checkpoint : (state_dict, meta) or None
        ``checkpoint.npz`` when given.

    Notes
    -----
    The bytes depend on the configuration alone (``summary.json`` also holds the wall
    time, ``checkpoint.npz`` a zip timestamp), so whichever process renders them, the
    metrics and the table are the same to the byte.
    """
    files = {
        "config.json": json_bytes(config.to_dict()),
        "history.json": json_bytes(history),
        "metrics.json": json_bytes(metrics),
        table_name: table.to_csv(index=False, float_format="%.10g").encode("utf-8"),
        "summary.json": json_bytes(dict(summary, seconds=time.perf_counter() - started)),
    }
    if checkpoint is not None:
        files["checkpoint.npz"] = checkpoint_bytes(*checkpoint)
    return files


def run_result(config, history, metrics: dict, data: dict, summary: dict, started: float, out_dir) -> dict:
    """The dict :func:`forecast.pipeline.run_training` returns."""
    return {"metrics": to_jsonable(metrics), "history": to_jsonable(history), "config": config.to_dict(),
            "data": to_jsonable(data), "training": to_jsonable(summary["training"]),
            "seconds": time.perf_counter() - started, "out_dir": out_dir}
