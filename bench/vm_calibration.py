"""Thin wrapper: the calibration lives in node/vm_calibration.py, so the installed `ehrnet bench gas --calibrate`
can run it."""

import sys

from node.vm_calibration import main

if __name__ == "__main__":
    sys.exit(main())
