"""Fine-tuning runs on the shared trainer: the resolved plan (`plan.py`), strategies as
objects (`strategies.py`), batching (`batches.py`), the frozen encoder's feature cache
(`frozen.py`), the run (`job.py`), evaluation and prediction from a run directory
(`inference.py`) and the end-of-run report (`report.py`). Tasks live in `bertforge.tasks`."""

from bertforge.finetuning.inference import FinishedRun, evaluate_run, load_run, predict_run
from bertforge.finetuning.job import FinetuneOutcome, finetune
from bertforge.finetuning.plan import FinetuneConfig, FinetunePlan, plan_finetuning
from bertforge.finetuning.strategies import STRATEGIES, Strategy, get_strategy

__all__ = [
    "STRATEGIES",
    "FinetuneConfig",
    "FinetuneOutcome",
    "FinetunePlan",
    "FinishedRun",
    "Strategy",
    "evaluate_run",
    "finetune",
    "get_strategy",
    "load_run",
    "plan_finetuning",
    "predict_run",
]
