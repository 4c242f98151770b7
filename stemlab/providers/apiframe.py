"""Apiframe's Suno ``stems`` action: vocals and instrumental of one track of a Suno job.

Documented API (https://apiframe.ai/docs/actions/suno/stems): ``POST /v2/music/suno/action``
with ``{parentJobId, action: "stems", index | trackId, webhookUrl?, webhookEvents?}`` and
``X-API-Key``, answered ``202 {jobId}``; poll ``GET /v2/jobs/{id}``: QUEUED -> PROCESSING
(``progress``) -> COMPLETED (``result.tracks``: ids ``vocals`` and ``instrumental``) | FAILED
(``error``). The source track is the parent job's ``result.tracks[index-1]`` (or the track whose
``id`` is the trackId).

>>> ApiframeRequest("a1b2", index=1).cache_key
'apiframe-a1b2-i1'
>>> ApiframeRequest("a1b2", index=1, track_id="x")
Traceback (most recent call last):
...
stemlab.errors.UsageError: apiframe stems: pass exactly one of index (1 or 2) and track_id
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote
from typing import Any, Mapping

import httpx

from ..cache import id_component
from ..config import Secret
from ..errors import ProtocolError, SubmitUncertainError, UsageError
from ..http import json_of
from ..taxonomy import TWO_STEMS, canonical_name, safe_name
from .base import JobStatus, Provider, SourceRef, StemRef, number_or_none, words_of

__all__ = ["ApiframeRequest", "Apiframe", "verify_webhook_signature", "WEBHOOK_EVENTS"]

PROVIDER = "apiframe"
WEBHOOK_EVENTS = ("progress", "completed", "failed")

HINTS = {
    400: "Apiframe refused the request as invalid",
    401: "Apiframe rejected the API key; check APIFRAME_API_KEY (keys start with afk_)",
    402: "not enough Apiframe credits; top up, then fetch again",
    403: "the Apiframe API key is inactive; activate it in the Apiframe dashboard",
    404: "Apiframe does not know this job; check the parent job id",
    409: ("a stems job cannot be the parent of another action: pass the id of the original Suno "
          "generation job as parent_job_id"),
    429: "Apiframe is rate-limiting; wait a little and fetch again",
    500: "Apiframe failed on its side; fetch again later",
}


@dataclass(frozen=True)
class ApiframeRequest:
    """A stems split of one track of an Apiframe Suno job: ``index`` (1 or 2) or ``track_id``."""

    parent_job_id: str
    index: int | None = None
    track_id: str | None = None
    webhook_url: str | None = None
    webhook_events: tuple[str, ...] = ()

    provider = PROVIDER

    def __post_init__(self):
        if not isinstance(self.parent_job_id, str) or not self.parent_job_id.strip():
            raise UsageError("apiframe needs the parent job id: fetch('apiframe', parent_job_id=..., index=1)")
        if any(c in self.parent_job_id for c in "/?#\\ "):
            raise UsageError(f"{self.parent_job_id!r} is not an Apiframe job id")
        if (self.index is None) == (self.track_id is None or self.track_id == ""):
            raise UsageError("apiframe stems: pass exactly one of index (1 or 2) and track_id")
        if self.index is not None and (isinstance(self.index, bool) or self.index not in (1, 2)):
            raise UsageError(f"apiframe stems: index must be 1 or 2, not {self.index!r}")
        if self.webhook_url is not None and not str(self.webhook_url).startswith("https://"):
            raise UsageError(f"apiframe webhook_url must be an https URL, not {self.webhook_url!r}")
        events = tuple(self.webhook_events or ())
        unknown = [e for e in events if e not in WEBHOOK_EVENTS]
        if unknown:
            raise UsageError(f"apiframe webhook events must be among {', '.join(WEBHOOK_EVENTS)}; "
                             f"got {', '.join(map(str, unknown))}")
        if events and self.webhook_url is None:
            raise UsageError("apiframe webhook events need a webhook_url")
        object.__setattr__(self, "webhook_events", events)

    expected_stems = TWO_STEMS  # the documented split: vocals and instrumental

    @property
    def cache_key(self) -> str:
        which = f"i{self.index}" if self.index is not None else f"t-{id_component(self.track_id)}"
        return f"apiframe-{id_component(self.parent_job_id)}-{which}"

    def body(self) -> dict:
        body: dict[str, Any] = {"parentJobId": self.parent_job_id, "action": "stems"}
        if self.index is not None:
            body["index"] = self.index
        else:
            body["trackId"] = self.track_id
        if self.webhook_url:
            body["webhookUrl"] = self.webhook_url
        if self.webhook_events:
            body["webhookEvents"] = list(self.webhook_events)
        return body

    def describe(self) -> dict:
        """The request as recorded in the manifest."""
        return {"provider": PROVIDER, "action": "stems", "parent_job_id": self.parent_job_id,
                "index": self.index, "track_id": self.track_id}


class Apiframe(Provider):
    """Talks to Apiframe v2: the Suno ``stems`` action (vocals and instrumental of one track)."""

    name = PROVIDER
    title = "Apiframe Suno 'stems' action (vocals, instrumental)"
    request_type = ApiframeRequest
    urls = {"apiframe_url": "https://api.apiframe.ai"}
    key_setting = "apiframe_api_key"
    hints = HINTS
    docs_url = "https://apiframe.ai/docs"
    examples = ("stemlab fetch apiframe a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d --index 1",
                "stemlab fetch apiframe a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d --track-id TRACK_ID --json")

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("parent_job_id", metavar="PARENT_JOB_ID", help="the Apiframe Suno job to split")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--index", type=int, choices=(1, 2), help="which of the parent's tracks (1 or 2)")
        which.add_argument("--track-id", help="the id of the parent's track to split")
        parser.add_argument("--webhook-url", help="https URL Apiframe will POST job events to")
        parser.add_argument("--webhook-event", action="append", choices=WEBHOOK_EVENTS, dest="webhook_events",
                            help="an event to send to the webhook (repeatable)")

    @classmethod
    def arguments(cls, args) -> dict:
        return {"parent_job_id": args.parent_job_id, "index": args.index, "track_id": args.track_id,
                "webhook_url": args.webhook_url, "webhook_events": tuple(args.webhook_events or ())}

    def _auth(self, key: str) -> dict:
        return {"X-API-Key": key}

    def _read(self, response: httpx.Response, *, job_id: str | None = None) -> dict:
        if response.status_code >= 400:
            try:
                words = words_of(response.json(), "error", "message", "msg")
            except (ValueError, RecursionError):
                words = ""
            raise self._error(response.status_code, words, response, job_id)
        return json_of(response, provider=PROVIDER)

    def submit(self, request: ApiframeRequest) -> str:
        """Start the split and return Apiframe's job id (retried only on a 429/5xx answer)."""
        job_id = self._call("POST", "/v2/music/suno/action", json=request.body(), what="the Apiframe submit",
                            sent_is_safe=False).get("jobId")
        if not isinstance(job_id, str) or not job_id:
            raise SubmitUncertainError(f"Apiframe accepted the stems action but its answer holds no jobId "
                                       f"({type(job_id).__name__})", provider=PROVIDER)
        return job_id

    def job(self, job_id: str) -> dict:
        """``GET /v2/jobs/{id}``, retried with backoff (honouring ``Retry-After``)."""
        return self._call("GET", f"/v2/jobs/{quote(str(job_id), safe='')}", job_id=job_id, what="the Apiframe poll",
                          sent_is_safe=True)

    def poll(self, job_id: str) -> JobStatus:
        body = self.job(job_id)
        status = str(body.get("status") or "").upper()
        progress = body.get("progress")
        progress = number_or_none(progress, high=100.0)
        if status == "FAILED":
            return JobStatus("failed", error=words_of(body, "error", "message") or "no reason given", raw=body)
        if status != "COMPLETED":
            return JobStatus("running", progress=progress, raw=body)
        stems: list[StemRef] = []
        for i, track in enumerate(_tracks(body, job_id)):  # names made unique, never raw provider text
            stem = self._stem_of(track, i)
            stems.append(StemRef(safe_name(stem.name or stem.label, taken=[s.name for s in stems]), stem.label,
                                 stem.url, stem.duration))
        return JobStatus("done", progress=100.0, stems=tuple(stems), raw=body)

    @staticmethod
    def _stem_of(track: Mapping, i: int) -> StemRef:
        label = next((v for v in (track.get("id"), track.get("title")) if isinstance(v, str) and v.strip()),
                     f"track {i + 1}")
        name = canonical_name(label) or canonical_name(track.get("title"))
        return StemRef(name=name, label=label, url=_audio_url(track, f"Apiframe track {label!r}"),
                       duration=number_or_none(track.get("duration")))

    def track(self, request: ApiframeRequest) -> Mapping:
        """The parent job's track that is split: ``tracks[index-1]`` or the track with ``trackId``."""
        tracks = _tracks(self.job(request.parent_job_id), request.parent_job_id)
        if request.index is not None:
            if request.index > len(tracks):
                raise UsageError(f"parent job {request.parent_job_id} has {len(tracks)} track(s); "
                                 f"index {request.index} does not exist")
            return tracks[request.index - 1]
        track = next((t for t in tracks if str(t.get("id")) == request.track_id), None)
        if track is None:
            raise UsageError(f"parent job {request.parent_job_id} has no track {request.track_id!r}")
        return track

    def source(self, request: ApiframeRequest) -> SourceRef:
        """The track that was split (see :meth:`track`), with its id: a Suno clip id."""
        track = self.track(request)
        track_id = track.get("id")
        return SourceRef(url=_audio_url(track, f"Apiframe job {request.parent_job_id}'s track"),
                         duration=number_or_none(track.get("duration")),
                         track_id=track_id if isinstance(track_id, str) and track_id.strip() else None)


def _audio_url(track: Mapping, what: str) -> str:
    url = track.get("audioUrl") or track.get("audio_url")
    if not isinstance(url, str) or not url:
        raise ProtocolError(f"{what} has no audioUrl", provider=PROVIDER)
    return url


def _tracks(body: Mapping, job_id: str) -> list[Mapping]:
    """``result.tracks`` (current docs) or ``result`` as a list; anything else is a ProtocolError."""
    result = body.get("result")
    tracks = result.get("tracks") if isinstance(result, Mapping) else result
    if not isinstance(tracks, list) or not tracks or not all(isinstance(t, Mapping) for t in tracks):
        shape = type(result).__name__
        raise ProtocolError(f"Apiframe job {job_id} is complete but its result ({shape}) holds no tracks",
                            provider=PROVIDER, job_id=job_id)
    return tracks


def verify_webhook_signature(body: bytes, signature: str, api_key: str | Secret) -> bool:
    """True if ``signature`` (the ``X-Webhook-Signature`` header) signs the raw ``body``.

    Apiframe signs the raw JSON body with HMAC-SHA256, keyed with the SHA-256 of the API key.
    The docs do not say whether the key hash is used as raw bytes or as hex text, nor whether the
    signature is hex or base64, so every combination is accepted; comparison is constant-time.

    >>> import hashlib, hmac
    >>> key, body = "afk_test", b'{"event":"completed"}'
    >>> sig = hmac.new(hashlib.sha256(key.encode()).digest(), body, hashlib.sha256).hexdigest()
    >>> verify_webhook_signature(body, sig, key), verify_webhook_signature(body + b" ", sig, key)
    (True, False)
    """
    key = api_key.reveal() if isinstance(api_key, Secret) else str(api_key)
    signature = (signature or "").strip()
    if signature.lower().startswith("sha256="):
        signature = signature[7:]
    key_hash = hashlib.sha256(key.encode("utf-8"))
    ok = False
    for secret in (key_hash.digest(), key_hash.hexdigest().encode("ascii")):
        mac = hmac.new(secret, body, hashlib.sha256).digest()
        for expected, given in ((mac.hex(), signature.lower()), (base64.b64encode(mac).decode("ascii"), signature)):
            ok |= hmac.compare_digest(expected.encode("ascii"), given.encode("ascii", "replace"))
    return ok
