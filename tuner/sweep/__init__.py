"""The sweep room: a sweep's life on the driver, from the pre-flight checks to the trials table.

    experiment      the sweep's folder (local or s3://, gs://), its state file (SweepState), its driver
                    lock, Ray Tune's saved files, the spec's fingerprint
    preflight       what is checked before any trial starts (data, tracking store, cluster resources)
    disk_space      free space of every local folder the sweep writes (run.min_free_mb)
    storage_watch   a Ray Tune callback that stops the sweep, resumably, when space runs short
    stop            stopping a sweep as Ctrl-C does, however the launcher was started (SIGTERM, the storage watch)
    stop_request    the Ray Tune callback that honours `python -m tuner.stop` (a request file it polls for)
    rungs           ASHA with its cuts at given epochs, and the start-up warning about cuts before DRW or a decay
    progress        the status line every 15 s and one line per ended trial
    status_callback tags a trial's MLflow run when Ray Tune ends it from outside (stopped, failed)
    slot_use        how busy the sweep kept its trial slots
    trials_table    one Parquet row per trial (trials.parquet)
    live_table      trials.parquet and the parent run's best kept current while the sweep runs
    warm_start      a previous sweep's completed trials, with their values, in the new sweep's Optuna study
    whole_state_files  Ray Tune's saved state copied into a local experiment folder whole or not at all
    finish          the end: the table, MLflow statuses, the registered best model, the summary

May import: tuner.trial, tuner.tracking, tuner.spec, trainables, ray and pyarrow. The command
(tuner.launch) and the report read what it writes; it imports neither.
"""
