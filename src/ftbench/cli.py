"""The `ftbench` command.

ftbench run --padding dynamic --data-dir ../shared/data/glue     # one case, no pytest
ftbench compare A B                                              # B against A, gated
ftbench report RUN_DIR [RUN_DIR ...] --out DIR                   # tables and charts
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from ftbench import compare, run

    parser = argparse.ArgumentParser(prog="ftbench", description="Fine-tuning benchmarks.")
    commands = parser.add_subparsers(dest="command", required=True)
    run.add_arguments(commands.add_parser("run", help="run one case and write its record"))
    compare.add_arguments(
        commands.add_parser("compare", help="compare two run directories or baseline files")
    )
    report = commands.add_parser("report", help="padding, hardware and time-to-accuracy tables")
    report.add_argument("runs", nargs="+", type=Path, help="run directories (results/runs/...)")
    report.add_argument("--out", type=Path, default=Path("results/reports/latest"))
    args = parser.parse_args(argv)
    if args.command == "run":
        return run.main(args=args)
    if args.command == "compare":
        return compare.main(args=args)
    return report_main(args.runs, args.out)


def report_main(runs: list[Path], out: Path) -> int:
    from ftbench.errors import FtbenchError
    from ftbench.report import (
        format_padding_table,
        hardware_table,
        load_runs,
        padding_table,
        write_report,
    )

    try:
        results, notes = load_runs(runs)
    except FtbenchError as exc:
        print(f"ftbench report: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"ftbench report: {note}", file=sys.stderr)
    print(format_padding_table(padding_table(results)))
    hardware = hardware_table(results)
    if not hardware.empty:
        print()
        print(hardware.to_string(float_format=lambda v: f"{v:.2f}"))
    try:
        written = write_report(results, out)
    except OSError as exc:
        print(f"ftbench report: can't write to {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print()
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
