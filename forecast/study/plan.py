"""The study's plan: which runs ``compare`` trains, decided before anything runs.

A :class:`StudyPlan` lists one :class:`RunSpec` per (data source, window length, model,
seed), each with its complete, validated :class:`forecast.config.RunConfig` fields
(JSON-ready, so an executor can ship them to another process or machine) and the folder
the client writes it to. A classical baseline (``arima``, ``ets``, ``theta``) has no seed
and runs once, as seed 0, whatever ``--seeds`` says. One source keeps the layout ``<out>/runs/...``; several give
each source a study folder of its own, ``<out>/sources/<kind>-<ticker>/runs/...``.

Under ``--protocol ltsf`` the study also sweeps ``--horizons`` and every run lives at
``<out>/runs/<kind>-<name>/h<H>/seq<L>/<model>/seed<k>`` whatever the number of sources:
the benchmark report (:mod:`forecast.ltsf.report`) reads one folder for all of them.
"""
from __future__ import annotations

import dataclasses
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from forecast.config import RunConfig, refuse_classical_under_ltsf
from forecast.data import parse_source
from forecast.errors import UserInputError
from forecast.fileio import to_jsonable
from forecast.ltsf.protocol import HORIZONS, LTSF
from forecast.study.tuned import apply_tuned, find_tuned, match_tuned
from models.names import CLASSICAL, STUDY_ORDER

__all__ = ["StudyPlan", "RunSpec", "plan_study", "parse_seeds", "parse_int_list", "parse_models",
           "parse_sources", "parse_scheduler", "source_slugs", "shared_fields", "run_dir_for",
           "usable_cores", "default_jobs", "command_line", "PER_RUN_FIELDS", "COMPARE_DEFAULTS",
           "DEFAULT_SEEDS", "SOURCES_DIR", "LOCAL_SCHEDULER", "STUDY_MODELS", "CLASSICAL_SEED", "seeds_for"]

#: RunConfig fields that the study sets per run instead of taking from the command line.
PER_RUN_FIELDS = ("data", "model", "seed", "seq_len", "out")
#: Every name ``--models`` accepts: the four neural models, then the classical baselines.
STUDY_MODELS = (*STUDY_ORDER, *CLASSICAL)
#: The one seed of a classical baseline's run: its fit is deterministic, so more seeds
#: would repeat the same numbers (and make a spread of zero look like a measurement).
CLASSICAL_SEED = 0
#: Folder of the per-source studies when several sources are compared.
SOURCES_DIR = "sources"
#: ``--scheduler`` value that starts a Dask LocalCluster on this machine.
LOCAL_SCHEDULER = "local"
DEFAULT_SEEDS = 3
#: Train options whose default differs for a study. A study trains 12 runs (4 models x
#: 3 seeds); on 2 shared cores, with Mamba and the hybrid at ~13 s per epoch, the study
#: took 10.5 minutes at 15 epochs; the train default of 30 doubles the budget of every
#: run that early stopping does not end.
COMPARE_DEFAULTS = {"epochs": 15}


# -- parsing ---------------------------------------------------------------------------

def parse_int_list(text: str, what: str) -> list[int]:
    """``"30,60,120"`` -> ``[30, 60, 120]`` (duplicates dropped, order kept)."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise UserInputError(f"{what}: give at least one integer, e.g. 60 or 30,60,120")
    try:
        values = [int(t) for t in items]
    except ValueError:
        raise UserInputError(f"{what}: {text!r} is not a comma-separated list of integers")
    return list(dict.fromkeys(values))


def parse_seeds(text) -> list[int]:
    """Seeds from ``--seeds``: a count (``3`` -> 0, 1, 2) or a list (``7,11`` or ``5,``).

    A single number is a count, because "how many seeds" is the usual question; a
    trailing comma makes it one explicit seed.
    """
    text = str(text).strip()
    if "," not in text:
        try:
            count = int(text)
        except ValueError:
            raise UserInputError(f"--seeds: {text!r} is neither a count nor a list of seeds")
        if count < 1:
            raise UserInputError(f"--seeds: the count must be at least 1, got {count}")
        return list(range(count))
    seeds = parse_int_list(text, "--seeds")
    if any(s < 0 for s in seeds):
        raise UserInputError(f"--seeds: seeds must be non-negative, got {text!r}")
    return seeds


def parse_models(text: str) -> list[str]:
    """Model names from ``--models`` (comma-separated), validated: the neural models and
    the classical baselines (:data:`models.names.CLASSICAL`)."""
    names = list(dict.fromkeys(t.strip().lower() for t in str(text).split(",") if t.strip()))
    unknown = [n for n in names if n not in STUDY_MODELS]
    if unknown or not names:
        raise UserInputError(f"--models: unknown model(s) {', '.join(unknown) or '(none)'}; "
                             f"choose from {', '.join(STUDY_MODELS)}")
    return names


def seeds_for(model: str, seeds) -> list[int]:
    """The seeds a model runs with: all of ``--seeds``, or :data:`CLASSICAL_SEED` alone
    for a classical baseline (one run: it has no seed)."""
    return [CLASSICAL_SEED] if model in CLASSICAL else list(seeds)


def parse_sources(text: str) -> list[str]:
    """Sources from ``--data`` (comma-separated), validated, in canonical spelling.

    ``"sample:aapl, yahoo:MSFT,prices.csv"`` -> ``["sample:AAPL", "yahoo:MSFT", "prices.csv"]``
    (duplicates dropped, order kept). A CSV path therefore cannot contain a comma.
    """
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise UserInputError("--data: give at least one source, e.g. sample:AAPL,sample:MSFT")
    return list(dict.fromkeys(str(parse_source(item)) for item in items))


def source_slugs(sources) -> dict:
    """A folder name per source: ``sample:AAPL`` -> ``sample-AAPL``, ``data/x.csv`` -> ``csv-x``.

    Two sources that would share a name (two ``prices.csv`` in different folders) get
    ``-2``, ``-3``... in the order given.
    """
    slugs: dict = {}
    for source in sources:
        spec = parse_source(source)
        base = "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{spec.kind}-{spec.ticker}")
        slug, k = base, 1
        while slug in slugs.values():
            k += 1
            slug = f"{base}-{k}"
        slugs[source] = slug
    return slugs


def parse_scheduler(text: str | None) -> tuple[str | None, int | None]:
    """``--scheduler``: ``None`` (the local process pool), ``local[:N]`` or an address.

    Returns
    -------
    (kind, workers) : tuple
        ``(None, None)`` for the pool, ``("local", N or None)`` for a LocalCluster,
        ``(address, None)`` for an existing Dask scheduler (``tcp://HOST:PORT``, or
        any address Dask understands: ``tls://``, ``ws://``...).
    """
    if text is None:
        return None, None
    text = str(text).strip()
    name, sep, count = text.partition(":")
    if name.lower() == LOCAL_SCHEDULER and "//" not in count:
        if not sep:
            return LOCAL_SCHEDULER, None
        try:
            workers = int(count)
        except ValueError:
            workers = 0
        if workers < 1:
            raise UserInputError(f"--scheduler {text!r}: local:N needs a worker count of at least 1")
        return LOCAL_SCHEDULER, workers
    if "://" not in text or not text.split("://", 1)[1]:
        raise UserInputError(f"--scheduler {text!r}: give tcp://HOST:PORT (a running 'dask scheduler') "
                             "or local[:N] (a Dask cluster on this machine)")
    return text, None


def shared_fields() -> dict:
    """The RunConfig fields a user sets once for every run of the study, with their defaults."""
    return {name: value for name, value in RunConfig.defaults().items() if name not in PER_RUN_FIELDS}


# -- planning --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)   # identity hash: a spec keys its process and timing
class RunSpec:
    """One training run of the study: its configuration and where it writes."""

    model: str
    seed: int
    seq_len: int          # the study's window length (a tuned run's own is in config)
    config: dict          # RunConfig fields, JSON-ready
    run_dir: Path
    horizon: int | None = None    # set when the study sweeps horizons (--protocol ltsf)
    tuned: dict | None = None     # forecast.study.tuned.tuned_record of a tuned run

    @property
    def source(self) -> str:
        """The run's data source (``--data`` spelling)."""
        return str(self.config["data"])

    @property
    def label(self) -> str:
        horizon = "" if self.horizon is None else f" horizon {self.horizon}"
        tuned = " (tuned)" if self.tuned else ""
        return f"{self.model}{tuned} seed {self.seed} seq_len {self.seq_len}{horizon} on {self.source}"


@dataclass
class StudyPlan:
    """Everything ``compare`` will do, decided before anything runs.

    ``jobs`` is the number of runs trained at once on this machine (the local pool's
    processes, or a LocalCluster's workers); a remote cluster decides its own.
    """

    out_dir: Path
    models: list
    seeds: list
    seq_lens: list
    base: dict            # RunConfig fields shared by every run (but the per-run ones)
    runs: list            # RunSpec
    jobs: int
    threads: int
    backend: str
    sources: list = dataclasses.field(default_factory=list)
    source_dirs: dict = dataclasses.field(default_factory=dict)   # source -> its study folder
    scheduler: str | None = None     # None: local pool; "local": LocalCluster; else an address
    horizons: list = dataclasses.field(default_factory=list)     # the runs' horizons
    tuned_dir: str | None = None     # --tuned: the folder of best.json files
    tuned_files: list = dataclasses.field(default_factory=list)  # its TunedFile, matched or not

    @property
    def protocol(self) -> str:
        """The runs' ``--protocol``."""
        return str(self.base.get("protocol", "stock"))

    @property
    def several_sources(self) -> bool:
        return len(self.sources) > 1


def run_dir_for(out_dir: Path, model: str, seed: int, seq_len: int, several: bool) -> Path:
    """``runs/<model>/seed<k>``, under ``runs/seq<L>/`` when several windows are compared."""
    root = Path(out_dir) / "runs"
    if several:
        root = root / f"seq{seq_len}"
    return root / model / f"seed{seed}"


def series_run_dir(out_dir: Path, slug: str, horizon: int, seq_len: int, model: str, seed: int) -> Path:
    """``runs/<slug>/h<H>/seq<L>/<model>/seed<k>``: a run of a ``--protocol ltsf`` study."""
    return Path(out_dir) / "runs" / slug / f"h{horizon}" / f"seq{seq_len}" / model / f"seed{seed}"


def plan_study(args, cores: int | None = None) -> StudyPlan:
    """Turn parsed arguments into a validated :class:`StudyPlan`.

    Every run's RunConfig is built and validated here, so a bad option fails at once
    with one message instead of in every worker. With ``--tuned DIR`` each run whose
    best.json is in ``DIR`` takes its options (:mod:`forecast.study.tuned`); two files
    for one run are refused here, before anything is written.
    """
    models = parse_models(args.models)
    seeds = parse_seeds(args.seeds)
    sources = parse_sources(getattr(args, "data", None) or RunConfig.defaults()["data"])
    scheduler, cluster_workers = parse_scheduler(getattr(args, "scheduler", None))
    if scheduler not in (None, LOCAL_SCHEDULER) and args.jobs is not None:
        raise UserInputError("--jobs applies to this machine (the process pool or --scheduler local); "
                             "a remote cluster trains as many runs at once as it has worker threads")
    given = {name: getattr(args, name) for name in shared_fields() if getattr(args, name, None) is not None}
    ltsf = given.get("protocol") == LTSF
    refuse_classical_under_ltsf(models, given.get("protocol"))
    overrides = {} if ltsf else dict(COMPARE_DEFAULTS)
    overrides.update(given)
    # The first source stands in while the shared options are checked (a series source
    # is refused by the stock protocol and the other way round).
    base_cfg = RunConfig(**overrides, data=sources[0]).validate()
    seq_lens = (parse_int_list(args.seq_lens, "--seq-lens") if args.seq_lens
                else [int(base_cfg.seq_len)])
    horizons_text = getattr(args, "horizons", None)
    if horizons_text and not ltsf:
        raise UserInputError("--horizons sweeps the horizons of --protocol ltsf; the stock study "
                             "takes one --horizon")
    if horizons_text and "horizon" in given:
        raise UserInputError("give --horizons (several) or --horizon (one), not both")
    horizons = (parse_int_list(horizons_text, "--horizons") if horizons_text
                else [int(base_cfg.horizon)] if "horizon" in given or not ltsf else list(HORIZONS))
    out_dir = Path(args.out)
    several = len(seq_lens) > 1
    tuned_dir = getattr(args, "tuned", None)
    tuned_files = find_tuned(tuned_dir) if tuned_dir else []
    slugs = source_slugs(sources)
    source_dirs = {src: (out_dir / SOURCES_DIR / slugs[src] if len(sources) > 1 and not ltsf else out_dir)
                   for src in sources}
    runs = []
    for source in sources:
        for horizon in horizons:
            for seq_len in seq_lens:
                for model in models:
                    for seed in seeds_for(model, seeds):
                        run_dir = (series_run_dir(out_dir, slugs[source], horizon, seq_len, model, seed) if ltsf
                                   else run_dir_for(source_dirs[source], model, seed, seq_len, several))
                        cfg = dataclasses.replace(base_cfg, data=source, model=model, seed=seed,
                                                  seq_len=seq_len, horizon=horizon, out=str(run_dir))
                        cfg.validate()
                        record = None
                        found = match_tuned(tuned_files, cfg) if tuned_files else None
                        if found is not None:
                            # Several --seq-lens: the window is what the study varies.
                            cfg, record = apply_tuned(cfg, found, keep_seq_len=several)
                        runs.append(RunSpec(model, seed, seq_len, cfg.to_dict(), run_dir,
                                            horizon if ltsf else None, tuned=record))
    backend = str(base_cfg.backend)
    cores = cores or usable_cores()
    if args.jobs is not None and args.jobs < 1:
        raise UserInputError(f"--jobs must be at least 1, got {args.jobs}")
    jobs = cluster_workers or args.jobs or default_jobs(backend, len(runs), cores)
    jobs = max(1, min(jobs, len(runs)))
    threads = max(1, cores // jobs)
    per_run = PER_RUN_FIELDS + (("horizon",) if ltsf else ())
    base = {name: value for name, value in base_cfg.to_dict().items() if name not in per_run}
    return StudyPlan(out_dir, models, seeds, seq_lens, base, runs, jobs, threads, backend,
                     sources=sources, source_dirs=source_dirs, scheduler=scheduler, horizons=horizons,
                     tuned_dir=str(tuned_dir) if tuned_dir else None, tuned_files=tuned_files)


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_jobs(backend: str, n_runs: int, cores: int) -> int:
    """How many runs to train at once.

    The models are small, so one run cannot keep several cores busy: a matrix product
    of a few thousand rows by 64 columns gains nothing from BLAS threads, and Numba's
    parallel loops have only ``batch x channel-chunk`` tasks. Independent runs scale
    almost perfectly instead, so both backends use one process per core. The backend
    decides what happens to cores left over when there are fewer runs than cores:
    Numba workers receive them as kernel threads (:func:`thread_env`); NumPy workers
    cannot use them.
    """
    del backend  # same process count for both; see thread_env for the difference
    return max(1, min(cores, n_runs))


def command_line(plan: StudyPlan) -> str:
    """A command that repeats the study (every option spelled out that differs from default)."""
    defaults = to_jsonable(RunConfig.defaults(plan.protocol))
    # The backend's default depends on the environment, so the command always names it.
    del defaults["backend"]
    if plan.protocol != LTSF:
        defaults.update(COMPARE_DEFAULTS)
    parts = ["python", "cli.py", "compare", "--data", ",".join(plan.sources or [defaults["data"]]),
             "--models", ",".join(plan.models),
             "--seeds", ",".join(map(str, plan.seeds)) + ("," if len(plan.seeds) == 1 else ""),
             "--seq-lens", ",".join(map(str, plan.seq_lens))]
    if plan.protocol == LTSF:
        parts += ["--protocol", LTSF, "--horizons", ",".join(map(str, plan.horizons))]
    if plan.scheduler == LOCAL_SCHEDULER:
        parts += ["--scheduler", f"{LOCAL_SCHEDULER}:{plan.jobs}"]
    elif plan.scheduler:
        parts += ["--scheduler", plan.scheduler]
    else:
        parts += ["--jobs", str(plan.jobs)]
    for name, value in plan.base.items():
        if name == "protocol" or value is None or (name in defaults and defaults[name] == value):
            continue
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        parts += ["--" + name.replace("_", "-"), text]
    if plan.tuned_dir:
        parts += ["--tuned", plan.tuned_dir]
    parts += ["--out", str(plan.out_dir)]
    return " ".join(shlex.quote(p) for p in parts)
