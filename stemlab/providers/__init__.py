"""Provider clients. A provider knows HTTP and its own JSON, nothing about numpy or plots.

Each turns a request into a job (:meth:`submit`), a job into stem references (:meth:`poll`),
and names the source track (:meth:`source`); errors are typed (:mod:`stemlab.errors`).
"""

from .base import JobStatus, SourceRef, StemRef

__all__ = ["JobStatus", "SourceRef", "StemRef", "PROVIDERS"]

PROVIDERS = ("cqtai", "apiframe")
