"""ftbench: fine-tune Hugging Face models under pytest and guard their accuracy and speed.

Run the benchmark with `pytest bench/`; run one case from Python with `ftbench.measure.runner.run`.
Importing this package is cheap: torch and transformers load only when a case needs them.

The package is in layers, each importing only those below it (the import-linter contract in
pyproject.toml; docs/layers.md):

    plugin, cli    the pytest plugin (hooks, fixtures, the session, a case) and `ftbench`
    report         tables, charts, history, compare: made from records alone
    judge, measure verdicts on records (pure) | running a case and timing it
    config         options, profiles, building a case's spec and data source once
    tasks          the Task interface, the registry, each task
    stack          checkpoints, GGUF, methods (LoRA, QLoRA), padding, data and its identity
    env            the device, the probe, contention, processes, the Hub, out of memory
    core           errors, the case spec, metrics, the record, files, formats
"""

__version__ = "0.1.0"
