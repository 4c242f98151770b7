"""stemlab: fetch, cache, load, explore, check and compare music stems in Jupyter.

>>> import stemlab
>>> s = stemlab.fetch("cqtai", clip_id="...")                    # doctest: +SKIP
>>> s["drums"].audio.shape                                        # doctest: +SKIP
(2, 7938000)
>>> stemlab.check(s)                                              # doctest: +SKIP

Submodules and heavy dependencies (librosa, matplotlib, widgets) load on first use. No submodule
of stemlab has the name of a public function, so importing a submodule never replaces one.
"""

from __future__ import annotations

import importlib

from . import errors as _errors

__version__ = "0.1.0"

# public name -> module that defines it (loaded lazily, so `import stemlab` stays fast)
_EXPORTS = {
    "fetch": "stemlab.fetching",
    "open_set": "stemlab.fetching",
    "fetch_both": "stemlab.fetching",
    "study": "stemlab.studies.run",
    "export": "stemlab.exports",
    "export_pack": "stemlab.pack",
    "import_pack": "stemlab.pack",
    "pack_contents": "stemlab.pack",
    "StemSet": "stemlab.stemset",
    "Stem": "stemlab.stemset",
    "load_audio": "stemlab.audio",
    "check": "stemlab.analysis.check",
    "CheckReport": "stemlab.analysis.check",
    "Settings": "stemlab.config",
    "Cache": "stemlab.cache",
    "explore": "stemlab.view.explorer",
    "Explorer": "stemlab.view.explorer",
    "plot_waveform": "stemlab.view.plots",
    "plot_spectrogram": "stemlab.view.plots",
    "plot_stems": "stemlab.view.plots",
    "demo_song": "stemlab.demo",
    "separate": "stemlab.separation",
    "listen": "stemlab.view.listen",
    "compare": "stemlab.analysis.compare",
    "Comparison": "stemlab.analysis.compare",
    "si_sdr": "stemlab.analysis.metrics",
    "sdr": "stemlab.analysis.metrics",
    "sdr_improvement": "stemlab.analysis.metrics",
    "bss_eval": "stemlab.analysis.metrics",
    "evaluate": "stemlab.analysis.metrics",
    "transcribe": "stemlab.analysis.notes",
    "score_notes": "stemlab.analysis.notes",
    "score_drums": "stemlab.analysis.notes",
    "paired_summary": "stemlab.analysis.paired",
    "songs_needed": "stemlab.analysis.paired",
    "plot_pianoroll": "stemlab.view.pianoroll",
    **{name: "stemlab.errors" for name in _errors.__all__},
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stemlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
