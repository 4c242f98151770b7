"""The demo song's true stems, written once per test session into a cache of its own."""

import pytest


@pytest.fixture(scope="session")
def demo_set(tmp_path_factory):
    import stemlab

    return stemlab.demo_song(cache_dir=tmp_path_factory.mktemp("transcription-demo"))
