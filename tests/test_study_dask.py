"""``compare`` on a real Dask cluster (``distributed.LocalCluster``, worker processes).

One small study (2 models x 2 seeds, 3 epochs, NumPy kernels) is trained on the local
process pool as the reference; the same study on the cluster must give byte-identical
``metrics.json`` and ``predictions.csv``, also when a worker process is killed while a
run is on it, and when the study is resumed by the other executor. Every cluster is
closed at the end and its worker processes are checked gone; every wait is bounded.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

distributed = pytest.importorskip("distributed")

import cli  # noqa: E402
from forecast.checkpoint import load_checkpoint  # noqa: E402
from forecast.study import compare, dask_executor  # noqa: E402
from forecast.study.fingerprint import fingerprint  # noqa: E402
from forecast.study.plan import plan_study  # noqa: E402

STUDY = ["--models", "gru,mingru", "--seeds", "2", "--epochs", "3", "--hidden", "4", "--d-state", "4",
         "--seq-len", "10", "--start", "2011-01-01", "--batch-size", "32", "--backend", "numpy"]
#: Upper bound of any one wait in this file (a busy 2-core machine, niced).
BOUND = 240.0
SAME_BYTES = ("metrics.json", "predictions.csv")


def _bounded(fn, *args):
    """``fn(*args)`` in a daemon thread, failing the test if it takes longer than BOUND."""
    box: dict = {}

    def call():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:   # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(BOUND)
    assert not thread.is_alive(), f"{getattr(fn, '__name__', fn)} did not finish within {BOUND:.0f} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def _children() -> set:
    """Our child processes, less multiprocessing's resource tracker (it lives as long as we do)."""
    pids = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(proc.cmdline()):
                pids.add(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


def _pool_workers(pids) -> set:
    """Those of ``pids`` that are spawned pool workers (not a short-lived helper process)."""
    found = set()
    for pid in pids:
        try:
            if "spawn_main" in " ".join(psutil.Process(pid).cmdline()):
                found.add(pid)
        except psutil.NoSuchProcess:
            pass
    return found


def _wait_gone(pids, timeout=60.0) -> set:
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE}
        time.sleep(0.1)
    return alive


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes (one thread each) on loopback; closed and checked gone at the end."""
    before = _children()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0", silence_logs=50) as cl:
        yield cl
    assert not _wait_gone(_children() - before), "worker processes left behind"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("pool") / "study"
    assert _bounded(cli.main, ["compare", *STUDY, "--jobs", "2", "--out", str(out)]) == 0
    return out


def _run_dirs(out: Path) -> list:
    return sorted(p.parent.relative_to(out) for p in out.glob("runs/*/seed*/metrics.json"))


def _assert_same_runs(out: Path, reference: Path) -> None:
    runs = _run_dirs(reference)
    assert runs and _run_dirs(out) == runs
    for rel in runs:
        for name in SAME_BYTES:
            assert (out / rel / name).read_bytes() == (reference / rel / name).read_bytes(), (rel, name)
        mine, _ = load_checkpoint(out / rel / "checkpoint.npz")
        theirs, _ = load_checkpoint(reference / rel / "checkpoint.npz")
        assert mine.keys() == theirs.keys()
        assert all(np.array_equal(mine[k], theirs[k]) for k in mine), rel


def test_cluster_gives_the_pool_numbers(cluster, reference, tmp_path):
    out = tmp_path / "dask"
    assert _bounded(cli.main, ["compare", *STUDY, "--scheduler", cluster.scheduler_address, "--out", str(out)]) == 0
    _assert_same_runs(out, reference)
    env = json.loads((out / "study.json").read_text())["environment"]
    assert env["executor"] == f"Dask scheduler {cluster.scheduler_address}"
    assert env["Dask workers at start"] == 2
    # The worker plugin pinned BLAS to one thread in every worker, for good.
    with distributed.Client(cluster.scheduler_address, timeout=30) as client:
        blas = client.run(_blas_threads)
    assert len(blas) == 2 and all(threads == [1] for threads in blas.values()), blas


def _blas_threads() -> list:
    from threadpoolctl import threadpool_info

    return sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})


def test_worker_killed_mid_run_loses_nothing(cluster, reference, tmp_path):
    args = compare_args(["--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "killed")])
    plan = plan_study(args)
    result: dict = {}

    def study():
        result["value"] = compare.run_study(plan, progress=False)

    with distributed.Client(cluster.scheduler_address, timeout=30) as client:
        thread = threading.Thread(target=study, daemon=True)
        thread.start()
        victim = _worker_with_a_run(client, thread)
        assert victim is not None, "no run was seen executing on a worker"
        address, pid = victim
        os.kill(pid, signal.SIGKILL)
        thread.join(BOUND)
        assert not thread.is_alive(), "the study did not finish after a worker was killed"
        assert not _wait_gone([pid], 30)
    outcome = result["value"]
    assert outcome.failures == {}
    _assert_same_runs(plan.out_dir, reference)


def test_pool_worker_killed_mid_study_loses_nothing(reference, tmp_path):
    # The local pool breaks when one of its processes dies; its unfinished runs go to a new pool.
    plan = plan_study(compare_args(["--jobs", "2", "--out", str(tmp_path / "pool-killed")]))
    before = _children()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(value=compare.run_study(plan, progress=False)),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + BOUND
    killed = None
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        workers = _pool_workers(_children() - before)
        if workers:
            # At once: the runs here take a fraction of a second, so a worker found later may
            # have no run left to lose. Killed while it starts or trains, its pool breaks
            # just the same, and every run it held must go to a new pool.
            try:
                os.kill(min(workers), signal.SIGKILL)
                killed = min(workers)
            except ProcessLookupError:  # it ended meanwhile: take the next one
                continue
        time.sleep(0.05)
    assert killed is not None, "no pool worker was seen"
    thread.join(BOUND)
    assert not thread.is_alive(), "the study did not finish after a pool worker was killed"
    assert result["value"].failures == {}
    _assert_same_runs(plan.out_dir, reference)
    env = json.loads((plan.out_dir / "study.json").read_text())["environment"]
    assert env["runs restarted after a worker process died"] >= 1
    assert not _wait_gone(_children() - before), "pool workers left behind"


def _worker_with_a_run(client, thread):
    """``(address, pid)`` of a worker as soon as it is executing a run (polled, bounded)."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline and thread.is_alive():
        executing = client.run(lambda dask_worker: [str(ts.key) for ts in dask_worker.state.executing])
        busy = [w for w, keys in executing.items() if any(k.startswith("run-") for k in keys)]
        if busy:
            pids = client.run(os.getpid, workers=busy[:1])
            return busy[0], pids[busy[0]]
        time.sleep(0.05)
    return None


def compare_args(extra):
    import argparse

    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    return parser.parse_args([*STUDY, *extra])


def test_resume_across_executors_and_local_cluster(reference, tmp_path, capsys):
    # A study of the pool, one run lost, resumed on a LocalCluster started by --scheduler local:2.
    copy = tmp_path / "copy"
    shutil.copytree(reference, copy)
    shutil.rmtree(copy / "runs" / "gru" / "seed1")
    before, environ = _children(), dict(os.environ)
    status = _bounded(cli.main, ["compare", *STUDY, "--scheduler", "local:2", "--resume", "--out", str(copy)])
    assert status == 0
    assert dict(os.environ) == environ      # the workers' variables did not leak into the client
    assert "1 run(s) to train (3 reused)" in capsys.readouterr().err
    _assert_same_runs(copy, reference)
    env = json.loads((copy / "study.json").read_text())["environment"]
    assert env["executor"].startswith("Dask LocalCluster (2 worker processes")
    assert not _wait_gone(_children() - before), "the LocalCluster left processes behind"


def test_workers_with_other_code_are_refused(cluster, tmp_path, monkeypatch, capsys):
    other = dict(fingerprint(), code="0" * 64)
    monkeypatch.setattr(dask_executor, "fingerprint", lambda: other)
    out = tmp_path / "refused"
    status = _bounded(cli.main, ["compare", *STUDY, "--scheduler", cluster.scheduler_address, "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "runs other project code" in err and "Traceback" not in err
    assert not out.exists()
    # The refused plugin is not left behind for workers that join later.
    with distributed.Client(cluster.scheduler_address, timeout=30) as client:
        plugins = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins))
    assert dask_executor.PLUGIN_NAME not in plugins


def test_unreachable_scheduler_is_one_line(tmp_path, monkeypatch, capsys):
    import socket

    with socket.socket() as sock:        # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT", 1)
    out = tmp_path / "nowhere"
    status = _bounded(cli.main, ["compare", *STUDY, "--scheduler", f"tcp://127.0.0.1:{port}", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "cannot reach a Dask scheduler" in err
    assert not out.exists()
