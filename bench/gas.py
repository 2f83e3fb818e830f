"""Thin wrapper: the benchmark lives in node/gas_bench.py, so the installed `ehrnet bench` can run it."""

import sys

from node.gas_bench import main

if __name__ == "__main__":
    sys.exit(main())
