"""The names a run's results go by everywhere: the loop's metrics, the JSON lines, Ray Tune, MLflow,
the Parquet table, the report and the results tables. Change one here and every user follows.

    val_acc       the objective: accuracy on the balanced validation split carved from the test set
    test_acc      accuracy on the remaining test images (never an objective)
    many_acc, medium_acc, few_acc   per-group accuracies on the test images
    flops_ratio   inference FLOPs per image over LDAM-DRW's ResNet-32 (trainables/flops.py)
"""

from __future__ import annotations

OBJECTIVE = "val_acc"  # what searches and schedulers maximise
COST = "flops_ratio"  # the optional second objective, minimised
RESULT_METRICS = ("val_acc", "test_acc", "many_acc", "medium_acc", "few_acc", "flops_ratio")  # a run's final numbers

# How a run ends on its own (the loop's "status"); "running" while it goes on.
RUNNING, COMPLETED, DIVERGED = "running", "completed", "diverged"
