"""Executors run opaque jobs ("package.module:function" + payload) on worker processes.

`Executor` is the seam (start / submit / free_slots / wait / shutdown); `LocalExecutor` runs
persistent worker processes on this machine; `DaskExecutor` runs jobs on a Dask cluster (imported
on first use, so hpt never imports dask unless asked). See docs/executors.md and docs/dask.md.
"""

from hpt_cli.executors.base import Executor, Job, JobResult, JobStatus

__all__ = ["DaskExecutor", "Executor", "Job", "JobResult", "JobStatus", "LocalExecutor"]


def __getattr__(name: str):
    if name == "LocalExecutor":  # lazy: a worker process imports this package but never needs it
        from hpt_cli.executors.local import LocalExecutor

        return LocalExecutor
    if name == "DaskExecutor":  # lazy: `distributed` is an optional dependency
        from hpt_cli.executors.dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module 'hpt_cli.executors' has no attribute {name!r}")
