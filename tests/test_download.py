"""Downloads: size cap, URL policy, length checks, atomic final names (httpx MockTransport)."""

import hashlib
import re
import threading

import httpx
import pytest

import stemlab.download as download_module
from stemlab.download import download, download_all
from stemlab.errors import DownloadError, NetworkError
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
    with pytest.raises(DownloadError, match="URL stemlab refuses") as refused:
        download(c, url, tmp_path / "a.mp3", policy=FAST)
    assert refused.value.exit_code == 3  # the job is done and paid: not "no request sent"
    assert list(tmp_path.iterdir()) == []


def test_a_refused_url_leaves_no_part_file_for_the_others(tmp_path):
    c = client_for(lambda r: pytest.fail("must not be requested"))
    with pytest.raises(DownloadError):
        download_all(c, [("https://cdn.example/a.mp3", tmp_path / "a.mp3"),
                         ("http://cdn.example/b.mp3", tmp_path / "b.mp3")], policy=FAST, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_every_redirect_hop_is_checked(tmp_path):
    def serve(request):
        if request.url.path == "/start":
            return httpx.Response(302, headers={"Location": "https://other.example/next"})
        if request.url.path == "/next":
            return httpx.Response(307, headers={"Location": "/final.mp3"})  # relative, same host
        if request.url.path == "/final.mp3":
            return httpx.Response(200, content=b"ID3 bytes")
        if request.url.path == "/to-http":
            return httpx.Response(302, headers={"Location": "http://evil.example/x.mp3"})
        return httpx.Response(302, headers={"Location": "/loop"})

    c = client_for(serve)
    record = download(c, "https://cdn.example/start", tmp_path / "a.mp3", policy=FAST)
    assert record.size == 9 and record.url == "https://cdn.example/start"
    with pytest.raises(DownloadError, match="refuses.*plain-http"):
        download(c, "https://cdn.example/to-http", tmp_path / "b.mp3", policy=FAST)
    with pytest.raises(DownloadError, match="redirect loop"):
        download(c, "https://cdn.example/loop", tmp_path / "c.mp3", policy=FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp3"]


def test_http_is_fine_on_loopback(tmp_path):
    c = client_for(lambda r: httpx.Response(200, content=b"abc"))
    assert download(c, "http://127.0.0.1:9/a.mp3", tmp_path / "a.mp3", policy=FAST).size == 3
    assert download(c, "http://localhost:9/b.mp3", tmp_path / "b.mp3", policy=FAST).size == 3


def test_a_short_body_is_never_given_the_final_name(tmp_path):
    def short(request):
        return httpx.Response(200, headers={"Content-Length": str(len(DATA))}, stream=httpx.ByteStream(DATA[:100]))

    with pytest.raises(NetworkError, match="download of a.mp3"):
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
    assert calls == ["bytes=0-1048575", "bytes=5000-1048575"] and rec.sha256 == hashlib.sha256(DATA).hexdigest()
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


def ranged_server(data, log, *, drop_once_at=None):
    """A handler that honours Range like a CDN, optionally dropping one answer part-way."""
    lock = threading.Lock()

    def handler(request):
        start, end = re.match(r"bytes=(\d+)-(\d*)", request.headers["Range"]).groups()
        start, end = int(start), min(int(end) if end else len(data) - 1, len(data) - 1)
        body = data[start:end + 1]
        with lock:
            log.append((start, end))
            if drop_once_at is not None and start <= drop_once_at[0] <= end and not drop_once_at[1]:
                drop_once_at[1] = True
                body = body[:drop_once_at[0] - start]  # the connection dies here
        return httpx.Response(206, headers={"Content-Range": f"bytes {start}-{end}/{len(data)}",
                                            "Content-Length": str(end - start + 1)}, stream=httpx.ByteStream(body))

    return handler


def test_big_files_arrive_as_parallel_ranges(tmp_path, monkeypatch):
    monkeypatch.setattr(download_module, "SEGMENT", 10_000)
    log = []
    items = [("https://cdn.example/a.mp3", tmp_path / "a.mp3"), ("https://cdn.example/b.mp3", tmp_path / "b.mp3")]
    records = download_all(client_for(ranged_server(DATA, log, drop_once_at=[25_000, False])), items, policy=FAST,
                           progress=False)
    assert [r.sha256 for r in records] == [hashlib.sha256(DATA).hexdigest()] * 2
    assert (tmp_path / "a.mp3").read_bytes() == DATA and (tmp_path / "b.mp3").read_bytes() == DATA
    starts = sorted(start for start, _ in log)
    assert len(log) == 2 * 11 + 1  # 11 segments each, plus one resume after the drop
    assert 25_000 in starts  # the dropped segment resumed at the byte it stopped at


def test_small_file_fits_the_first_range(tmp_path):
    log = []
    rec = download(client_for(ranged_server(b"tiny", log)), "https://cdn.example/t.mp3", tmp_path / "t.mp3",
                   policy=FAST)
    assert rec.size == 4 and log == [(0, 3)]
