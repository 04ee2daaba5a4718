"""What ``cli.py tune`` leaves in its output folder, rebuilt from the whole study each time.

* ``best.json``: the best trial's run options, every RunConfig field but ``out``; what
  ``train --config``, ``backtest --config`` and ``compare --config`` read.
* ``trials.csv``: one row per trial: ``number, state, value`` (the best validation loss;
  for a pruned trial the last one reported), start, end, ``seconds``, the drawn values
  (``params_*``) and what the trial reported (``user_attrs_*``: epochs, best epoch,
  stop reason, error).
* ``figures/history.png`` (the validation loss of every completed trial and the best so
  far), ``figures/importances.png`` (PED-ANOVA importance of each option, which needs
  no scikit-learn) and ``figures/curves.png`` (every trial's validation loss per epoch,
  pruned ones included). A figure the study cannot have yet (importances need two
  completed trials that differ) is skipped and named in ``tune.json``.
* ``tune.json``: the study (name, storage with any password hidden, the space, the
  starting configuration: what every trial shares, and the first trial's values), the
  counts per state, the first and the best trial, and this command's wall time and
  trials per minute.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

from forecast.errors import first_line
from forecast.fileio import atomic_write_bytes, atomic_write_json, to_jsonable

__all__ = ["trial_config", "write_outputs", "summary_lines", "FIGURES"]

#: The figures, by file name.
FIGURES = ("history.png", "importances.png", "curves.png")


def trial_config(base: dict, trial) -> dict:
    """The RunConfig fields a trial trained with: the shared options and its drawn values."""
    config = {**base, **trial.params}
    config.pop("out", None)
    return config


def _trials_table(study):
    frame = study.trials_dataframe(attrs=("number", "state", "value", "datetime_start", "datetime_complete",
                                          "duration", "params", "user_attrs"))
    if "duration" in frame:
        frame.insert(frame.columns.get_loc("duration"), "seconds", frame.pop("duration").dt.total_seconds())
    return frame


def _figures(study, folder: Path) -> list:
    """Write the figures; returns ``[(file, reason)]`` of those skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    import optuna.visualization.matplotlib as vis

    plots = {   # file -> (plot, x label, y label); None keeps Optuna's label
        "history.png": (lambda: vis.plot_optimization_history(study, target_name="validation loss"),
                        "trial", "validation loss"),
        "importances.png": (lambda: vis.plot_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()), None, None),
        "curves.png": (lambda: vis.plot_intermediate_values(study), "epoch", "validation loss"),
    }
    skipped = []
    for name, (plot, xlabel, ylabel) in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")       # Optuna marks these plots experimental
                ax = plot()
            if xlabel:
                ax.set_xlabel(xlabel)
                ax.set_ylabel(ylabel)
                # Losses of bad and good trials differ by orders of magnitude.
                ax.set_yscale("log")
            legend = ax.get_legend()
            if legend is not None and len(legend.get_texts()) > 12:
                legend.remove()                       # a line per trial: the legend would hide the plot
            figure = ax.figure
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=110)
            plt.close(figure)
            atomic_write_bytes(folder / name, buffer.getvalue())
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            plt.close("all")
            skipped.append((name, first_line(exc)))
    return skipped


def write_outputs(out: Path, study, searched: dict, context: dict) -> dict:
    """Write ``best.json``, ``trials.csv``, the figures and ``tune.json``; returns ``tune.json``'s content.

    Parameters
    ----------
    out : Path
    study : optuna.Study
    searched : dict
        ``{"model", "protocol", "base", "space"}`` (what the study searches).
    context : dict
        This command's facts (storage, executor, wall time...), copied into ``tune.json``.
    """
    from optuna.trial import TrialState

    out = Path(out)
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials)
              for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value) if complete else None
    first = trials[0] if trials else None
    if best is not None:
        atomic_write_json(out / "best.json", trial_config(searched["base"], best))
    table = _trials_table(study)
    # Full precision: a value in the table is the one best.json reproduces.
    atomic_write_bytes(out / "trials.csv", table.to_csv(index=False).encode("utf-8"))
    skipped = _figures(study, out / "figures") if trials else [(f, "no trials") for f in FIGURES]
    summary = {
        "study": study.study_name, **context,
        "model": searched["model"], "protocol": searched["protocol"],
        "space": searched["space"], "starting configuration": searched["base"],
        "trials": len(trials), "states": counts,
        "first trial": _trial_brief(first),
        "best trial": _trial_brief(best),
        "figures skipped": dict(skipped),
    }
    atomic_write_json(out / "tune.json", to_jsonable(summary))
    return summary


def _trial_brief(trial) -> dict | None:
    if trial is None:
        return None
    return {"number": trial.number, "state": trial.state.name.lower(), "value": trial.value,
            "params": dict(trial.params), "epochs": trial.user_attrs.get("epochs")}


def summary_lines(summary: dict, out: Path) -> list:
    """What ``tune`` prints on stdout when it ends."""
    states, best, first = summary["states"], summary["best trial"], summary["first trial"]
    lines = [f"{summary['trials']} trial(s) in study {summary['study']!r}: {states['complete']} complete, "
             f"{states['pruned']} pruned, {states['fail']} failed"
             + (f"; this run: {summary['trials this run']} in {summary['wall seconds']:.0f} s "
                f"({summary['trials per minute']:.2f} per minute)" if summary.get("trials this run") else "")]
    if best is None:
        lines.append("no trial completed: no best configuration yet")
    else:
        start = (f"; the first trial (the starting configuration) {first['value']:.6g}"
                 if first and first["state"] == "complete" else "")
        lines.append(f"best: trial {best['number']}, validation loss {best['value']:.6g}{start}")
        lines.append("  " + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in best["params"].items()))
        lines.append(f"train it: python cli.py train --config {out / 'best.json'}")
    figures = [f for f in FIGURES if f not in summary["figures skipped"]]
    lines.append(f"outputs in {out}: best.json, trials.csv, tune.json"
                 + (f", figures/ ({', '.join(figures)})" if figures else ""))
    return lines
