"""`python -m ftbench.cli ...`: the `ftbench` command, where the script is not on the PATH."""

import sys

from ftbench.cli import main

sys.exit(main())
