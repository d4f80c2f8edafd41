"""python -m tuner.report NAME_OR_PATH: the report of a sweep (tuner/report/command.py)."""

import sys

from tuner.report.command import main

sys.exit(main())
