"""Official scores of the fine-tuning tasks: `compute(metric_names, predictions, labels)` for
classification, regression and entity F1 (fractions), SQuAD v1.1/v2.0's `squad_evaluate` and
CMRC 2018's `cmrc_evaluate` (0-100, as the official scripts)."""

from bertforge.tasks.scoring.cmrc_eval import cmrc_evaluate
from bertforge.tasks.scoring.metrics import METRICS, compute, entity_report
from bertforge.tasks.scoring.squad_eval import squad_evaluate

__all__ = ["METRICS", "cmrc_evaluate", "compute", "entity_report", "squad_evaluate"]
