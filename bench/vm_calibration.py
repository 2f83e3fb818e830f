"""Thin wrapper: the calibration lives in bench/vm_calibration_body.py, so the installed `ehrnet bench gas --calibrate`
can run it."""

import sys

from bench.vm_calibration_body import main

if __name__ == "__main__":
    sys.exit(main())
