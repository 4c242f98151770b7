"""Downloads: size cap, URL policy, length checks, atomic final names (httpx MockTransport)."""

import hashlib

import httpx
import pytest

from stemlab.download import download, download_all
from stemlab.errors import DownloadError, UsageError
from stemlab.http import RetryPolicy

FAST = RetryPolicy(attempts=3, base_delay=0.0)
DATA = bytes(range(256)) * 400


def client_for(handler):
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_record_has_size_and_sha256(tmp_path):
    c = client_for(lambda r: httpx.Response(200, content=DATA))
    rec = download(c, "https://cdn.example/a.mp3", tmp_path / "a.mp3", policy=FAST)
    assert rec.size == len(DATA) and rec.sha256 == hashlib.sha256(DATA).hexdigest()
    assert (tmp_path / "a.mp3").read_bytes() == DATA


def test_size_cap_refuses_announced_and_actual_sizes(tmp_path):
    c = client_for(lambda r: httpx.Response(200, content=DATA))
    with pytest.raises(DownloadError, match="cap"):
        download(c, "https://cdn.example/a.mp3", tmp_path / "a.mp3", max_bytes=1000, policy=FAST)

    def streamed(request):  # no Content-Length: the cap must still hold
        return httpx.Response(200, stream=httpx.ByteStream(DATA), headers={"Transfer-Encoding": "chunked"})

    with pytest.raises(DownloadError, match="cap"):
        download(client_for(streamed), "https://cdn.example/b.mp3", tmp_path / "b.mp3", max_bytes=1000, policy=FAST)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["http://cdn.example/a.mp3", "ftp://cdn.example/a.mp3", "file:///etc/passwd"])
def test_only_https_or_loopback_http(tmp_path, url):
    c = client_for(lambda r: pytest.fail("must not be requested"))
    with pytest.raises(UsageError, match="refusing"):
        download(c, url, tmp_path / "a.mp3", policy=FAST)


def test_http_is_fine_on_loopback(tmp_path):
    c = client_for(lambda r: httpx.Response(200, content=b"abc"))
    assert download(c, "http://127.0.0.1:9/a.mp3", tmp_path / "a.mp3", policy=FAST).size == 3
    assert download(c, "http://localhost:9/b.mp3", tmp_path / "b.mp3", policy=FAST).size == 3


def test_a_short_body_is_never_given_the_final_name(tmp_path):
    def short(request):
        return httpx.Response(200, headers={"Content-Length": str(len(DATA))}, stream=httpx.ByteStream(DATA[:100]))

    with pytest.raises(Exception):
        download(client_for(short), "https://cdn.example/a.mp3", tmp_path / "a.mp3", policy=FAST)
    assert list(tmp_path.iterdir()) == []


def test_range_is_honoured_and_ignored_range_restarts(tmp_path):
    calls = []

    def flaky(request):
        calls.append(request.headers.get("Range"))
        if len(calls) == 1:
            return httpx.Response(200, headers={"Content-Length": str(len(DATA))},
                                  stream=httpx.ByteStream(DATA[:5000]))
        return httpx.Response(200, content=DATA)  # a server that ignores Range: start over

    rec = download(client_for(flaky), "https://cdn.example/a.mp3", tmp_path / "a.mp3", policy=FAST)
    assert calls == [None, "bytes=5000-"] and rec.sha256 == hashlib.sha256(DATA).hexdigest()
    assert (tmp_path / "a.mp3").read_bytes() == DATA


def test_one_failure_stops_the_rest_and_cleans_up(tmp_path):
    def handler(request):
        if "bad" in request.url.path:
            return httpx.Response(404)
        return httpx.Response(200, content=DATA)

    items = [(f"https://cdn.example/{n}.mp3", tmp_path / f"{n}.mp3") for n in ("a", "bad", "c")]
    with pytest.raises(DownloadError, match="404"):
        download_all(client_for(handler), items, policy=FAST, progress=False)
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())
    optional = download_all(client_for(handler), items, policy=FAST, progress=False, optional=[1])
    assert isinstance(optional[1], DownloadError) and optional[0].size == len(DATA)
