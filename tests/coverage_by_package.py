"""Line coverage per top-level package, from the data `make test` collects (.coverage).

`python -m tests.coverage_by_package [--under 85]` prints one line a package, the packages
under the threshold marked, so the figure to watch is a glance, not a page of files.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from coverage import Coverage
from coverage.exceptions import CoverageException

ROOT = Path(__file__).resolve().parents[1]


def by_package(data_file: str = ".coverage") -> dict[str, tuple[int, int]]:
    """{package: (statements, statements run)} over every measured file below the root."""
    cov = Coverage(data_file=data_file)
    cov.load()
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for filename in cov.get_data().measured_files():
        path = Path(filename).resolve()
        if not path.is_relative_to(ROOT):
            continue
        try:
            _, statements, _, missing, _ = cov.analysis2(filename)
        except CoverageException:  # not Python (a template's code object), or gone since
            continue
        package = path.relative_to(ROOT).parts[0]
        totals[package][0] += len(statements)
        totals[package][1] += len(statements) - len(missing)
    return {name: (total, run) for name, (total, run) in sorted(totals.items())}


def report(data_file: str = ".coverage", under: float = 85.0) -> list[str]:
    lines = [f"{'package':<14}{'lines':>8}{'run':>8}{'cover':>8}"]
    for package, (total, run) in by_package(data_file).items():
        percent = 100.0 * run / total if total else 100.0
        flag = f"  below {under:g} %" if percent < under else ""
        lines.append(f"{package:<14}{total:>8}{run:>8}{percent:>7.1f}%{flag}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--under", type=float, default=85.0, help="percent marked as below target")
    parser.add_argument("--data-file", default=".coverage")
    args = parser.parse_args()
    print("\n".join(report(args.data_file, args.under)))


if __name__ == "__main__":
    main()
