#!/usr/bin/env bash
# The tuning of docs/study.md and docs/benchmarks.md: Optuna searches on the validation part
# only (cli.py tune, 20 trials, TPE, median pruning). A search whose best.json exists is
# skipped, so running the script again after an interruption continues with the rest.
#
#   bash scripts/tune_study.sh stock [OUT]   each neural model on each bundled ticker, --target return
#                                           (TICKERS="AAPL MSFT" to split the work between machines)
#   bash scripts/tune_study.sh ltsf [OUT]    the hybrid at horizon 96 on ETTh1, ETTh2 and Exchange
#                                           (at most 15 minutes of new trials per data set)
# Default OUT: results/tune. Each OUT/<name>/best.json is read by
# `compare --tuned OUT` (stock) and `compare --protocol ltsf --tuned OUT`.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?stock or ltsf}
out=${2:-results/tune}
case "$what" in
  stock)
    for ticker in ${TICKERS:-AAPL MSFT IBM GOOG}; do
      for model in hybrid mamba mingru gru; do
        dir="$out/stock-sample-$ticker-$model"
        [ -f "$dir/best.json" ] && continue
        python cli.py tune --model "$model" --data "sample:$ticker" --target return --trials 20 \
          --quiet --out "$dir"
      done
    done ;;
  ltsf)
    for data in ett:ETTh1 ett:ETTh2 ltsf:exchange; do
      dir="$out/ltsf-${data#*:}-96-hybrid"
      [ -f "$dir/best.json" ] && continue
      python cli.py tune --protocol ltsf --model hybrid --data "$data" --horizon 96 --trials 20 \
        --timeout 900 --quiet --out "$dir"
    done ;;
  *) echo "usage: bash scripts/tune_study.sh stock|ltsf [OUT]" >&2; exit 2 ;;
esac
echo "tuning in $out"
