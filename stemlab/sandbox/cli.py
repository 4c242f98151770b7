"""``stemlab sandbox``: serve both providers' APIs on 127.0.0.1 until Ctrl-C.

With no ``--library`` it serves the built-in demo song. It prints the environment a shell or a
notebook needs to talk to it instead of the real providers.
"""

from __future__ import annotations

import sys

__all__ = ["run_sandbox", "SANDBOX_KEYS"]

SANDBOX_KEYS = {"cqtai": "sk-sandbox", "apiframe": "afk_sandbox"}


def run_sandbox(*, port: int = 8765, library: str | None = None, cache_dir: str | None = None,
                out=sys.stdout) -> int:
    from ..demo.library import demo_library
    from .server import serve

    root = library or demo_library(cache_dir=cache_dir)

    def announce(sb) -> None:
        print(f"stemlab sandbox on {sb.url} (Ctrl-C to stop), serving {root}", file=out)
        print("Use it from a shell or a notebook with:", file=out)
        for name, value in (("STEMLAB_CQTAI_URL", sb.cqtai_url), ("STEMLAB_APIFRAME_URL", sb.apiframe_url),
                            ("STEMLAB_SUNO_CDN_URL", sb.suno_cdn_url), ("CQTAI_API_KEY", SANDBOX_KEYS["cqtai"]),
                            ("APIFRAME_API_KEY", SANDBOX_KEYS["apiframe"]), ("STEMLAB_POLL_INTERVAL", "0.2")):
            print(f"  export {name}={value}", file=out)
        for song_id, song in sb.library.items():
            tracks = ", ".join(t.id for t in song.tracks)
            print(f"song {song_id}: clip id {song.clip_id} | apiframe parent job {song.parent_job_id} "
                  f"(tracks {tracks})", file=out)
        out.flush()

    serve(root, port=port, on_ready=announce, cqtai_key=SANDBOX_KEYS["cqtai"], apiframe_key=SANDBOX_KEYS["apiframe"])
    return 0
