"""The reproduce room: the published baselines' rows of docs/RESULTS.md, runnable on a user's own GPU.

    command      python -m tuner.reproduce: the rows' runs, several at once, resumable, within a budget
    rows         which preset reproduces which published number
    run_file     a run's files and the one reader and writer of its JSON lines
    supervisor   child processes in their own process groups, stopped at a deadline or on SIGINT/SIGTERM
    tables       python -m tuner.reproduce.tables: docs/RESULTS.md from the run files

May import: tuner.sweep (to find a sweep's best trial), trainables. Each run is a
`python -m trainables.train` process, so nothing of Ray, Optuna or MLflow is needed.
"""
