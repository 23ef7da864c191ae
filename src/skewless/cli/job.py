"""Batch jobs as a module entry point, for spark-submit on any cluster:

    spark-submit --properties-file spark-conf/spark-defaults.conf \\
        --packages io.delta:delta-spark_4.2_2.13:4.4.0 \\
        "$(python -c 'import skewless.cli.job as j; print(j.__file__)')" \\
        --repo /path/to/feature_repo materialize 2026-01-01 2026-01-02

or, in-process, `python -m skewless.cli.job --repo PATH materialize START END`.
Under spark-submit the session (master, jars, resources) is the submit's own; the
repo's `spark` settings apply only when this module starts Spark itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

from skewless.errors import SkewlessError
from skewless.feature_store import FeatureStore
from skewless.timeutil import parse_time


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skewless.cli.job", description=__doc__)
    parser.add_argument("--repo", default=".", help="feature repo folder")
    sub = parser.add_subparsers(dest="command", required=True)
    full = sub.add_parser("materialize", help="materialize [START, END]")
    full.add_argument("start")
    full.add_argument("end")
    full.add_argument("--views", nargs="*")
    inc = sub.add_parser("materialize-incremental", help="materialize what arrived since")
    inc.add_argument("end", nargs="?", default="now")
    inc.add_argument("--views", nargs="*")
    args = parser.parse_args(argv)
    store = FeatureStore(args.repo)
    try:
        if args.command == "materialize":
            records = store.materialize(parse_time(args.start), parse_time(args.end), args.views)
        else:
            records = store.materialize_incremental(parse_time(args.end), args.views)
    except SkewlessError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    for record in records:
        data = asdict(record)
        data["finished_at"] = record.finished_at.isoformat()
        sys.stdout.write(json.dumps(data) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
