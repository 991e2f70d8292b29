#!/usr/bin/env bash
# Does ftbench distort what it measures? Alternates a plain Trainer script and ftbench's runner
# on the same case (minilm-l6, batch 32, seed 42) and prints both steady-state samples/s.
#
#     bash scripts/check_overhead.sh ../shared/data dynamic 3
#
# Run it on an otherwise idle machine: anything else on the cores moves both numbers.
set -euo pipefail
data_dir=${1:-../shared/data}
padding=${2:-dynamic}
repeats=${3:-3}
steps=${STEPS:-40}
for i in $(seq "$repeats"); do
    python scripts/plain_trainer.py --data-dir "$data_dir" --padding "$padding" --max-steps "$steps" \
        2>/dev/null | grep "plain Trainer"
    python -m ftbench.cli.run --data-dir "$data_dir" --padding "$padding" --max-steps "$steps" \
        --results-dir "$(mktemp -d)" 2>/dev/null | grep "samples/s ("
done
