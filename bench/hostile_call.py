"""Thin wrapper: the measurement lives in bench/hostile_call_body.py."""

import sys

from bench.hostile_call_body import main

if __name__ == "__main__":
    sys.exit(main())
