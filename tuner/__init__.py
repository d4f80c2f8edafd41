"""tuner: the sweep service. One YAML spec in; Ray Tune trials, Optuna proposals, ASHA decisions,
MLflow runs and a registered model out.

The rooms, from the command down; a module imports only from rooms below its own (and from
`trainables`, which imports nothing of tuner). tests/test_layout.py checks both.

    launch.py     the command: parse, preflight, run, finish, exit code
    stop.py       the command that asks a running sweep's driver to stop (from any host)
    status.py     the command that says where a sweep stands (from any host)
    reproduce/    the published baselines' rows (docs/RESULTS.md), on a user's own GPU
    report/       leaderboard, plots, ensembles of a finished sweep
    sweep/        experiment folder (state, lock), preflight, storage watch, progress, finish, trials table
    trial/        the one Ray-aware training function; per-device workers that train several trials at once
    tracking/     everything MLflow: trial runs, the sweep's parent run, the registered winner
    spec/         YAML -> typed sections, the Optuna space, the generated docs/SPEC.md
    exit_codes.py, quiet.py   the commands' exit codes; quieter third-party logs (import nothing of tuner)
"""
