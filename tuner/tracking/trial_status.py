"""How a trial of a sweep ended, as the Parquet table, MLflow's tags and the report say it.

A trial that ends on its own says completed or diverged (trainables/names.py); one the scheduler
ends is stopped (ASHA: a result, not a failure); one that crashes is failed.
"""

from __future__ import annotations

from trainables.names import COMPLETED, DIVERGED

STOPPED, FAILED = "stopped", "failed"
TRIAL_STATUSES = (COMPLETED, STOPPED, DIVERGED, FAILED)
USABLE = (COMPLETED, STOPPED)  # trials whose final metrics rank; diverged and failed ones do not
ENDED_FROM_OUTSIDE = (STOPPED, FAILED)  # the trial could not tag its own MLflow run: the driver does
# Not a trial's status but its run's: a child run whose trial the sweep no longer has (it started just
# before the driver died, after Ray Tune last saved its state, and the resumed sweep never knew it).
FORGOTTEN = "forgotten"
