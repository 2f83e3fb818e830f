"""Thin wrapper: the benchmark lives in bench/contract_calls_body.py, so the installed `ehrnet bench` can run it."""

import sys

from bench.contract_calls_body import main

if __name__ == "__main__":
    sys.exit(main())
