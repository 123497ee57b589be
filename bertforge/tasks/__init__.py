"""Fine-tuning tasks, one object each (`base.Task`), registered by name:

    sst2, mrpc, rte, stsb, cola, qnli, qqp, mnli, wnli   GLUE (glue.py)
    classify                                             your own CSV/TSV/JSONL (classify.py)
    ner                                                  CoNLL / char-bio tagging (ner.py)
    squad (qa), cmrc                                     extractive QA (squad.py, cmrc.py)

A task holds its readers, feature encoding, task head, objectives, metrics, default
hyper-parameters and prediction records; `formats/` has the file readers and features,
`scoring/` the official metrics. A new task is one module here (found when the registry is
first asked) or `register_task(...)` from anywhere.
"""

from bertforge.tasks.base import (
    REQUIRED,
    TASK_FILE,
    Features,
    Option,
    Split,
    Task,
    TaskSetup,
    find_file,
)
from bertforge.tasks.registry import all_tasks, get_task, register_task, task_names

__all__ = [
    "REQUIRED",
    "TASK_FILE",
    "Features",
    "Option",
    "Split",
    "Task",
    "TaskSetup",
    "all_tasks",
    "find_file",
    "get_task",
    "register_task",
    "task_names",
]
