"""The trial room: what runs inside one Ray Tune trial.

    trainable   run_trial, the one Ray-aware training function: trainables' loop with `report` bound
                to Ray Tune (metrics, checkpoints) and to the trial's MLflow run
    names       a trial's name and folder from its index and searched values
    worker      per-device workers that train several trials at once (resources.trials_per_worker)
    reset_death a fix for Ray Tune: a trial whose reused process dies in its reset is retried

May import: trainables, tuner.spec, tuner.tracking, ray and torch. The sweep room above wires it
into Ray Tune; it never reads the sweep's files.
"""
