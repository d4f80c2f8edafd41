"""Links into the MLflow UI that open a sweep's trials as a flat table, best first.

MLflow's UI (3.x) opens an experiment on its GenAI overview unless the link says
`workflowType=machine_learning`; it nests child runs under their parent unless the table is
sorted by something other than start time, so sorting by the objective both ranks the trials and
shows them flat; `searchFilter` keeps this sweep's trials (the children of its parent run);
`compareRunsMode=CHART` opens the chart view instead of the table.
"""

from __future__ import annotations

from urllib.parse import quote

LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def trials_link(base_url: str, experiment_id: str, parent_run_id: str, metric: str, mode: str, chart: bool = False) -> str:
    query = {
        "workflowType": "machine_learning",
        "searchFilter": f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
        "orderByKey": f"metrics.`{metric}`",
        "orderByAsc": "true" if mode == "min" else "false",
    }
    if chart:
        query["compareRunsMode"] = "CHART"
    text = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{text}"


def ui_lines(tracking_uri: str, experiment_id: str, parent_run_id: str, metric: str, mode: str) -> list[str]:
    """What to print for a person about to pick a winner: the link, and for a local store the command that serves it."""
    served = tracking_uri.startswith(("http://", "https://"))
    base = tracking_uri if served else LOCAL_UI
    lines = []
    if not served:
        lines.append(f"start the MLflow UI: mlflow ui --backend-store-uri {tracking_uri}")
    lines.append(f"trials in the MLflow UI, best {metric} first: {trials_link(base, experiment_id, parent_run_id, metric, mode)}")
    lines.append(f"the same as charts: {trials_link(base, experiment_id, parent_run_id, metric, mode, chart=True)}")
    return lines
