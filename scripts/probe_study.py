"""Which probe tracks training throughput best? Measure both on hosts that differ.

    PYTHONPATH=src python scripts/probe_study.py --data-dir ../shared/data/glue --repeats 3

Run it on a quiet machine: load from elsewhere moves everything (and `ftbench.env.contention`
keeps such measurements from being judged at all). A "host" is this machine with 2 torch
threads, or with 1: a host that is slower at everything, though not uniformly (small kernels
lose less than large matmuls). The hosts take turns, `--repeats` times each, so that drift of
the machine over the study falls on both. Each turn runs the real throughput case (MiniLM-L6)
and, right before and after it, both probes, combined as the gate combines them (the faster).

A good reference moves with the host (its ratio, samples/s over the probe's score, stays put
between hosts) and is quiet itself (the ratio's spread over a host's repeats is small). The
table gives both for each probe, next to raw samples/s.
"""

from __future__ import annotations

import argparse
import json
import statistics

KINDS = ("matmul", "train-step")


def measure(threads: int, data_dir: str, steps: int, padding: str) -> dict:
    import torch

    from ftbench.core.spec import CaseSpec, Training
    from ftbench.env.probe import combine, measure_probe
    from ftbench.measure.runner import run
    from ftbench.stack.data import DataSource

    torch.set_num_threads(threads)
    spec = CaseSpec(
        "throughput",
        "minilm-l6",
        padding,
        training=Training(max_steps=steps, batch_size=32, evaluate=False),
    )
    before = {kind: measure_probe("cpu", "fp32", kind=kind) for kind in KINDS}
    result = run(spec, DataSource(data_dir=data_dir), show_progress_bar=False)
    after = {kind: measure_probe("cpu", "fp32", kind=kind) for kind in KINDS}
    rate = result.throughput["train_samples_per_second"]
    row = {"threads": threads, "samples_per_second": rate}
    for kind in KINDS:
        score = combine(before[kind], after[kind])["score"]
        row[kind] = {"score": score, "ratio": rate / score}
    return row


def spread(values: list[float]) -> float:
    """Coefficient of variation: how much a host's repeats disagree."""
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--steps", type=int, default=13)
    parser.add_argument("--padding", default="dynamic")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    hosts = (2, 1)
    rows = []
    for _ in range(args.repeats):
        for threads in hosts:
            row = measure(threads, args.data_dir, args.steps, args.padding)
            rows.append(row)
            print(json.dumps(row), flush=True)

    def figures(threads: int, key: str) -> list[float]:
        picked = [r for r in rows if r["threads"] == threads]
        return [r[key] if key == "samples_per_second" else r[key]["ratio"] for r in picked]

    print(f"\n{args.padding} padding, {args.repeats} repeats per host (median; spread = CV)")
    print(f"{'figure':>24} {'2 threads':>12} {'1 thread':>12} {'moved':>8} {'spread':>8}")
    for key in ("samples_per_second", *KINDS):
        fast, slow = figures(2, key), figures(1, key)
        moved = statistics.median(slow) / statistics.median(fast) - 1
        noise = max(spread(fast), spread(slow))
        name = "raw samples/s" if key == "samples_per_second" else f"samples/s ÷ {key}"
        print(
            f"{name:>24} {statistics.median(fast):12.4g} {statistics.median(slow):12.4g} "
            f"{moved:+8.1%} {noise:8.1%}"
        )


if __name__ == "__main__":
    main()
