"""Registers the KTO task before pytest collects the job file that names it."""

import kto  # noqa: F401  (registers `kto` with ftbench.tasks.register_task)
