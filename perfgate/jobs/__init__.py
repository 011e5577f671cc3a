"""Jobs over HTTP: the service that keeps the journal, the pool and the job channels in step."""

from perfgate.jobs.service import JobService

__all__ = ["JobService"]
