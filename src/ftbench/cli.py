"""The `ftbench` command: `ftbench run` runs one case, `ftbench compare A B` compares results."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from ftbench import compare, run

    parser = argparse.ArgumentParser(prog="ftbench", description="Fine-tuning benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True)
    run.add_arguments(commands.add_parser("run", help="run one case and write its record"))
    compare.add_arguments(
        commands.add_parser("compare", help="compare two run directories or baseline files")
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        return run.main(args=args)
    return compare.main(args=args)


if __name__ == "__main__":
    sys.exit(main())
