"""The fine-tuning tasks by name. Every module of this package defines and registers its
tasks when imported; the first lookup imports them all, so a new task is a new module here
and touches nothing else. Outside the package, `register_task(MyTask())` adds one."""

from __future__ import annotations

import importlib
import pkgutil

from bertforge.errors import ConfigError
from bertforge.tasks.base import Task

_TASKS: dict[str, Task] = {}
_NOT_TASKS = {"base", "registry"}
_discovered = False


def task_key(name: str) -> str:
    """A task name as the registry compares it: lower case, without '-' and '_'."""
    return name.lower().replace("-", "").replace("_", "")


def register_task(task: Task) -> Task:
    """Add `task` under its name and aliases (compared ignoring case, '-' and '_')."""
    for name in (task.name, *task.aliases):
        held = _TASKS.get(task_key(name))
        if held is not None and held is not task:
            raise ConfigError(f"a task named {name!r} is already registered ({held.name})")
        _TASKS[task_key(name)] = task
    return task


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    import bertforge.tasks as package

    for module in pkgutil.iter_modules(package.__path__):
        if not module.ispkg and module.name not in _NOT_TASKS:
            importlib.import_module(f"{package.__name__}.{module.name}")


def get_task(name: str) -> Task:
    """The task called `name` (`sst2`, `SST-2`, `ner`, `squad`, ...)."""
    _discover()
    task = _TASKS.get(task_key(name))
    if task is None:
        raise ConfigError(f"unknown task {name!r}; choose from {', '.join(task_names())}")
    return task


def all_tasks() -> list[Task]:
    """Every registered task once, in registration order."""
    _discover()
    return list(dict.fromkeys(_TASKS.values()))


def task_names() -> list[str]:
    return [t.name for t in all_tasks()]
