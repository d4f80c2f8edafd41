"""A trial whose reused process dies while it resets is retried, not ended: a fix for Ray Tune.

With `reuse_actors` (warm trials, tuner/launch.py), a slot's next trial starts with a `reset` task
on the slot's process, and the trial stays PENDING until the reset returns. If that process dies
then (SIGKILL, the OOM killer, a lost node), Ray's actor manager answers the one RayActorError with
two callbacks (ray/air/execution/_internal/actor_manager.py, `_actor_task_failed`):

1. the actor's: `TuneController._actor_failed` finds the trial pending, counts a failure and
   requeues it to be retried from its checkpoint, as max_failures promises;
2. the reset task's: `_trial_task_failure` counts a second failure, finds the requeued trial
   PENDING (not RUNNING), and so ends it as ERROR, with retries left.

The trial also stays in `_resetting_trials`, and a trial in that set never gets a process again.
Found by the chaos soak (tests/tuner/test_soak.py, 2026-12-01, Ray 2.60.0): 1 of 24 trials failed
after one kill, with max_failures 50, both failures in its error.txt at the same second.

The fix wraps the reset task's error callback: the reset is forgotten, and a RayActorError that the
actor's callback has already handled (it runs first) is not handled again. Any other reset error (an
exception in the trainable's reset) goes to Ray as before. tests/tuner/test_reset_death.py kills a
process in its reset, through Ray Tune, and fails without this.
"""

from __future__ import annotations

import functools
from typing import Any

_APPLIED = "_tuner_reset_death_fix"


def retry_trials_whose_process_dies_in_reset() -> None:
    """Patch Ray Tune's controller once per process; later calls do nothing."""
    from ray.exceptions import RayActorError
    from ray.tune.execution.tune_controller import TuneController

    schedule = TuneController._schedule_trial_task
    if getattr(schedule, _APPLIED, False):
        return

    @functools.wraps(schedule)
    def _schedule_trial_task(self: TuneController, trial: Any, method_name: str, *args: Any, **kwargs: Any):
        on_error = kwargs.get("on_error")
        if method_name == "reset" and on_error is not None:
            def reset_failed(failed_trial: Any, exception: Exception) -> None:
                self._resetting_trials.discard(failed_trial)
                # Handled when the actor's callback has counted the failure, requeued the trial and
                # let go of its dead process; otherwise Ray's own handling, as before.
                handled = isinstance(exception, RayActorError) and failed_trial not in self._trial_to_actor
                if not handled:
                    on_error(failed_trial, exception)

            kwargs["on_error"] = reset_failed
        return schedule(self, trial, method_name, *args, **kwargs)

    setattr(_schedule_trial_task, _APPLIED, True)
    TuneController._schedule_trial_task = _schedule_trial_task
