"""Running independent pieces of work on a Dask cluster, or one after another in this process.

``executor.py`` hands out tasks and streams their results back (Dask's ``Client.submit`` and
``as_completed``, or inline); ``session.py`` (imported by the commands, not by the package: Dask
is heavy to import) starts a local cluster or connects to a running scheduler. The work itself
(region subtrees, Monte-Carlo chunks) is defined where its maths lives.
"""

from quasieq.cluster.executor import DaskExecutor, Executor, InlineExecutor, executor_for

__all__ = ["DaskExecutor", "Executor", "InlineExecutor", "executor_for"]
