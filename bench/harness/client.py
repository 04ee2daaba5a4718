"""The harness's side of a worker process: start it clean, talk to it, wait for quiet, stop it.

A :class:`Worker` is a ``python -m bench.harness.worker --serve`` child with a clean
environment (:func:`clean_env`): no thread-count or wait-policy variables, whatever the
harness's own process has set or inherited, so each library starts with its defaults.
Every request has a time limit; a worker that misses it is killed. Workers end when
closed, when their handle is collected, and by themselves when the harness's end of
the pipe closes.

A :class:`WorkerPool` hands out workers: a fresh one per timed implementation when
measuring, one shared worker per side on smoke shapes (so a smoke run starts few
processes and imports torch once), and one long-lived reference worker per side that
computes the outputs every timed worker is checked against.
"""
from __future__ import annotations

import itertools
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.harness.protocol import WorkerError, parse_reply, receive, send

__all__ = ["REPO_ROOT", "THREAD_ENV", "clean_env", "cpu_seconds", "machine_busy_seconds", "OtherLoad", "wait_quiet",
           "Worker", "WorkerPool"]

#: The project root: workers import the engine and the harness from here.
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Environment variables (names or prefixes ending in ``_``) that change how a library
#: threads or which backend it uses; a worker starts without any of them.
THREAD_ENV = ("OMP_", "GOMP_", "KMP_", "OPENBLAS_", "GOTO_", "MKL_", "BLIS_", "VECLIB_", "NUMEXPR_",
              "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "TORCH_NUM_THREADS", "MAMBA_GRU_BACKEND")

_DEFAULT_TIMEOUT = 600.0


def clean_env(base=None) -> dict:
    """``base`` (default ``os.environ``) without :data:`THREAD_ENV`, with the repository importable."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not any(k.startswith(p) if p.endswith("_") else k == p for p in THREAD_ENV)}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def _stat_cpu(path: str) -> float | None:
    try:
        with open(path) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) of a process so far; None where /proc is missing.

    ``pid == 0`` means this process's threads other than the calling one: the thread
    pools the harness itself started (BLAS, Numba) while it measured kernels.
    """
    if pid != 0:
        return _stat_cpu(f"/proc/{pid}/stat")
    try:
        tids = [t for t in os.listdir("/proc/self/task") if int(t) != threading.get_native_id()]
    except OSError:
        return None
    return sum(_stat_cpu(f"/proc/self/task/{t}/stat") or 0.0 for t in tids)


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores have spent busy since boot (not idle, not waiting for I/O); None without /proc."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    # guest time is already counted in user time
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """How much of the machine other processes used while ``pids`` were measured.

    ``with OtherLoad(pids) as load: ...`` then ``load.share``: CPU time all processes
    but ``pids``, this one and its finished children spent busy, over the wall time
    times the cores; 0 on a
    quiet machine, 0.5 when others kept half the cores busy. The kernel counts CPU time
    in ticks (10 ms), so an interval shorter than :attr:`MIN_WALL` has no share (None),
    and several short ones are best added up (:meth:`combined`). None without /proc. A
    figure measured beside a large share is disturbed, whatever the statistics say.
    """

    MIN_WALL = 0.25

    def __init__(self, pids):
        self.pids = list(pids) + [os.getpid()]
        self.other_cpu = None
        self.wall = 0.0
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def _ours(self) -> float | None:
        own = [cpu_seconds(p) for p in self.pids]
        if any(c is None for c in own):
            return None
        # children this process has waited for (a whole cli.py run) count as ours too
        t = os.times()
        return sum(own) + t.children_user + t.children_system

    def __enter__(self):
        self._t0, self._busy0, self._ours0 = time.perf_counter(), machine_busy_seconds(), self._ours()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._t0
        busy, ours = machine_busy_seconds(), self._ours()
        if None not in (busy, ours, self._busy0, self._ours0):
            self.other_cpu = max(0.0, (busy - self._busy0) - (ours - self._ours0))

    @property
    def share(self) -> float | None:
        return OtherLoad.combined([self])

    @staticmethod
    def combined(loads) -> float | None:
        """The share over several intervals together (None if too short or not measured)."""
        loads = [x for x in loads if x.other_cpu is not None]
        wall = sum(x.wall for x in loads)
        if not loads or wall < OtherLoad.MIN_WALL:
            return None
        return min(1.0, sum(x.other_cpu for x in loads) / sum(x.wall * x.cores for x in loads))


def wait_quiet(pids, interval: float = 0.03, quiet_polls: int = 2, timeout: float = 2.0,
               fallback: float = 0.25) -> float:
    """Wait until the processes ``pids`` use no CPU, e.g. between two workers' turns.

    ``0`` in ``pids`` stands for this process's threads other than the caller's
    (see :func:`cpu_seconds`).

    Thread pools keep spinning after a call (OpenBLAS up to ~0.1 s, libgomp a while):
    timed right after another worker, a worker would share the cores with those
    spinners. Polls each process's CPU time until it stops growing for ``quiet_polls``
    polls in a row; sleeps ``fallback`` seconds where /proc is not available.

    Returns
    -------
    float
        Seconds waited.
    """
    start = time.perf_counter()
    last = [cpu_seconds(p) for p in pids]
    if any(c is None for c in last):
        time.sleep(fallback)
        return time.perf_counter() - start
    calm = 0
    while calm < quiet_polls and time.perf_counter() - start < timeout:
        time.sleep(interval)
        now = [cpu_seconds(p) for p in pids]
        calm = calm + 1 if now == last else 0
        last = now
    return time.perf_counter() - start


class Worker:
    """A worker process and the requests it answers.

    Parameters
    ----------
    label : str
        For messages.
    env : dict, optional
        The child's environment (default :func:`clean_env`).
    """

    _ids = itertools.count()

    def __init__(self, label: str = "worker", env: dict | None = None):
        self.label = label
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.harness.worker", "--serve"], cwd=str(REPO_ROOT),
            env=clean_env() if env is None else env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr)
        self.cases: dict = {}       # case id -> info reply of its setup

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self, chars: int = 3000) -> str:
        """The end of what the worker wrote to stderr."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-chars:]

    def request(self, op: str, timeout: float = _DEFAULT_TIMEOUT, **fields) -> dict:
        """Send one request and return the checked reply (:func:`bench.harness.protocol.parse_reply`).

        Raises
        ------
        WorkerError
            The worker failed, died, or did not answer within ``timeout`` seconds
            (then it is killed).
        """
        if self.proc.poll() is not None:
            raise WorkerError(f"{self.label}: worker has exited ({self.proc.returncode}):\n{self.stderr_tail()}")
        try:
            send(self.proc.stdin, dict(fields, op=op))
            ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
            if not ready:
                self.kill()
                raise WorkerError(f"{self.label}: no reply to {op!r} within {timeout:.0f} s; killed")
            reply = receive(self.proc.stdout)
        except (EOFError, BrokenPipeError, OSError) as exc:
            self.kill()
            raise WorkerError(f"{self.label}: worker died during {op!r} ({exc!r}):\n{self.stderr_tail()}") from exc
        return parse_reply(reply, op)

    # -- the ops, named -----------------------------------------------------------------
    def setup(self, spec: dict, state=None, case: str | None = None) -> str:
        """Build ``spec`` in the worker; returns the case id (its info is in ``self.cases``)."""
        case = case or f"case{next(self._ids)}"
        self.cases[case] = self.request("setup", spec=spec, state=state, case=case)["info"]
        return case

    def outputs(self, case: str) -> tuple:
        return self.request("outputs", case=case)["arrays"]

    def state(self, case: str) -> dict:
        return self.request("state", case=case)["state"]

    def warmup(self, case: str, calls: int = 2) -> float:
        return self.request("warmup", case=case, calls=calls)["seconds"]

    def step(self, case: str) -> float:
        """One step; returns its seconds as timed inside the worker."""
        return self.request("step", case=case)["seconds"]

    def measure(self, case: str, calls: int, warmup: int = 1, timeout: float = _DEFAULT_TIMEOUT) -> list:
        return self.request("measure", case=case, calls=calls, warmup=warmup, timeout=timeout)["samples"]

    def share(self, case: str) -> float:
        return self.request("share", case=case)["share"]

    def memory(self, case: str, with_peak: bool = False) -> tuple:
        """One step; returns the peak resident bytes it added (None: not measurable here) and its
        seconds, and with ``with_peak`` the process's whole peak resident bytes during the step."""
        reply = self.request("memory", case=case)
        if with_peak:
            return reply["bytes"], reply["seconds"], reply.get("peak")
        return reply["bytes"], reply["seconds"]

    # -- ending ---------------------------------------------------------------------------
    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self, timeout: float = 10.0) -> None:
        """Ask the worker to exit; kill it if it does not within ``timeout`` seconds."""
        if self.proc.poll() is None:
            try:
                self.request("exit", timeout=timeout)
                self.proc.wait(timeout=timeout)
            except (WorkerError, subprocess.TimeoutExpired):
                self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.kill()
        except Exception:   # interpreter shutdown: nothing left to do
            pass


class WorkerPool:
    """Hands out workers: fresh per implementation, or shared per side.

    Parameters
    ----------
    shared : bool
        One worker per ``side`` for everything (smoke runs); otherwise :meth:`fresh`
        starts a new process per implementation and :meth:`release` ends it.
    """

    def __init__(self, shared: bool):
        self.shared = shared
        self._shared: dict = {}
        self._live: list = []

    def fresh(self, side: str, label: str) -> Worker:
        """A worker for one implementation (the side's shared one in a shared pool)."""
        if self.shared:
            if side not in self._shared or self._shared[side].proc.poll() is not None:
                self._shared[side] = Worker(f"shared {side} worker")
            return self._shared[side]
        worker = Worker(label)
        self._live.append(worker)
        return worker

    def reference(self, side: str) -> Worker:
        """The long-lived worker of ``side`` that computes parity references (never timed)."""
        if self.shared:
            return self.fresh(side, "")
        key = "reference " + side
        if key not in self._shared or self._shared[key].proc.poll() is not None:
            self._shared[key] = Worker(f"{side} reference worker")
        return self._shared[key]

    def release(self, worker: Worker) -> None:
        """Done with a worker: ends it unless it is shared."""
        if worker in self._live:
            self._live.remove(worker)
            worker.close()

    def others_quiet(self, worker: Worker | None = None) -> float:
        """Wait until every live worker but ``worker``, and this process's own thread
        pools, are idle; returns seconds waited."""
        pids = [w.pid for w in self._live + list(self._shared.values())
                if w is not worker and w.proc.poll() is None]
        return wait_quiet(pids + [0])

    def close(self) -> None:
        """End every worker of the pool."""
        for w in self._live + list(self._shared.values()):
            w.close()
        self._live.clear()
        self._shared.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
