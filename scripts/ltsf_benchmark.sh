#!/usr/bin/env bash
# The long-horizon benchmark of docs/benchmarks.md, reproduced from scratch.
#
#   bash scripts/ltsf_benchmark.sh [grid|seeds|lookback|all]   (default: all)
#
# grid:     lookback 96, ETTh1 / ETTh2 / Exchange x horizons 96..720 x the four models, seed 0
#           -> results/ltsf/benchmark.md (about an hour on 2 cores)
# seeds:    seeds 1 and 2 at horizon 96, trained in results/ltsf-seeds and merged into
#           results/ltsf, whose table then has 3 seeds at horizon 96 and 1 elsewhere
# lookback: lookbacks 48..720 on ETTh1 and Exchange at horizons 96 and 336 for mamba, mingru
#           and the hybrid -> results/ltsf-lookback/benchmark.md
#
# Every step can be interrupted and run again: compare --resume trains only the runs that
# are missing. ltsf:exchange is downloaded once (SHA-256 checked) and cached.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg
what=${1:-all}
DATA=ett:ETTh1,ett:ETTh2,ltsf:exchange

grid() {
    python cli.py compare --protocol ltsf --data "$DATA" --horizons 96,192,336,720 --seeds 0, \
        --out results/ltsf --resume
}

seeds() {
    # Seed 0 at horizon 96 is already in the grid: copy it so --resume trains seeds 1 and 2 only.
    mkdir -p results/ltsf-seeds/runs
    for run in results/ltsf/runs/*/h96/seq96/*/seed0; do
        dest=results/ltsf-seeds/${run#results/ltsf/}
        [ -d "$dest" ] || { mkdir -p "$(dirname "$dest")"; cp -r "$run" "$dest"; }
    done
    python cli.py compare --protocol ltsf --data "$DATA" --horizons 96 --seeds 3 \
        --out results/ltsf-seeds --resume
    for run in results/ltsf-seeds/runs/*/h96/seq96/*/seed[12]; do
        dest=results/ltsf/${run#results/ltsf-seeds/}
        [ -d "$dest" ] || { mkdir -p "$(dirname "$dest")"; cp -r "$run" "$dest"; }
    done
    python cli.py compare --out results/ltsf --report-only
}

lookback() {
    # Lookback 96 is in the grid already: copy those runs so --resume trains the other lookbacks.
    for slug in ett-ETTh1 ltsf-exchange; do
        for h in 96 336; do
            for m in mamba mingru hybrid; do
                run=results/ltsf/runs/$slug/h$h/seq96/$m/seed0
                dest=results/ltsf-lookback/runs/$slug/h$h/seq96/$m/seed0
                if [ -d "$run" ] && [ ! -d "$dest" ]; then mkdir -p "$(dirname "$dest")"; cp -r "$run" "$dest"; fi
            done
        done
    done
    python cli.py compare --protocol ltsf --data ett:ETTh1,ltsf:exchange --models mamba,mingru,hybrid \
        --horizons 96,336 --seq-lens 48,96,192,336,720 --seeds 0, --out results/ltsf-lookback --resume
}

case "$what" in
    grid) grid ;;
    seeds) seeds ;;
    lookback) lookback ;;
    all) grid; seeds; lookback ;;
    *) echo "usage: $0 [grid|seeds|lookback|all]" >&2; exit 2 ;;
esac
