"""The `ftbench` command: `ftbench run ...` runs one case outside pytest."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from ftbench import run

    parser = argparse.ArgumentParser(prog="ftbench", description="Fine-tuning benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True)
    run.add_arguments(commands.add_parser("run", help="run one case and write its record"))
    args = parser.parse_args(argv)
    if args.command == "run":
        return run.main(args=args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
