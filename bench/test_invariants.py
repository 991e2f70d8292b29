"""Invariants: settings that must train the same model, compared step by step.

    pytest bench/ -k invariants --ftb-data-dir ../shared/data

Each pair trains two sides from one seed on the same rows in the same order (gradient
accumulation against one large batch, 2 processes against 1, another padding, a resumed run,
the same run twice, bf16 against fp32) and compares the loss and gradient norm at every step,
the trained weights and the final evaluation, within bounds measured per pair
(docs/invariants.md). A pair that parts fails naming the step and both values; a divergence
marked expected in the job (`invariants: [{processes: {expected: why, link: url}}]`) is
reported as expected, and fails once it stops diverging.
"""


def test_invariant(ftb_invariant):
    """Both sides agree within the pair's bounds (or part as their mark expects)."""
    ftb_invariant.check()
