"""The messages between the harness and a worker process, and their checks.

A request is a dict with an ``op`` (one of :data:`OPS`) and the fields that op needs;
a reply is a dict with ``ok`` and, on success, the fields of :data:`REPLY_FIELDS`, or
``error`` (the worker's traceback) on failure. Both travel pickled over the worker's
stdin/stdout: a pickle frame is self-delimiting and carries NumPy arrays as they are.
Only the harness talks to its own child this way; nothing is read from elsewhere.
"""
from __future__ import annotations

import math
import pickle

__all__ = ["OPS", "REPLY_FIELDS", "WorkerError", "send", "receive", "parse_reply", "ok", "failure"]

#: What a worker answers.
#:
#: ``setup``    build a case from its spec (and a state dict, if given); reply ``info``
#: ``state``    the case's weights under the engine's names; reply ``state``
#: ``outputs``  outputs and gradients for a parity check; reply ``arrays``
#: ``warmup``   ``calls`` untimed steps; reply ``seconds`` (their total)
#: ``step``     one step; reply ``seconds`` (timed inside the worker)
#: ``measure``  ``warmup`` untimed steps, then ``calls`` timed ones; reply ``samples``
#: ``share``    fraction of a step spent in the time-loop kernels; reply ``share``
#: ``memory``   one step; reply ``bytes`` (the peak resident memory it added, None where the
#:              platform cannot tell), ``seconds`` (the step's time) and ``peak`` (the
#:              process's peak resident memory during the step, or None)
#: ``exit``     reply, then end the process
OPS = ("setup", "state", "outputs", "warmup", "step", "measure", "share", "memory", "exit")
REPLY_FIELDS = {
    "setup": ("info",), "state": ("state",), "outputs": ("arrays",), "warmup": ("seconds",),
    "step": ("seconds",), "measure": ("samples",), "share": ("share",), "memory": ("bytes", "seconds"),
    "exit": (),
}


class WorkerError(RuntimeError):
    """A worker failed, died, timed out or answered something malformed.

    ``kind`` is ``"import"`` when the worker could not import what its case needs
    (a peer library not installed): callers skip such a case instead of failing.
    """

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        self.kind = kind


def send(stream, message: dict) -> None:
    """Write one pickled message to a binary stream and flush it."""
    pickle.dump(message, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def receive(stream):
    """Read one pickled message; ``EOFError`` when the other side has gone."""
    return pickle.load(stream)


def ok(op: str, **fields) -> dict:
    """A successful reply to ``op``."""
    return {"ok": True, "op": op, **fields}


def failure(op, error: str, kind: str | None = None) -> dict:
    """A failed reply (``error`` is the worker's traceback, ``kind`` see :class:`WorkerError`)."""
    return {"ok": False, "op": op, "error": error, "kind": kind}


def _positive_seconds(values, what: str) -> None:
    for v in values:
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise WorkerError(f"{what}: not a duration in seconds: {v!r}")


def parse_reply(reply, op: str) -> dict:
    """Check a worker's reply to ``op`` and return it.

    Parameters
    ----------
    reply : object
        What :func:`receive` returned.
    op : str
        The request's op; the reply must be for it.

    Returns
    -------
    dict
        The reply, with the fields of :data:`REPLY_FIELDS` present and well formed.

    Raises
    ------
    WorkerError
        On a failure reply (with the worker's traceback), a reply to another op, a
        missing field or a timing that is not a finite duration.
    """
    if not isinstance(reply, dict) or "ok" not in reply:
        raise WorkerError(f"malformed reply to {op!r}: {reply!r:.200}")
    if reply.get("op") != op:
        raise WorkerError(f"reply to {reply.get('op')!r} received for a {op!r} request")
    if not reply["ok"]:
        raise WorkerError(f"worker failed on {op!r}:\n{reply.get('error', '(no traceback)')}", reply.get("kind"))
    missing = [f for f in REPLY_FIELDS[op] if f not in reply]
    if missing:
        raise WorkerError(f"reply to {op!r} lacks {', '.join(missing)}")
    if op in ("step", "warmup", "memory"):
        _positive_seconds([reply["seconds"]], op)
    if op == "memory" and not (reply["bytes"] is None or (isinstance(reply["bytes"], int) and reply["bytes"] >= 0)):
        raise WorkerError(f"memory: expected a number of bytes or None, got {reply['bytes']!r}")
    if op == "measure":
        samples = reply["samples"]
        if not isinstance(samples, list) or not samples:
            raise WorkerError(f"measure: expected a non-empty list of samples, got {samples!r:.200}")
        _positive_seconds(samples, op)
    if op == "outputs" and not isinstance(reply["arrays"], tuple):
        raise WorkerError(f"outputs: expected a tuple of arrays, got {type(reply['arrays']).__name__}")
    if op == "share" and not (isinstance(reply["share"], float) and 0.0 <= reply["share"] <= 1.0):
        raise WorkerError(f"share: expected a fraction in [0, 1], got {reply['share']!r}")
    return reply
