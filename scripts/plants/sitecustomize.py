"""Loads the planted regressions (scripts/ftb_plants.py) in every Python process started with
`PYTHONPATH=scripts/plants`: pytest's, and the fresh process each timed case trains in.

    FTB_PLANT_SLOWDOWN=0.3 PYTHONPATH=scripts/plants pytest bench/ -k throughput \\
        --ftb-data-dir ../shared/data

Python imports the first sitecustomize on its path, so this one stands in for any other (a
distribution's); for planted runs only.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ftb_plants  # noqa: F401
