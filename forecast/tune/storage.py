"""Where a tuning study lives, and how a second ``tune`` continues it.

By default the study is a SQLite file in the output folder (``study.db``): nothing to
start, and running the same command again opens the same file and adds trials.
``--storage URL`` takes any Optuna RDB URL instead (``postgresql://...``,
``mysql+pymysql://...``, ``sqlite:///path``): several ``tune`` processes, on several
machines, then add trials to one study. Only the ``tune`` process writes to the storage
(trials on Dask workers report back to it), so a cluster's workers never need to reach it.

A study remembers what it searches (:data:`ATTR`: the model, the options every trial
shares and the search space); continuing with other fixed options or another space would
mix trials that are not comparable, so it is refused with one line.
"""
from __future__ import annotations

import os
from pathlib import Path

from forecast.errors import UserInputError, first_line

__all__ = ["ATTR", "DB_FILE", "default_url", "safe_url", "connect", "open_study", "check_compatible",
           "remove_new_folder"]

#: The study's user attribute holding what it searches.
ATTR = "forecast_tune"
#: The default storage's file name inside ``--out``.
DB_FILE = "study.db"
#: Seconds to reach a database server before ``--storage`` is reported unreachable.
CONNECT_TIMEOUT = 10
#: Options whose value changes speed, not results: a study may continue with another.
_RESULT_NEUTRAL = ("backend", "out")


def default_url(out_dir) -> str:
    """``sqlite:////abs/path/<out>/study.db``."""
    return "sqlite:///" + str(Path(out_dir, DB_FILE).resolve())


def safe_url(url: str) -> str:
    """``url`` with its password hidden, for messages and files."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as typed (it has no password field)
        return url


def connect(url: str):
    """An Optuna RDB storage at ``url``.

    Raises
    ------
    UserInputError
        Unparsable URL, missing database driver, unreachable server, unwritable file.
    """
    import optuna

    kwargs = {}
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith(("postgresql", "mysql")):
        # Without it, an unreachable host can hold the command for minutes.
        kwargs = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy, drivers and Optuna raise many kinds
        raise UserInputError(f"--storage {safe_url(url)}: cannot open it ({first_line(exc)})") from None


def open_study(storage, name: str, sampler):
    """Create the study ``name`` in ``storage``, or load it when it exists."""
    import optuna

    try:
        return optuna.create_study(storage=storage, study_name=name, sampler=sampler, direction="minimize",
                                   load_if_exists=True)
    except Exception as exc:  # noqa: BLE001 - e.g. a database of another Optuna schema, a read-only file
        raise UserInputError(f"cannot open study {name!r} in the storage ({first_line(exc)})") from None


def check_compatible(study, searched: dict) -> None:
    """Refuse to continue ``study`` with other shared options or another space.

    ``searched`` is ``{"model", "protocol", "base", "space"}``; keys of ``base`` that the
    space tunes, and :data:`_RESULT_NEUTRAL` ones, may differ (only the first trial
    reads the starting values).
    """
    stored = study.user_attrs.get(ATTR)
    if stored is None:
        if study.trials:
            raise UserInputError(f"study {study.study_name!r} holds trials that 'tune' did not make; "
                                 "choose another --study-name")
        return
    where = f"study {study.study_name!r}"
    if stored.get("space") != searched["space"]:
        raise UserInputError(f"{where} searches another space ({_space_diff(stored['space'], searched['space'])}); "
                             "repeat its --space options, or choose another --out or --study-name")
    skip = set(searched["space"]) | set(_RESULT_NEUTRAL)
    old, new = stored.get("base", {}), searched["base"]
    differ = [k for k in sorted(set(old) | set(new)) if k not in skip and old.get(k) != new.get(k)]
    if differ:
        shown = ", ".join(f"{k} {old.get(k)!r} (now {new.get(k)!r})" for k in differ[:3])
        raise UserInputError(f"{where} was run with other options: {shown}; repeat them, or choose "
                             "another --out or --study-name")


def _space_diff(old: dict, new: dict) -> str:
    names = sorted(set(old) ^ set(new)) or [k for k in new if old.get(k) != new.get(k)]
    return "differs in " + ", ".join(names[:4])


def remove_new_folder(path: Path, existed: bool) -> None:
    """Undo creating ``path`` (when this command created it and it holds only a new, empty study)."""
    if existed or not path.is_dir():
        return
    for child in path.iterdir():
        if child.name != DB_FILE:
            return
    for child in path.iterdir():
        os.unlink(child)
    path.rmdir()
