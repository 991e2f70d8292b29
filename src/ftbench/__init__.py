"""ftbench: fine-tune Hugging Face models under pytest and guard their accuracy and speed.

Run the benchmark with `pytest bench/`; run one case from Python with `ftbench.measure.runner.run`.
Importing this package is cheap: torch and transformers load only when a case needs them.
"""

__version__ = "0.1.0"
