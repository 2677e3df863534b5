"""Durable jobs: rows claimed with a lease, woken by NOTIFY, retried on one schedule, pruned when old.

- `fedserver/repo/jobs.py`: the SQL of every job table (claim, finish, reschedule, prune), given a `Queue`
  that names the table; each queue's `Queue` lives beside its table's other SQL.
- `schedule`: the retry schedule and the `Outcome` of one attempt (pure).
- `worker`: `JobWorker`, the loop that claims, runs (in order per key when asked) and records.
- `janitor`: deletes finished rows after `[jobs] retention_days`.

The inbox (`federation/processing.py`), deliveries (`federation/delivery.py`) and reward
receipt deliveries (`rewards/workers.py`) are queues of this one mechanism.
"""

from .schedule import RETRY, Outcome, retry_delay
from ..repo.jobs import Job, Queue
from .worker import JobWorker, WorkerOptions

__all__ = ["RETRY", "Job", "JobWorker", "Outcome", "Queue", "WorkerOptions", "retry_delay"]
