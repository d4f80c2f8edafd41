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
TEST_METRIC = "test_acc"  # what a result is reported as (the test images no search looks at)
GROUP_METRICS = ("many_acc", "medium_acc", "few_acc")  # test accuracy per group of classes
RESULT_METRICS = (OBJECTIVE, TEST_METRIC, *GROUP_METRICS, COST)  # a run's final numbers

# How a run ends on its own (the loop's "status"); "running" while it goes on.
RUNNING, COMPLETED, DIVERGED = "running", "completed", "diverged"
