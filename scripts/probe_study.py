"""Which probe tracks training throughput best? Measure both on hosts that differ.

    PYTHONPATH=src python scripts/probe_study.py --data-dir ../shared/data/glue --steps 11

A "host" here is this machine with a given number of torch threads (2, then 1: a host half as
fast) and, optionally, a helper process burning one core. For each host it runs the real
throughput case (MiniLM-L6, dynamic padding) and, right before and after it, both probes. The
probe whose ratio (samples/s / probe score) moves least between hosts is the better reference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

BURN = "import time\nwhile True: pass\n"


def measure(threads: int, data_dir: str, steps: int, padding: str) -> dict:
    import torch

    from ftbench.data import DataSource
    from ftbench.probe import measure_probe
    from ftbench.profiles import Training
    from ftbench.runner import CaseSpec, run

    torch.set_num_threads(threads)
    spec = CaseSpec(
        "throughput",
        "minilm-l6",
        padding,
        training=Training(max_steps=steps, batch_size=32, evaluate=False),
    )
    probes_before = {k: measure_probe("cpu", "fp32", 1.0, kind=k) for k in ("train-step", "matmul")}
    result = run(spec, DataSource(data_dir=data_dir), show_progress_bar=False)
    probes_after = {k: measure_probe("cpu", "fp32", 1.0, kind=k) for k in ("train-step", "matmul")}
    rate = result.throughput["train_samples_per_second"]
    out = {"threads": threads, "samples_per_second": rate}
    for kind in probes_before:
        score = (probes_before[kind]["score"] + probes_after[kind]["score"]) / 2
        out[kind] = {"score": score, "ratio": rate / score}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--steps", type=int, default=11)
    parser.add_argument("--padding", default="dynamic")
    args = parser.parse_args()
    rows = []
    for threads, burn in ((2, False), (1, False), (2, True), (2, False)):
        helper = subprocess.Popen([sys.executable, "-c", BURN]) if burn else None
        try:
            time.sleep(1 if burn else 0)
            row = measure(threads, args.data_dir, args.steps, args.padding)
        finally:
            if helper is not None:
                helper.kill()
                helper.wait()
        row["helper_burning_one_core"] = burn
        rows.append(row)
        print(json.dumps(row), flush=True)
    first = rows[0]
    for row in rows[1:]:
        moved = {
            kind: row[kind]["ratio"] / first[kind]["ratio"] - 1 for kind in ("train-step", "matmul")
        }
        raw = row["samples_per_second"] / first["samples_per_second"] - 1
        print(
            f"threads {row['threads']}, burn {row['helper_burning_one_core']}: raw samples/s "
            f"{raw:+.1%}; ratio moved: train-step {moved['train-step']:+.1%}, "
            f"matmul {moved['matmul']:+.1%}"
        )


if __name__ == "__main__":
    main()
