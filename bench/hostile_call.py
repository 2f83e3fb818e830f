"""Thin wrapper: the measurement lives in node/hostile_call_bench.py."""

import sys

from node.hostile_call_bench import main

if __name__ == "__main__":
    sys.exit(main())
