"""Local source separation: ``stemlab.separate(x, method=...)``, no key, no network.

``x`` is a :class:`~stemlab.stemset.StemSet` (its source is separated; its stems are the true
references ``oracle`` needs), a path to an audio file, or an array ``(channels, samples)`` with
``sr=``. The result is a StemSet in the canonical taxonomy with ``provider="local"``, cached like a
fetched set (the method and its parameters are in the manifest), so a second call is instant.

>>> s = stemlab.separate(stemlab.demo_song(), method="hpss")          # doctest: +SKIP
>>> s.names, s.manifest["params"]["kernel"]                           # doctest: +SKIP
(['drums', 'other'], 17)

See :mod:`stemlab.separation.methods` for the methods and what each assumes.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..conform import conform
from ..errors import UsageError
from . import methods

__all__ = ["separate", "METHODS"]

METHODS = {"hpss": methods.hpss, "repet-sim": methods.repet_sim, "center": methods.center, "nmf": methods.nmf,
           "oracle": methods.oracle}


def _method_name(method: str) -> str:
    name = str(method).lower().replace("_", "-")
    name = {"repetsim": "repet-sim", "repet": "repet-sim", "centre": "center"}.get(name, name)
    if name not in METHODS:
        raise UsageError(f"unknown separation method {method!r}: use one of {', '.join(METHODS)}")
    return name


def _parameters(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The method's parameters with defaults filled in; unknown ones are a clear error."""
    signature = inspect.signature(METHODS[name])
    allowed = {p.name: p.default for p in signature.parameters.values()
               if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "references"}
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise UsageError(f"{name} does not take {', '.join(unknown)}; it takes {', '.join(allowed) or 'nothing'}")
    return {**allowed, **params}


def _digest(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
    return digest.hexdigest()


def _input(x, sr: int | None, references) -> tuple[np.ndarray, int, str, dict[str, np.ndarray] | None, dict]:
    """``(mix, sr, identity, references, description)`` for any accepted input."""
    from ..audio import decode
    from ..stemset import StemSet

    if isinstance(x, StemSet):
        if x.source is None:
            raise UsageError("this stem set has no source track to separate")
        conformed = x.conform()  # one rate, layout and length: the true stems line up with the mix
        refs = conformed.stems if references is None else _arrays(references)
        identity = _digest(x.source.token, str(x.sr))
        return np.asarray(conformed.source, dtype=np.float32), x.sr, identity, refs, {
            "stemset": x.key or str(x.folder), "provider": x.provider}
    if isinstance(x, (str, os.PathLike)):
        path = Path(x).expanduser()
        audio, rate = decode(path, sr=sr)
        return audio, rate, _digest(path.read_bytes(), str(sr)), _arrays(references), {"path": str(path.resolve())}
    audio = np.asarray(x, dtype=np.float32)
    audio = audio[None] if audio.ndim == 1 else audio
    if audio.ndim != 2 or sr is None:
        raise UsageError("separate() takes a StemSet, a path, or an array (channels, samples) with sr=")
    return audio, int(sr), _digest(audio.tobytes(), str(sr)), _arrays(references), {"array": list(audio.shape)}


def _arrays(references) -> dict[str, np.ndarray] | None:
    if references is None:
        return None
    if hasattr(references, "conform"):
        return dict(references.conform().stems)
    return {name: np.asarray(audio, dtype=np.float32) for name, audio in dict(references).items()}


def separate(x, method: str = "hpss", *, sr: int | None = None, references=None,
             cache_dir: str | os.PathLike | None = None, settings=None, force: bool = False, **params: Any):
    """Separate ``x`` locally with ``method`` and return the stems as a cached StemSet.

    Parameters
    ----------
    x : StemSet, path or array
        What to separate (a StemSet's source).
    method : {"hpss", "repet-sim", "center", "nmf", "oracle"}
    sr : int, optional
        Needed for an array; resamples a file.
    references : StemSet or mapping, optional
        The true stems, for ``oracle`` (default: the StemSet's own stems).
    cache_dir, settings : optional
        Where the result is cached (default: the environment's settings).
    force : bool
        Compute again even if the cache holds this result.
    **params :
        The method's parameters (see :mod:`stemlab.separation.methods`), e.g. ``kernel=31``.

    Returns
    -------
    StemSet
        ``provider="local"``; ``manifest["method"]`` and ``manifest["params"]`` record how.
    """
    from ..cache import Cache
    from ..config import Settings
    from ..stemset import StemSet
    from .store import store

    name = _method_name(method)
    full = _parameters(name, params)
    mix, rate, identity, refs, described = _input(x, sr, references)
    if name == "oracle":
        if not refs:
            raise UsageError("oracle needs the true stems: pass a StemSet that has them (e.g. stemlab.demo_song()) "
                             "or references={name: audio}")
        refs = conform(refs, source=mix, sr=rate).stems  # given stems fitted onto the mix's layout and length
        identity = _digest(identity, *sorted(f"{n}:{_digest(np.ascontiguousarray(a).tobytes())}"
                                             for n, a in refs.items()))
    if name == "center" and mix.shape[0] != 2:
        raise UsageError(f"center extraction needs a stereo mix; this one has {mix.shape[0]} channel(s)")
    key = f"local-{name}-{identity[:12]}-{_digest(json.dumps(full, sort_keys=True))[:8]}"
    cache = Cache(Settings.of(settings, cache_dir=cache_dir).cache_dir)
    with cache.lock(key):
        if force or cache.read_manifest(key) is None:
            cache.clear(key)
            kwargs = dict(full, references=refs) if name == "oracle" else full
            stems = METHODS[name](mix, rate, **kwargs)
            store(cache, key, mix=mix, sr=rate, stems=stems,
                  request={"method": name, "params": full, "input": described})
    return StemSet.open(cache.set_dir(key))
