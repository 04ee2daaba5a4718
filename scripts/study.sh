#!/usr/bin/env bash
# The study of docs/study.md, from the bundled data: two comparisons (next-day return and
# next-day close as the target) over the four tickers with 5 seeds, the four neural models
# beside the classical baselines (AutoARIMA, AutoETS, AutoTheta: one fit per ticker, they have
# no seed), then walk-forward backtests of the hybrid and of its best branch on every ticker,
# retrained from scratch before each fold and fine-tuned (online learning), and of ARIMA and
# ETS (refitted before each fold: they have no seed and nothing to fine-tune). About 15
# minutes on 2 cores (12 measured before the classical baselines were added; their fits and
# 16 backtests, 4 to 15 CPU-seconds each, add about 3).
#
# An optional second stage compares the neural models again on the return target, each with
# the configuration `cli.py tune` found for it (scripts/tune_study.sh stock writes them):
#
#   bash scripts/study.sh [OUT] [TUNED]       (default OUT: results/study)
#   TUNED=results/tune bash scripts/study.sh OUT
#   python scripts/study_tables.py OUT        (the tables of docs/study.md)
#
# Interrupted, it continues where it stopped when run again: the comparisons --resume,
# finished backtests are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/study}
tuned=${2:-${TUNED:-}}
sources=sample:AAPL,sample:MSFT,sample:IBM,sample:GOOG
tickers="AAPL MSFT IBM GOOG"
models=mamba,mingru,hybrid,gru,arima,ets,theta
# The branch with the better mean rank of RMSE over the sources in both comparisons.
best_branch=${BEST_BRANCH:-mingru}
if [ -n "$tuned" ] && [ ! -d "$tuned" ]; then
  echo "study.sh: TUNED folder $tuned does not exist (run scripts/tune_study.sh stock first)" >&2
  exit 2
fi
for target in return close; do
  python cli.py compare --data "$sources" --target "$target" --models "$models" --seeds 5 \
    --resume --out "$out/compare-$target"
done
for target in return close; do
  for ticker in $tickers; do
    for model in hybrid "$best_branch"; do
      for refit in full finetune; do
        [ -d "$out/backtest/$target-$ticker-$model-$refit" ] && continue
        python cli.py backtest --model "$model" --data "sample:$ticker" --target "$target" \
          --folds 5 --refit "$refit" --quiet --out "$out/backtest/$target-$ticker-$model-$refit" > /dev/null
      done
    done
    # The classical baselines: refitted on each fold's past; no seed, no fine-tuning.
    for model in arima ets; do
      [ -d "$out/backtest/$target-$ticker-$model-full" ] && continue
      python cli.py backtest --model "$model" --data "sample:$ticker" --target "$target" \
        --folds 5 --refit full --quiet --out "$out/backtest/$target-$ticker-$model-full" > /dev/null
    done
  done
done
if [ -n "$tuned" ]; then
  # Same study as compare-return, the neural models only, each with its best.json from
  # $tuned where one matches (model, ticker, target return); scripts/study_tables.py
  # then prints tuned against default.
  python cli.py compare --data "$sources" --target return --models mamba,mingru,hybrid,gru --seeds 5 \
    --tuned "$tuned" --resume --out "$out/compare-return-tuned"
fi
echo "study in $out"
