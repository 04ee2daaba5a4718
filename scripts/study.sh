#!/usr/bin/env bash
# The study of docs/study.md, from the bundled data: two comparisons (next-day return and
# next-day close as the target) over the four tickers with 5 seeds, then walk-forward
# backtests of the hybrid and of its best branch on every ticker, retrained from scratch
# before each fold and fine-tuned (online learning). About 12 minutes on 2 cores.
#
#   bash scripts/study.sh [OUT]        (default OUT: results/study)
#   python scripts/study_tables.py OUT        (the tables of docs/study.md)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/study}
sources=sample:AAPL,sample:MSFT,sample:IBM,sample:GOOG
# The branch with the better mean rank of RMSE over the sources in both comparisons.
best_branch=${BEST_BRANCH:-mingru}
for target in return close; do
  python cli.py compare --data "$sources" --target "$target" --seeds 5 --out "$out/compare-$target"
done
for target in return close; do
  for ticker in AAPL MSFT IBM GOOG; do
    for model in hybrid "$best_branch"; do
      for refit in full finetune; do
        python cli.py backtest --model "$model" --data "sample:$ticker" --target "$target" \
          --folds 5 --refit "$refit" --quiet --out "$out/backtest/$target-$ticker-$model-$refit" > /dev/null
      done
    done
  done
done
echo "study in $out"
