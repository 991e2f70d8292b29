"""The benchmark: `pytest bench/` (smoke on CPU, full on GPU; see `--ftb-profile`).

    pytest bench/ --ftb-data-dir ../shared/data            # offline, GLUE files on disk
    pytest bench/ -k throughput --ftb-padding static,dynamic     # a slice of the matrix

Each test is one case of its job's checkpoint × padding × device × precision matrix; the
record lands under results/runs/<run>/ and the summary prints a table of every case.
Numbers are gated against results/baselines/<hardware-id>/<profile>.json:

    pytest bench/ --ftb-data-dir ../shared/data --ftb-update-baselines --ftb-seeds 3
"""

import math

import pytest


@pytest.mark.ftbench("finetune")
def test_finetune(ftb_case):
    """Fine-tune to convergence, evaluate; accuracy and F1 meet the floors and the baseline."""
    result = ftb_case.run()
    assert math.isfinite(result.metrics["train_loss"])
    ftb_case.check()


@pytest.mark.ftbench("throughput")
def test_train_throughput(ftb_case, benchmark):
    """A fixed number of steps, timed in rounds in a fresh process (pytest-benchmark's rounds
    with --ftb-in-process); samples/s gated on the baseline, relative to the device probe."""
    result = ftb_case.run(benchmark)
    timing = ftb_case.job.training
    assert result.throughput["timed_steps"] == timing.max_steps - timing.timing_warmup_steps
    assert 0 < result.padding["efficiency"] <= 1
    ftb_case.check()
