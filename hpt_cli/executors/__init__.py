"""Executors run opaque jobs ("package.module:function" + payload) on worker processes.

`Executor` is the seam (start / submit / free_slots / wait / shutdown); `LocalExecutor` runs
persistent worker processes on this machine. See docs/executors.md.
"""

from hpt_cli.executors.base import Executor, Job, JobResult, JobStatus
from hpt_cli.executors.local import LocalExecutor

__all__ = ["Executor", "Job", "JobResult", "JobStatus", "LocalExecutor"]
