"""``compare`` over several data sources, failed runs, and the parsing behind them.

One tiny study (1 model x 2 seeds, 1 epoch) sweeps two bundled tickers and a CSV too
short for its window: the CSV's runs fail in their workers, the tickers' runs finish,
each source gets its own study folder and report, and the top report ranks the models
across the sources with numbers recomputed here from the per-source summaries.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

import cli
from forecast.errors import UserInputError
from forecast.study import cross
from forecast.study import plan as planning
from forecast.study.fingerprint import VersionMismatch, check_fingerprint, code_hash, fingerprint
from forecast.study.significance import judge
from forecast.study.summary import rank_values
from pipeline_helpers import price_frame, write_csv

TINY = ["--models", "mingru", "--seeds", "2", "--epochs", "1", "--hidden", "4", "--d-state", "4",
        "--seq-len", "10", "--start", "2012-01-01", "--batch-size", "32", "--backend", "numpy",
        "--jobs", "2"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    short = write_csv(root / "short.csv", price_frame(12))   # loads, but too short for 10-day windows
    out = root / "study"
    status = cli.main(["compare", *TINY, "--data", f"sample:AAPL,sample:IBM,{short}", "--out", str(out)])
    return out, short, status


def _summary(folder: Path) -> dict:
    with open(folder / "summary.csv", newline="") as fh:
        return {r["model"]: r for r in csv.DictReader(fh)}


def test_each_source_is_a_study_of_its_own(study):
    out, short, _ = study
    for slug, source in (("sample-AAPL", "sample:AAPL"), ("sample-IBM", "sample:IBM")):
        folder = out / "sources" / slug
        for name in ("report.md", "summary.csv", "summary.json"):
            assert (folder / name).is_file(), folder / name
        for seed in (0, 1):
            config = json.loads((folder / "runs" / "mingru" / f"seed{seed}" / "config.json").read_text())
            assert config["data"] == source and config["seed"] == seed
        assert f"| source | {source} |" in (folder / "report.md").read_text()
    assert not (out / "sources" / "csv-short" / "runs").exists()
    assert not (out / "runs").exists()


def test_failed_runs_are_reported_and_the_others_finish(study, capsys):
    out, short, status = study
    assert status == 2            # every failure was bad input (a series too short)
    failed = json.loads((out / "study.json").read_text())["study"]["failed runs"]
    assert sorted(failed) == [f"mingru seed {s} seq_len 10 on {short}" for s in (0, 1)]
    assert all("series too short" in why for why in failed.values())
    assert "## Failed runs" in (out / "report.md").read_text()


def test_cross_source_ranks_are_recomputed_from_the_summaries(study):
    out, _, _ = study
    per_source = [_summary(out / "sources" / slug) for slug in ("sample-AAPL", "sample-IBM")]
    with open(out / "cross_source.csv", newline="") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    assert set(rows) == set(per_source[0]) == {"mingru", "naive_last", "naive_drift"}
    for metric, higher in (("rmse", False), ("direction_accuracy", True)):
        ranks = {m: [] for m in rows}
        for summary in per_source:
            values = {m: float(r[f"{metric}_mean"]) for m, r in summary.items()}
            values = {m: v for m, v in values.items() if math.isfinite(v)}   # undefined: unranked
            for m, v in values.items():   # 1 + number strictly better (+ half of the ties)
                better = sum((w > v) if higher else (w < v) for w in values.values())
                ties = sum(w == v for w in values.values()) - 1
                ranks[m].append(1 + better + ties / 2)
        for m, r in rows.items():
            got = float(r[f"{metric}_mean_rank"])
            if ranks[m]:
                assert got == pytest.approx(sum(ranks[m]) / len(ranks[m])), (metric, m)
            else:
                assert math.isnan(got), (metric, m)
        pairs = [(float(s["mingru"][f"{metric}_mean"]), float(s["naive_last"][f"{metric}_mean"]))
                 for s in per_source]
        pairs = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
        wins = sum((a > b) if higher else (a < b) for a, b in pairs)
        assert int(rows["mingru"][f"{metric}_beats_naive"]) == wins
        assert int(rows["mingru"][f"{metric}_vs_naive"]) == len(pairs)
    report = (out / "report.md").read_text()
    assert "[report](sources/sample-AAPL/report.md)" in report
    assert rows["naive_last"]["rmse_beats_naive"] == ""
    assert rows["mingru"]["rmse_vs_naive"] == "2"          # defined on both sources
    assert rows["mingru"]["direction_accuracy_vs_naive"] == "0"   # naive calls no direction


def test_cross_source_significance_is_recounted_from_the_summaries(study):
    out, _, _ = study
    sources = cross.load_sources([out / "sources" / slug for slug in ("sample-AAPL", "sample-IBM")])
    counts = cross.summarize_sources(sources).counts
    expected: dict = {}
    for slug in ("sample-AAPL", "sample-IBM"):
        for test in json.loads((out / "sources" / slug / "summary.json").read_text())["tests"]:
            if test["test"] != "diebold-mariano":
                continue
            p, stat = test["p_holm"], test["statistic"]
            what = ("undefined" if p is None or stat is None else "no significant difference" if p >= 0.05
                    else "better" if stat < 0 else "worse")
            key = (test["seq_len"], test["model"], test["against"], test["step"])
            expected.setdefault(key, []).append(what)
    assert set(counts) == set(expected)
    for key, verdicts in expected.items():
        assert counts[key] == {v: verdicts.count(v) for v in
                               ("better", "worse", "no significant difference", "undefined")}, key
    assert "Significance over the sources" in (out / "report.md").read_text()


def test_significance_counts_tally_each_way():
    def dm(model, against, statistic, p_holm, step=1):
        return {"test": "diebold-mariano", "seq_len": 60, "model": model, "against": against,
                "step": step, "statistic": statistic, "p_holm": p_holm}
    welch = {"test": "welch-t", "seq_len": 60, "model": "hybrid", "against": "naive",
             "statistic": -9.0, "p_holm": 1e-6}
    sources = [judge([dm("hybrid", "naive", -3.0, 0.01), welch]), judge([dm("hybrid", "naive", 2.5, 0.03)]),
               judge([dm("hybrid", "naive", -1.0, 0.3)]), judge([dm("hybrid", "naive", math.nan, math.nan)])]
    assert cross.significance_counts(sources) == {(60, "hybrid", "naive", 1): {
        "better": 1, "worse": 1, "no significant difference": 1, "undefined": 1}}


def test_report_only_rebuilds_every_source(study):
    out, _, _ = study
    before = (out / "cross_source.csv").read_bytes()
    (out / "cross_source.csv").unlink()
    (out / "sources" / "sample-IBM" / "summary.csv").unlink()
    assert cli.main(["compare", "--report-only", "--out", str(out)]) == 0
    assert (out / "cross_source.csv").read_bytes() == before
    assert (out / "sources" / "sample-IBM" / "summary.csv").is_file()


def test_rank_values_share_tied_places():
    assert rank_values({"a": 2.0, "b": 1.0, "c": 2.0, "d": math.nan}, "rmse") == {
        "b": 1.0, "a": 2.5, "c": 2.5}
    assert rank_values({"a": 0.4, "b": 0.6}, "direction_accuracy") == {"b": 1.0, "a": 2.0}


def test_parse_sources_and_their_folders(tmp_path):
    csv_a = write_csv(tmp_path / "x.csv", price_frame(30))
    (tmp_path / "sub").mkdir()
    csv_b = write_csv(tmp_path / "sub" / "x.csv", price_frame(30))
    sources = planning.parse_sources(f"sample:aapl, yahoo:msft,{csv_a},sample:AAPL,{csv_b}")
    assert sources == ["sample:AAPL", "yahoo:MSFT", csv_a, csv_b]
    assert planning.source_slugs(sources) == {"sample:AAPL": "sample-AAPL", "yahoo:MSFT": "yahoo-MSFT",
                                              csv_a: "csv-x", csv_b: "csv-x-2"}
    for bad in ("", "nasdaq:AAPL", "sample:"):
        with pytest.raises(UserInputError):
            planning.parse_sources(bad)


@pytest.mark.parametrize("text, expected", [
    (None, (None, None)), ("local", ("local", None)), ("local:3", ("local", 3)),
    ("tcp://10.0.0.5:8786", ("tcp://10.0.0.5:8786", None)), ("tls://host:8786", ("tls://host:8786", None)),
])
def test_parse_scheduler(text, expected):
    assert planning.parse_scheduler(text) == expected


@pytest.mark.parametrize("argv, message", [
    (["--scheduler", "local:0"], "worker count"),
    (["--scheduler", "local:two"], "worker count"),
    (["--scheduler", "somehost:8786"], "tcp://HOST:PORT"),
    (["--scheduler", "tcp://h:1", "--jobs", "2"], "--jobs applies to this machine"),
    (["--data", "sample:AAPL,nasdaq:X"], "unknown data source"),
])
def test_bad_study_options_are_one_line_errors(tmp_path, capsys, argv, message):
    status = cli.main(["compare", *argv, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert status == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_plan_sweeps_sources_like_models_and_seeds(tmp_path):
    import argparse

    from forecast.study import compare

    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    args = parser.parse_args(["--data", "sample:AAPL,sample:MSFT", "--models", "gru,mamba", "--seeds", "2",
                              "--scheduler", "local:2", "--out", str(tmp_path)])
    plan = planning.plan_study(args, cores=2)
    assert plan.jobs == 2 and plan.scheduler == "local" and plan.several_sources
    assert {(s.source, s.model, s.seed) for s in plan.runs} == {
        (d, m, k) for d in ("sample:AAPL", "sample:MSFT") for m in ("gru", "mamba") for k in (0, 1)}
    spec = next(s for s in plan.runs if s.source == "sample:MSFT" and s.model == "gru" and s.seed == 1)
    assert spec.run_dir == tmp_path / "sources" / "sample-MSFT" / "runs" / "gru" / "seed1"
    assert spec.config["out"] == str(spec.run_dir)
    assert "--data sample:AAPL,sample:MSFT" in planning.command_line(plan)
    assert "--scheduler local:2" in planning.command_line(plan)


def test_fingerprint_follows_the_code(tmp_path):
    for name in ("engine", "models", "forecast"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"# {name}\n")
    first = code_hash(tmp_path)
    assert code_hash(tmp_path) == first
    (tmp_path / "models" / "__init__.py").write_text("# models, edited\n")
    assert code_hash(tmp_path) != first
    (tmp_path / "models" / "__init__.py").write_text("# models\n")
    (tmp_path / "forecast" / "new.py").write_text("")
    assert code_hash(tmp_path) != first
    check_fingerprint(fingerprint(), "tcp://here:1")        # the same process agrees with itself
    with pytest.raises(VersionMismatch, match="the client has 0.0"):
        check_fingerprint(dict(fingerprint(), numpy="0.0"), "tcp://here:1")
