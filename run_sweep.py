#!/usr/bin/env python
"""Entry point: ``python run_sweep.py --help`` lists the sub-commands."""
import sys

from autotune.cli import main

if __name__ == "__main__":
    sys.exit(main())
