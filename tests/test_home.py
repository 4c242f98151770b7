"""With a cache folder given, no entry point writes anything under the user's home folder.

Each session runs in a fresh process whose HOME is an empty folder and whose STEMLAB_CACHE_DIR is
unset, so anything that fell back to the default cache (``~/.cache/stemlab``) would land there.
matplotlib keeps its own font cache under MPLCONFIGDIR, which the test points elsewhere: that is
matplotlib's, not stemlab's.
"""

import os
import subprocess
import sys

import numpy as np
import soundfile as sf

from stemlab.sandbox.synth import synth_stems

SESSION = r"""
import sys
import stemlab
from stemlab.sandbox import Sandbox

cache, a, b, library = sys.argv[1:5]
s = stemlab.open_set(a, cache_dir=cache)
s["vocals"].audio
stemlab.StemSet.open(b, cache_dir=cache).decode_all()
assert stemlab.check(a, cache_dir=cache).ok
stemlab.compare(a, b, cache_dir=cache)
stemlab.separate(s, method="hpss", cache_dir=cache)
stemlab.explore(a, cache_dir=cache).snapshot()
with Sandbox(library) as sb:
    fetched = stemlab.fetch("cqtai", clip_id="song", settings=sb.settings(), cache_dir=cache, progress=False)
stemlab.Cache.open(cache_dir=cache).du()
print("ok", len(fetched))
"""


def _fresh_env(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEMLAB_", "XDG_"))}
    env.update(HOME=str(home), MPLCONFIGDIR=str(tmp_path / "matplotlib"))
    return env, home


def _written(home) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*"))


def test_a_session_with_cache_dir_writes_nothing_under_home(tmp_path):
    from stemlab.sandbox.synth import make_song

    stems = synth_stems(duration=2.0, sr=22050, names=("vocals", "drums", "bass"), seed=3)
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        for stem, audio in stems.items():
            sf.write(folder / f"{stem}.wav", audio.T, 22050, subtype="FLOAT")
        sf.write(folder / "mixture.wav", np.sum(list(stems.values()), axis=0).T, 22050, subtype="FLOAT")
    make_song(tmp_path / "library", "song", duration=1.0, names=("vocals", "bass"))
    env, home = _fresh_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", SESSION, str(tmp_path / "cache"), str(tmp_path / "a"),
                           str(tmp_path / "b"), str(tmp_path / "library")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok", "2"]  # the library song has two stems
    assert _written(home) == []
    assert (tmp_path / "cache" / "folders").is_dir()  # the folder sets' derived data went to the cache given


def test_the_demo_with_cache_dir_writes_nothing_under_home(demo_run):
    text, report, cache, home = demo_run
    assert _written(home) == []
    assert report.is_relative_to(cache)
