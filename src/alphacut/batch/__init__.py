"""Batches of files: planning inputs to outputs, and running them in parallel."""

from .plan import Plan, Task, plan_batch
from .run import BatchItem, default_jobs, run_batch

__all__ = ["BatchItem", "Plan", "Task", "default_jobs", "plan_batch", "run_batch"]
