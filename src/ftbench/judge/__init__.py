"""Verdicts: pure functions of records, baseline entries and a `GatePolicy` (the baseline
store, gates, floors, reproducibility, throughput relative to the probe, N processes against
one). Nothing here reads an option or runs a model.
"""
