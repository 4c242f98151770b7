"""A loopback imitation of CQTAI's and Apiframe's stem APIs and CDNs, with scripted faults.

>>> from stemlab.sandbox import Sandbox, make_song          # doctest: +SKIP
>>> make_song("lib", "song-1")                              # doctest: +SKIP
>>> with Sandbox("lib", polls_to_complete=2) as sb:         # doctest: +SKIP
...     sb.faults.add("download", "drop", after_bytes=1000)
...     settings = dict(cqtai_url=sb.cqtai_url, suno_cdn_url=sb.suno_cdn_url)

Modules: :mod:`.server` (HTTP, :class:`Sandbox`, :func:`serve`), :mod:`.jobs` (the two APIs and
their job state machines), :mod:`.faults`, :mod:`.library` (the on-disk format), :mod:`.synth`
(test songs and MP3 helpers).
"""

from .faults import Fault, Faults
from .jobs import webhook_signature
from .library import (Song, Track, derive_two, encode_mp3, mp3_duration, read_library, read_song,
                      write_song)
from .server import Sandbox, serve
from .synth import make_library, make_song, mix, strip_xing_frame, synth_stems, tagless_vbr_mp3

__all__ = ["Sandbox", "serve", "Fault", "Faults", "webhook_signature", "Song", "Track",
           "derive_two", "encode_mp3", "mp3_duration", "read_library", "read_song", "write_song",
           "make_library", "make_song", "mix", "strip_xing_frame", "synth_stems", "tagless_vbr_mp3"]
