"""``compare --tuned DIR``: give each run of a study the configuration ``cli.py tune`` found for it.

``DIR`` holds tune output folders (``DIR/<name>/best.json``; a ``DIR/best.json`` of its
own counts too). A best.json **matches** a planned run when it names

* the same ``protocol`` (``stock`` when it names none),
* the same ``model``,
* the same data source (both compared in canonical spelling, ``sample:aapl`` =
  ``sample:AAPL``),
* under ``--protocol ltsf``, the same ``horizon``; under the stock protocol, the same
  ``target``. A hand-written best.json without that key matches any.

A matching run trains with the study's shared options overridden by the best.json's
values (:func:`apply_tuned`), except the options in :data:`KEPT`: what the study sets per
run, what makes its rows comparable (the data, its test days, how forecasts are scored) and
how its workers compute. Every seed of the run's model on that source (and horizon) gets the same
configuration. Two best.json files matching one run are refused (:func:`match_tuned`).

A tuned run records what it used as the ``tuned`` entry of its ``summary.json``
(:func:`tuned_record`, :func:`stamp_summary`): the best.json's path and every option it
changed, ``{option: {"shared": value, "tuned": value}}``. The reports read it back
(:func:`study_window`), so they mark tuned rows and list the tuned options.

A tuned ``seq_len`` changes the run's windows, not its test days (windows are assigned
to the split by their target rows), so the run keeps its place in the study's window
length: it is reported with the window it was planned for, and its own is in the
record. When the study sweeps several ``--seq-lens``, the window is what the study
varies, and a tuned ``seq_len`` is left out (named in the record's ``not_applied``).

This module stays cheap to import (no NumPy at module level).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from forecast.errors import UserInputError
from forecast.ltsf.protocol import LTSF, STOCK
from models.names import BRANCHES, HYBRID

__all__ = ["KEPT", "MODEL_ONLY", "TunedFile", "find_tuned", "match_tuned", "apply_tuned", "tuned_record",
           "stamp_summary", "study_window", "changed_text", "BEST_JSON"]

#: The file ``cli.py tune`` writes (every RunConfig field but ``out``).
BEST_JSON = "best.json"

#: Options a best.json never overrides. ``model``, ``seed``, ``out``: the study sets them
#: per run. ``protocol``, ``data``, ``start``, ``end``, ``target``, ``horizon``, ``split``:
#: they decide the series, the test days and what is predicted, so a tuned row must share
#: them with the rows it is compared with. ``level``, ``interval``: how the prediction
#: intervals are scored, which must be the same for every row. ``backend``, ``dtype``: the
#: study starts and warms its workers once for one backend and dtype.
KEPT = ("protocol", "model", "data", "seed", "out", "start", "end", "target", "horizon", "split",
        "level", "interval", "backend", "dtype")

#: Options only some models read. A best.json of another model carries their default,
#: which says nothing about that model, so they are not applied (and not listed).
MODEL_ONLY = {"fusion": (HYBRID,), "d_state": (BRANCHES[0], HYBRID)}


@dataclass(frozen=True)
class TunedFile:
    """One best.json of ``--tuned``: where it is, what it tunes, its options.

    Attributes
    ----------
    path : Path
        The file, as found below the ``--tuned`` folder.
    protocol, model, source : str
        What it was tuned for; ``source`` in canonical spelling.
    horizon : int or None
        Its horizon (None: not given, matches any).
    target : str or None
        Its target (None: not given, matches any).
    values : dict
        Every option of the file.
    """

    path: Path
    protocol: str
    model: str
    source: str
    horizon: int | None
    target: str | None
    values: dict

    def matches(self, config) -> bool:
        """Whether this file tunes the run of ``config`` (a validated RunConfig)."""
        if (self.protocol, self.model, self.source) != (config.protocol, config.model, str(config.data)):
            return False
        if config.protocol == LTSF:
            return self.horizon is None or self.horizon == int(config.horizon)
        return self.target is None or self.target == config.target


def _read(path: Path) -> TunedFile:
    """Read and check one best.json (one-line errors that name the file)."""
    from forecast.config_file import read_config_file
    from forecast.data import parse_source

    try:
        values = read_config_file(path)
    except UserInputError as exc:
        # read_config_file speaks of --config; here the file came from --tuned.
        raise UserInputError(str(exc).replace("--config ", "--tuned: ", 1)) from None
    missing = [key for key in ("model", "data") if not values.get(key)]
    if missing:
        raise UserInputError(f"--tuned: {path} names no {' and no '.join(missing)}; a best.json must say "
                             "which model on which data it tunes")
    try:
        source = str(parse_source(str(values["data"])))
    except UserInputError as exc:
        raise UserInputError(f"--tuned: {path}: {exc}") from None
    horizon = values.get("horizon")
    try:
        horizon = None if horizon is None else int(horizon)
    except (TypeError, ValueError):
        raise UserInputError(f"--tuned: {path}: horizon {horizon!r} is not an integer") from None
    target = values.get("target")
    return TunedFile(path=path, protocol=str(values.get("protocol") or STOCK).strip().lower(),
                     model=str(values["model"]).strip().lower(), source=source, horizon=horizon,
                     target=None if target is None else str(target).strip().lower(), values=values)


def find_tuned(folder) -> list[TunedFile]:
    """Every best.json of a ``--tuned`` folder: ``folder/best.json`` and ``folder/*/best.json``.

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    list of TunedFile
        In path order.

    Raises
    ------
    UserInputError
        The folder does not exist or holds no best.json; a best.json is unreadable, names
        an unknown option or model, or names no model or data.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"--tuned {folder}: no such folder; give the folder holding the output "
                             "folders of 'cli.py tune'")
    paths = sorted(p for p in [folder / BEST_JSON, *folder.glob(f"*/{BEST_JSON}")] if p.is_file())
    if not paths:
        raise UserInputError(f"--tuned {folder}: no {BEST_JSON} in it or in its subfolders "
                             f"({folder}/*/{BEST_JSON}); give the folder holding the output folders "
                             "of 'cli.py tune'")
    return [_read(p) for p in paths]


def match_tuned(files, config) -> TunedFile | None:
    """The one best.json of ``files`` that tunes the run of ``config``, or None.

    Raises
    ------
    UserInputError
        Two files match the run: which one applies would be a guess.
    """
    found = [f for f in files if f.matches(config)]
    if len(found) > 1:
        what = f"{config.model} on {config.data}"
        what += f" at horizon {config.horizon}" if config.protocol == LTSF else f" (target {config.target})"
        raise UserInputError(f"--tuned: {found[0].path} and {found[1].path} both tune {what}; keep one of them")
    return found[0] if found else None


def apply_tuned(config, tuned: TunedFile, keep_seq_len: bool = False):
    """The run's configuration with ``tuned``'s options, and the record of what changed.

    Parameters
    ----------
    config : RunConfig
        The run as the study's shared options make it (validated).
    tuned : TunedFile
        Its best.json (:func:`match_tuned`).
    keep_seq_len : bool
        Leave ``seq_len`` at the study's: the study sweeps several window lengths.

    Returns
    -------
    (RunConfig, dict)
        The validated configuration and :func:`tuned_record`'s record.

    Raises
    ------
    UserInputError
        The combination is refused by :meth:`RunConfig.validate` (the message names the file).
    """
    options = {}
    for name, value in tuned.values.items():
        if name in KEPT or value is None:       # None: the file leaves the option to the study
            continue
        if name in MODEL_ONLY and config.model not in MODEL_ONLY[name]:
            continue
        options[name] = value
    not_applied = {}
    if keep_seq_len and "seq_len" in options:
        not_applied["seq_len"] = options.pop("seq_len")
    try:
        new = dataclasses.replace(config, **options).validate()
    except UserInputError as exc:
        raise UserInputError(f"--tuned: {tuned.path}: {exc}") from None
    return new, tuned_record(tuned.path, config.to_dict(), new.to_dict(), not_applied)


def tuned_record(path, shared: dict, tuned: dict, not_applied: dict | None = None) -> dict:
    """What a tuned run records in its ``summary.json`` (key ``tuned``).

    Parameters
    ----------
    path : str or Path
        The best.json.
    shared, tuned : dict
        The run's RunConfig fields (JSON-ready) without and with the best.json.
    not_applied : dict, optional
        Options of the file the run did not take, ``{option: value}``.

    Returns
    -------
    dict
        ``best_json`` (the path as given), ``changed``
        (``{option: {"shared": value, "tuned": value}}``, only the options whose value
        differs) and, when some were left out, ``not_applied``.
    """
    changed = {name: {"shared": shared.get(name), "tuned": value} for name, value in tuned.items()
               if shared.get(name) != value}
    record = {"best_json": str(path), "changed": changed}
    if not_applied:
        record["not_applied"] = dict(not_applied)
    return record


def stamp_summary(files: dict, record: dict | None) -> dict:
    """A run folder's ``{file: bytes}`` with ``record`` as the ``tuned`` entry of its
    ``summary.json`` (unchanged without a record)."""
    if not record or "summary.json" not in files:
        return files
    from forecast.fileio import json_bytes

    summary = json.loads(files["summary.json"])
    summary["tuned"] = record
    return {**files, "summary.json": json_bytes(summary)}


def study_window(config: dict, info: dict) -> int:
    """The window length a run has in its study's tables: the one it was planned for.

    A tuned ``seq_len`` changes the run's own (``config``) but not its place in the study,
    whose window is the ``shared`` value of its record (``info``: its ``summary.json``).
    """
    changed = ((info or {}).get("tuned") or {}).get("changed") or {}
    if "seq_len" in changed and changed["seq_len"].get("shared") is not None:
        return int(changed["seq_len"]["shared"])
    return int(config["seq_len"])


def _value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "–" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def changed_text(record: dict) -> str:
    """``hidden 16 → 32, lr 0.003 → 0.0012`` for a table cell (``none`` when nothing changed)."""
    changed = (record or {}).get("changed") or {}
    parts = [f"{name} {_value(v.get('shared'))} → {_value(v.get('tuned'))}" for name, v in changed.items()]
    skipped = (record or {}).get("not_applied") or {}
    parts += [f"{name} {_value(v)} not applied (the study sweeps it)" for name, v in skipped.items()]
    return ", ".join(parts) or "none (the best.json equals the shared options)"
