"""The report room: what a finished (or running) sweep shows, `python -m tuner.report NAME_OR_PATH`.

    command        the command: leaderboard, report.parquet, plots, ensemble, all logged to MLflow
    leaderboard    ranks, the val_acc/flops_ratio Pareto front, the printed table
    sweep_trials   the trials as Ray Tune saved them: checkpoints, histories, threshold study, ensemble
    plots          the figures (matplotlib PNGs)
    importance     which searched parameters mattered: Optuna's evaluators on a study rebuilt from the table
    search_plots   the search space's figures: importances, slices, parallel coordinates
    rung_correlation  how well each ASHA rung's ranking predicted the final one (Spearman, over finished trials)

May import: tuner.sweep (the trials table and the sweep's state it reads), tuner.trial (the checkpoint
file), tuner.tracking, tuner.spec, trainables. Nothing imports it but the commands above it.
"""
