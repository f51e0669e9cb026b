"""Batches of files: planning inputs to outputs, and running them in parallel."""

from .plan import Plan, Task, plan_batch
from .run import BatchItem, default_jobs, pending_tasks, process_task, run_batch, run_task

__all__ = [
    "BatchItem",
    "Plan",
    "Task",
    "default_jobs",
    "pending_tasks",
    "plan_batch",
    "process_task",
    "run_batch",
    "run_task",
]
