"""Providers sit behind one protocol and one registry; fetch, the CLI, the sandbox and the docs follow it."""

import contextlib
import io
from pathlib import Path

import pytest

from stemlab.cli import _parser
from stemlab.errors import UsageError
from stemlab.fetching import build_request
from stemlab.providers import REGISTRY, Provider, provider
from stemlab.sandbox.server import MOUNTS

ROOT = Path(__file__).resolve().parents[1]


def _help(*args) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        _parser().parse_args([*args, "--help"])
    return out.getvalue()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_provider_implements_the_protocol(name):
    kind = REGISTRY[name]
    assert issubclass(kind, Provider) and kind.name == name
    for method in ("submit", "poll", "source", "_read", "_auth", "add_arguments", "arguments"):
        assert getattr(kind, method) is not getattr(Provider, method), f"{name} does not implement {method}"
    assert kind.key_setting.endswith("_api_key") and all(s.endswith("_url") for s in kind.urls)
    assert all(url.startswith("https://") for url in kind.urls.values())


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_cli_sandbox_and_docs_follow_the_registry(name):
    kind = REGISTRY[name]
    assert f"    {name} " in _help("fetch") and kind.title in _help("fetch")
    assert set(kind.urls) <= set(MOUNTS), f"the sandbox has no mount for {set(kind.urls) - set(MOUNTS)}"
    readme = (ROOT / "README.md").read_text()
    assert f'fetch("{name}"' in readme and f"stemlab fetch {name}" in readme


def test_requests_are_validated_by_their_provider_before_anything_is_sent():
    assert build_request("cqtai", clip_id="abc", two=True).cache_key == "cqtai-2-abc"
    assert build_request("apiframe", parent_job_id="p1", track_id="t1").cache_key == "apiframe-p1-t-t1"
    with pytest.raises(UsageError, match="cqtai does not take index; it takes clip_id, two"):
        build_request("cqtai", clip_id="abc", index=1)
    with pytest.raises(UsageError, match="unknown provider 'suno': use 'cqtai' or 'apiframe'"):
        provider("suno")
