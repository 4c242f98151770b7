"""Stem providers, behind one protocol (:class:`~stemlab.providers.base.Provider`) and one registry.

A provider knows HTTP and its own JSON, nothing about numpy or plots. Each turns a request into a
job (``submit``), a job into stem references (``poll``), and names the source track
(``source``); errors are typed (:mod:`stemlab.errors`).

Adding a provider is one new module with a :class:`Provider` subclass, plus one entry in
:data:`REGISTRY`; ``fetch``, the command line, the settings and the sandbox follow the registry.

>>> sorted(REGISTRY)
['apiframe', 'cqtai']
>>> provider("cqtai").request(clip_id="05d72140").cache_key
'cqtai-12-05d72140'
"""

from ..errors import UsageError
from .apiframe import Apiframe
from .base import JobStatus, Provider, SourceRef, StemRef
from .cqtai import Cqtai

__all__ = ["REGISTRY", "provider", "Provider", "JobStatus", "SourceRef", "StemRef"]

#: provider name -> its class
REGISTRY: dict[str, type[Provider]] = {p.name: p for p in (Cqtai, Apiframe)}


def provider(name: str) -> type[Provider]:
    """The registered provider called ``name`` (in any case), or a :class:`UsageError` naming the
    ones there are.

    >>> provider("CQTAI").name
    'cqtai'
    """
    try:
        return REGISTRY[name.lower()]
    except (KeyError, TypeError, AttributeError):
        raise UsageError(f"unknown provider {name!r}: use {' or '.join(repr(n) for n in REGISTRY)} "
                         f"(or stemlab.separate for local)") from None
