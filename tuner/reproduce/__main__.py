"""python -m tuner.reproduce: the rows of docs/RESULTS.md (tuner/reproduce/command.py)."""

import sys

from tuner.reproduce.command import main

sys.exit(main())
