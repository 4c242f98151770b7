"""CQTAI's Suno stem tasks: ``gen_stem_all`` (12 stems) and ``gen_stem_two`` (2 stems).

Documented API (https://www.cqtai.com/docs/suno): submit ``POST /api/cqt/generator/suno`` with
``{"task", "clipId"}`` and ``Authorization: Bearer <key>``, answered ``{"code":200,"data":"<taskId>"}``;
poll ``GET /api/cqt/info/suno?id=<taskId>``. Errors arrive as the HTTP status *or* the body's
``code`` (401, 402, 429, 451, 500); both are read. The docs say ``succeeded`` in examples and
``success`` in prose, so both mean done; ``failed`` or a non-empty ``errorMsg`` means failed; any
other status means still running. The result's order is not guaranteed: each clip is named from
``metadata.stem_type_group_name`` or, failing that, from the title's trailing ``(...)``.

>>> CqtaiRequest("05d72140", two=True).cache_key
'cqtai-2-05d72140'
>>> CqtaiRequest("05d72140").body()
{'task': 'gen_stem_all', 'clipId': '05d72140'}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import httpx

from ..cache import id_component
from ..errors import ProtocolError, SubmitUncertainError, UsageError
from ..http import json_of
from ..taxonomy import TWELVE_STEMS, TWO_STEMS, label_from_title, safe_name
from .base import JobStatus, Provider, SourceRef, StemRef, number_or_none, words_of

__all__ = ["CqtaiRequest", "Cqtai"]

PROVIDER = "cqtai"
DONE = {"succeeded", "success"}
FAILED = {"failed", "fail", "error"}

HINTS = {
    401: "CQTAI rejected the API key; check CQTAI_API_KEY (it may be invalid or disabled)",
    402: "not enough CQTAI credits; recharge in the CQTAI console, then fetch again",
    429: "CQTAI's task limit is reached (too many running tasks); wait for them to finish, then fetch again",
    451: "CQTAI refused the content (moderation); this clip cannot be split",
    500: "CQTAI failed or timed out on its side; fetch again later",
}


@dataclass(frozen=True)
class CqtaiRequest:
    """A stem split of one Suno clip: 12 stems, or 2 with ``two=True``."""

    clip_id: str
    two: bool = False

    provider = PROVIDER

    def __post_init__(self):
        if not isinstance(self.clip_id, str) or not self.clip_id.strip():
            raise UsageError("cqtai needs a clip id: fetch('cqtai', clip_id='<Suno clip id>')")
        if any(c in self.clip_id for c in "/?#\\ ") or len(self.clip_id) > 128:
            raise UsageError(f"{self.clip_id!r} is not a Suno clip id (expected something like "
                             f"05d72140-38f5-4eb4-bdaa-a6e0d1c1167e)")
        object.__setattr__(self, "two", bool(self.two))

    @property
    def task(self) -> str:
        return "gen_stem_two" if self.two else "gen_stem_all"

    @property
    def expected_stems(self) -> tuple[str, ...]:
        """The stems the documented split holds."""
        return TWO_STEMS if self.two else TWELVE_STEMS

    @property
    def cache_key(self) -> str:
        return f"cqtai-{2 if self.two else 12}-{id_component(self.clip_id)}"

    def body(self) -> dict:
        return {"task": self.task, "clipId": self.clip_id}

    def describe(self) -> dict:
        """The request as recorded in the manifest."""
        return {"provider": PROVIDER, "task": self.task, "clip_id": self.clip_id}


def _body_code(value) -> int:
    """The body's ``code`` (200 means success) as an int; 200 when it is no status number at all
    (text, NaN, infinity, a fraction, a number of 30 digits), which an answer may hold.

    >>> [_body_code(v) for v in (200, "500", 404.0, float("inf"), 10 ** 40, "9" * 5000, "²", None)]
    [200, 500, 404, 200, 200, 200, 200, 200]
    """
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 6:
        value = int(value.strip())
    number = number_or_none(value, low=0, high=99_999)
    return int(number) if number is not None and number == int(number) else 200


class Cqtai(Provider):
    """Talks to CQTAI: ``gen_stem_all`` (12 stems) or ``gen_stem_two`` (2 stems) of a Suno clip."""

    name = PROVIDER
    title = "CQTAI gen_stem_all (12 stems) or gen_stem_two (2 stems)"
    request_type = CqtaiRequest
    urls = {"cqtai_url": "https://api.cqtai.com", "suno_cdn_url": "https://cdn1.suno.ai"}
    key_setting = "cqtai_api_key"
    hints = HINTS
    docs_url = "https://www.cqtai.com/docs/suno (Common Errors)"
    examples = ("stemlab fetch cqtai 05d72140-38f5-4eb4-bdaa-a6e0d1c1167e          # 12 stems",
                "stemlab fetch cqtai 05d72140-38f5-4eb4-bdaa-a6e0d1c1167e --two    # vocals, instrumental")

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("clip_id", metavar="CLIP_ID", help="the Suno clip id to split")
        parser.add_argument("--two", action="store_true", help="2 stems (gen_stem_two) instead of 12")

    @classmethod
    def arguments(cls, args) -> dict:
        return {"clip_id": args.clip_id, "two": args.two}

    def _auth(self, key: str) -> dict:
        return {"Authorization": f"Bearer {key}"}

    def _read(self, response: httpx.Response, *, job_id: str | None = None) -> dict:
        """The body of a successful answer, or the typed error for a failed one (either form)."""
        try:
            body = json_of(response, provider=PROVIDER)
        except ProtocolError:
            if response.status_code >= 400:  # an error page: the status is the message
                raise self._error(response.status_code, "", response, job_id) from None
            raise
        code = _body_code(body.get("code", 200))
        if response.status_code >= 400 or code != 200:
            status = code if code != 200 else response.status_code
            raise self._error(status, words_of(body, "msg", "errorMsg", "error", "message"), response, job_id)
        return body

    def submit(self, request: CqtaiRequest) -> str:
        """Start the split and return CQTAI's task id (retried only on a 429/5xx answer)."""
        data = self._call("POST", "/api/cqt/generator/suno", json=request.body(), what="the CQTAI submit",
                          sent_is_safe=False).get("data")
        if isinstance(data, Mapping):
            data = data.get("taskId") or data.get("id")
        if not isinstance(data, str) or not data:
            raise SubmitUncertainError(f"CQTAI accepted the task but its answer holds no task id ('data' is "
                                       f"{type(data).__name__})", provider=PROVIDER)
        return data

    def poll(self, job_id: str) -> JobStatus:
        """One look at the task (retried with backoff on network errors, 429 and 5xx)."""
        body = self._call("GET", "/api/cqt/info/suno", params={"id": job_id}, job_id=job_id, what="the CQTAI poll",
                          sent_is_safe=True)
        data = body.get("data")
        if not isinstance(data, Mapping):
            raise ProtocolError(f"CQTAI's answer for task {job_id} has no 'data' object", provider=PROVIDER,
                                job_id=job_id)
        return self._status_of(data, body, job_id)

    def _status_of(self, data: Mapping, body: dict, job_id: str) -> JobStatus:
        status = str(data.get("status") or "").strip().lower()
        error = words_of(data, "errorMsg", "msg", "error") or ""
        if status in FAILED or error:  # the envelope's msg ("success") is not the task's reason
            return JobStatus("failed", error=error or "no reason given (errorMsg is empty)", raw=body)
        if status not in DONE:
            return JobStatus("running", raw=body)
        stems = self._stems_of(data.get("result"), job_id)
        if stems is None:  # "succeeded" but the clips are still streaming
            return JobStatus("running", raw=body)
        return JobStatus("done", progress=100.0, stems=stems, raw=body)

    def _stems_of(self, result: Any, job_id: str) -> tuple[StemRef, ...] | None:
        if not isinstance(result, list) or not result:
            raise ProtocolError(f"CQTAI says task {job_id} succeeded but its result holds no stems",
                                provider=PROVIDER, job_id=job_id)
        stems: list[StemRef] = []
        for clip in result:
            if not isinstance(clip, Mapping):
                raise ProtocolError(f"CQTAI task {job_id}: a result entry is not an object", provider=PROVIDER)
            url = clip.get("audio_url") or clip.get("audioUrl")
            if not url or (isinstance(url, str) and "audiopipe" in url):
                return None
            if not isinstance(url, str):
                raise ProtocolError(f"CQTAI task {job_id}: a clip's audio_url is not text", provider=PROVIDER)
            metadata = clip.get("metadata") if isinstance(clip.get("metadata"), Mapping) else {}
            title = clip.get("title") if isinstance(clip.get("title"), str) else ""
            group = metadata.get("stem_type_group_name")
            label = ((group if isinstance(group, str) and group.strip() else None) or label_from_title(title)
                     or title.strip() or f"stem {len(stems) + 1}")
            duration = metadata.get("duration", clip.get("duration"))
            stems.append(StemRef(name=safe_name(label, taken=[s.name for s in stems]), label=label,
                                 url=url, duration=number_or_none(duration)))
        return tuple(stems)

    def source(self, request: CqtaiRequest) -> SourceRef:
        """The clip's own audio: ``<STEMLAB_SUNO_CDN_URL>/<clipId>.mp3`` (duration measured later)."""
        return SourceRef(url=f"{self.url('suno_cdn_url')}/{request.clip_id}.mp3")
