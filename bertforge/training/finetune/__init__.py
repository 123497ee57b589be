"""Fine-tuning: the loop (`loop.py`), per-task glue (`tasks.py`), batching (`data.py`),
strategies (`strategy.py`: full, frozen, adapter, lora; `frozen.py`, `prompt.py`), reports and
plots (`report.py`), and evaluation/prediction from a run directory (`predict.py`)."""

from bertforge.training.finetune.loop import FinetuneConfig, finetune, load_best

__all__ = ["FinetuneConfig", "finetune", "load_best"]
