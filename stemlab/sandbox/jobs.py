"""Both providers' stem APIs without the HTTP: request checks, job state machines, JSON views.

:class:`CqtaiApi` and :class:`ApiframeApi` take what a request carries (the auth header, the
raw body, the query or path argument) and return a :class:`Reply` (HTTP status, JSON payload,
extra headers); ``server.py`` puts them on the wire. Shared state (library, options, jobs,
job outcomes and the ledger) lives in one :class:`Book` behind one lock.

Jobs advance only when polled. With ``polls_to_complete = n`` the first ``n`` polls show the
job running (Apiframe: ``QUEUED`` on the first, ``PROCESSING`` with rising progress after) and
poll ``n + 1`` shows it finished, as its outcome says (``"ok"``, ``"fail"`` or ``"stuck"``).

>>> [progress_at(poll, 4) for poll in range(1, 5)]
[0, 25, 50, 75]
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from ..taxonomy import TWELVE_STEMS
from .library import Song

__all__ = ["Reply", "Options", "KeyRing", "Book", "CqtaiApi", "ApiframeApi", "webhook_signature",
           "progress_at", "stem_labels", "OUTCOMES"]

OUTCOMES = ("ok", "fail", "stuck")
_STEM_NAMESPACE = uuid.UUID("5d0f3f4e-8a57-4f5b-9d7e-6c1f7e1b2a90")


@dataclass
class Reply:
    """What an API call answers: HTTP status, JSON payload and extra headers."""

    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- settings and keys

_OPTION_CHECKS = {
    "polls_to_complete": (lambda v: isinstance(v, int) and v >= 0, "an int >= 0"),
    "throttle_bytes_per_s": (lambda v: v is None or v > 0, "None or > 0"),
    "cqtai_error_style": (lambda v: v in ("body", "http"), "'body' or 'http'"),
    "cqtai_success_status": (lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "cqtai_label_style": (lambda v: v in ("metadata", "title"), "'metadata' or 'title'"),
    "task_limit": (lambda v: v is None or (isinstance(v, int) and v >= 1), "None or an int >= 1"),
}


@dataclass
class Options:
    """Server behaviour that tests may change while the sandbox runs (validated on assignment).

    >>> Options(cqtai_error_style="loud")
    Traceback (most recent call last):
    ...
    ValueError: cqtai_error_style must be 'body' or 'http', not 'loud'
    """

    polls_to_complete: int = 2
    throttle_bytes_per_s: float | None = None
    cqtai_error_style: str = "body"
    cqtai_success_status: str = "succeeded"
    cqtai_label_style: str = "metadata"
    task_limit: int | None = None  # running jobs per provider; a submit beyond it is answered 429

    def __setattr__(self, name: str, value: Any) -> None:
        check, wanted = _OPTION_CHECKS[name]
        if not check(value):
            raise ValueError(f"{name} must be {wanted}, not {value!r}")
        super().__setattr__(name, value)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class KeyRing:
    """The API keys a provider accepts, held only as SHA-256 digests.

    ``key=None`` accepts any non-empty key. ``check`` answers ``"ok"``, ``"missing"``,
    ``"invalid"`` or ``"inactive"``.

    >>> ring = KeyRing("afk_good", inactive=["afk_old"])
    >>> [ring.check(k) for k in (None, "afk_good", "afk_bad", "afk_old")]
    ['missing', 'ok', 'invalid', 'inactive']
    """

    def __init__(self, key: str | None, inactive: Iterable[str] = ()):
        self._key = _digest(key) if key else None
        self._inactive = {_digest(k) for k in inactive}

    def check(self, presented: str | None) -> str:
        if not presented:
            return "missing"
        digest = _digest(presented)
        if digest in self._inactive:
            return "inactive"
        if self._key is not None and not hmac.compare_digest(digest, self._key):
            return "invalid"
        return "ok"


# ----------------------------------------------------------------------------- shared state


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and ``Z``, as both providers write it."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


def _local(moment: datetime | None) -> str | None:
    """``"2026-01-30 07:16:05"`` in the server's local time, as CQTAI writes times."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else None


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        return None


class Book:
    """State shared by both APIs and the server: library, options, jobs, outcomes, ledger."""

    def __init__(self, library: dict[str, Song], options: Options, base_url: str = ""):
        self.lock = threading.RLock()
        self.options = options
        self.base_url = base_url
        self.outcomes: dict[str, tuple[str, str | None]] = {}
        self.submits: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, int | None]] = []
        self.running: dict[str, set[str]] = {"cqtai": set(), "apiframe": set()}
        self.peak_running: dict[str, int] = {"cqtai": 0, "apiframe": 0}
        self.set_library(library)

    def set_library(self, library: dict[str, Song]) -> None:
        with self.lock:
            self.library = library
            # an Apiframe parent job's track ids are Suno clip ids: CQTAI splits the song they play
            tracks = {t.id: library[t.song_id] for s in library.values() for t in s.tracks if t.song_id in library}
            self.by_clip = {**tracks, **{s.clip_id: s for s in library.values()}}
            self.by_parent = {s.parent_job_id: s for s in library.values()}

    def at_task_limit(self, provider: str) -> bool:
        """Whether ``provider`` already runs :attr:`Options.task_limit` jobs (a new submit gets 429)."""
        limit = self.options.task_limit
        return limit is not None and len(self.running[provider]) >= limit

    def started(self, provider: str, job_id: str) -> None:
        """Count a new running job (and the most that ever ran at once)."""
        with self.lock:
            self.running[provider].add(job_id)
            self.peak_running[provider] = max(self.peak_running[provider], len(self.running[provider]))

    def finished(self, provider: str, job_id: str) -> None:
        with self.lock:
            self.running[provider].discard(job_id)

    def record_submit(self, provider: str, raw: bytes, job_id: str | None, fault: str | None = None) -> None:
        """Add one submit to the ledger (``accepted`` iff a job was created)."""
        with self.lock:
            self.submits.append({"provider": provider, "body": _parse_json(raw), "job_id": job_id,
                                 "accepted": job_id is not None, "fault": fault})

    def outcome(self, *keys: str) -> tuple[str, str | None]:
        """The scripted outcome for the first of ``keys`` that has one, else ``"*"``, else ok."""
        with self.lock:
            for key in (*keys, "*"):
                if key in self.outcomes:
                    return self.outcomes[key]
        return ("ok", None)

    def phase(self, polls: int, *keys: str) -> tuple[str, str | None]:
        """``("running", None)`` until poll ``polls_to_complete + 1``, then the outcome."""
        if polls <= self.options.polls_to_complete:
            return ("running", None)
        kind, message = self.outcome(*keys)
        return ("running", None) if kind == "stuck" else (kind, message)


def progress_at(poll: int, polls_to_complete: int) -> int:
    """Progress (0-99) a running job reports at its ``poll``-th poll; rises while stuck too."""
    return min(99, round(100 * (poll - 1) / max(polls_to_complete, poll)))


# ----------------------------------------------------------------------------- labels

TWELVE_LABELS = {"vocals": "Vocals", "backing_vocals": "Backing Vocals", "drums": "Drums",
                 "bass": "Bass", "guitar": "Guitar", "keyboard": "Keyboard",
                 "percussion": "Percussion", "strings": "Strings", "synth": "Synth", "fx": "FX",
                 "brass": "Brass", "woodwinds": "Woodwinds"}
TWO_LABELS = {"vocals": "Vocals", "instrumental": "Instrumental"}
# 91 (Vocals) is documented; the other ids are invented [INF]
STEM_TYPE_IDS = {**{n: 91 + i for i, n in enumerate(TWELVE_STEMS)}, "instrumental": 103}


def stem_labels(song: Song, name: str, split: str) -> tuple[str, str]:
    """``(title label, stem_type_group_name)`` of a stem file, CQTAI style.

    Defaults write spaces in titles and underscores in group names (``"Backing Vocals"`` /
    ``"Backing_Vocals"``, as suno-core reports); ``song.json`` ``labels`` override both.
    """
    if name in song.labels:
        return song.labels[name], song.labels[name]
    table = TWELVE_LABELS if split == "stems" else TWO_LABELS
    label = table.get(name) or name.replace("_", " ").title()
    return label, label.replace(" ", "_")


# ----------------------------------------------------------------------------- CQTAI

CQTAI_TASKS = {"gen_stem_all": ("stems", "twelve"), "gen_stem_two": ("two", "two")}
CQTAI_MESSAGES = {401: "Unauthorized", 402: "insufficient credits", 429: "Task limit reached",
                  451: "content moderation", 500: "failed / timeout"}
_BADGES = [{"icon_key": "stem", "display_name": "Stem",
            "dark": {"text_color": "A3A3A3", "border_color": "00000000", "background_color": "FFFFFF0C"},
            "light": {"text_color": "7D7C83", "border_color": "00000000", "background_color": "1C1C1F0A"}}]


@dataclass
class CqtaiJob:
    id: str
    task: str
    song: Song
    param: Any
    created: datetime
    polls: int = 0
    state: str = "running"  # running | done | failed
    error_msg: str = ""
    clips: list[dict] | None = None
    files: dict[str, Path] = field(default_factory=dict)  # stem clip id -> file
    completed: datetime | None = None


class CqtaiApi:
    """CQTAI's Suno stem tasks: ``POST /api/cqt/generator/suno``, ``GET /api/cqt/info/suno``."""

    def __init__(self, book: Book, keys: KeyRing):
        self.book = book
        self.keys = keys
        self.jobs: dict[str, CqtaiJob] = {}
        self.stem_files: dict[str, Path] = {}

    @property
    def cdn_url(self) -> str:
        return f"{self.book.base_url}/suno-cdn"

    def error(self, code: int, message: str | None = None, *, style: str | None = None,
              retry_after: float | None = None) -> Reply:
        """CQTAI's error envelope; HTTP 200 with the code in the body, or the code as HTTP status."""
        style = style or self.book.options.cqtai_error_style
        msg = message or CQTAI_MESSAGES.get(code) or ("bad request" if code < 500 else "server error")
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        return Reply(code if style == "http" else 200, {"code": code, "msg": msg, "data": None}, headers)

    def _auth(self, authorization: str | None) -> Reply | None:
        scheme, _, token = (authorization or "").strip().partition(" ")
        ok = scheme.lower() == "bearer" and self.keys.check(token.strip()) == "ok"
        return None if ok else self.error(401)

    def submit(self, authorization: str | None, raw: bytes, fault: str | None = None) -> Reply:
        """Create a ``gen_stem_all`` / ``gen_stem_two`` task for a library clip."""
        reply, job_id = self._submit(authorization, raw)
        self.book.record_submit("cqtai", raw, job_id, fault)
        return reply

    def _submit(self, authorization: str | None, raw: bytes) -> tuple[Reply, str | None]:
        denied = self._auth(authorization)
        if denied:
            return denied, None
        body = _parse_json(raw)
        if not isinstance(body, dict):
            return self.error(400, "invalid JSON body"), None
        if body.get("task") not in CQTAI_TASKS:
            return self.error(400, f"unsupported task: {body.get('task')!r}"), None
        clip_id = body.get("clipId")
        if not isinstance(clip_id, str) or not clip_id:
            return self.error(400, "clipId is required"), None
        with self.book.lock:
            song = self.book.by_clip.get(clip_id)
            if song is None:
                return self.error(400, "clip not found"), None
            if self.book.at_task_limit("cqtai"):
                return self.error(429), None
            job = CqtaiJob(uuid.uuid4().hex, body["task"], song, body, _now())
            self.jobs[job.id] = job
            self.book.started("cqtai", job.id)
        return Reply(200, {"code": 200, "msg": "success", "data": job.id}), job.id

    def info(self, authorization: str | None, task_id: str | None) -> Reply:
        """Poll a task (each call counts as one poll) and answer its current state."""
        denied = self._auth(authorization)
        if denied:
            return denied
        if not task_id:
            return self.error(400, "id is required")
        with self.book.lock:
            job = self.jobs.get(task_id)
            if job is None:
                return self.error(404, "task not found")
            self._advance(job)
            return Reply(200, {"code": 200, "msg": "success", "data": self._view(job)})

    def _advance(self, job: CqtaiJob) -> None:
        if job.state != "running":
            return
        job.polls += 1
        phase, message = self.book.phase(job.polls, job.id, job.song.clip_id, job.song.song_id)
        split, stem_task = CQTAI_TASKS[job.task]
        if phase == "ok" and not job.song.split(split):
            phase, message = "fail", f"no {stem_task} stems available for clip {job.song.clip_id}"
        if phase == "fail":
            job.state, job.error_msg, job.completed = "failed", message or "failed / timeout", _now()
        elif phase == "ok":
            job.clips = self._clips(job, split, stem_task)
            job.state, job.completed = "done", _now()
            self.stem_files.update(job.files)
        if job.state != "running":
            self.book.finished("cqtai", job.id)

    def _clips(self, job: CqtaiJob, split: str, stem_task: str) -> list[dict]:
        """The stem clips of a finished job, in an order shuffled by the job id."""
        names = list(job.song.split(split))
        random.Random(job.id).shuffle(names)
        clips = []
        for index, name in enumerate(names):
            clip_id = str(uuid.uuid5(_STEM_NAMESPACE, f"{job.id}/{name}"))
            title_label, group = stem_labels(job.song, name, split)
            job.files[clip_id] = job.song.split(split)[name]
            duration = job.song.duration(f"{split}/{name}")
            clips.append({
                "id": clip_id, "title": f" ({title_label})", "status": "complete",
                "metadata": {"task": "gen_stem", "type": "gen",
                             "duration": None if duration is None else round(duration, 2),
                             "is_remix": True, "stem_task": stem_task,
                             "stem_from_id": job.song.clip_id, "stem_type_id": STEM_TYPE_IDS.get(name, 200),
                             "edited_clip_id": job.song.clip_id, "secondary_badges": _BADGES,
                             "stem_type_group_name": group},
                "audio_url": f"{self.cdn_url}/{clip_id}.mp3",
                "image_url": f"{self.book.base_url}/suno-img/image_{clip_id}.jpeg",
                "model_name": "chirp-ahi", "batch_index": index, "created_at": _iso(_now()),
                "major_model_version": "v4.5"})
        return clips

    def _view(self, job: CqtaiJob) -> dict:
        words = {"running": "running", "failed": "failed", "done": self.book.options.cqtai_success_status}
        status = words[job.state]
        result = None
        if job.clips is not None:
            result = json.loads(json.dumps(job.clips))  # a copy the label style may trim
            if self.book.options.cqtai_label_style == "title":
                for clip in result:
                    clip["metadata"].pop("stem_type_group_name")
        return {"id": job.id, "taskType": job.task, "status": status, "errorMsg": job.error_msg,
                "param": job.param, "result": result, "createTime": _local(job.created),
                "completeTime": _local(job.completed)}

    def file(self, name: str) -> Path | None:
        """The file behind ``<suno_cdn_url>/<name>``: a library clip or a finished stem clip."""
        clip_id, ext = name.rsplit(".", 1) if "." in name else (name, "")
        if ext != "mp3":
            return None
        with self.book.lock:
            song = self.book.by_clip.get(clip_id)
            return song.source if song else self.stem_files.get(clip_id)


# ----------------------------------------------------------------------------- Apiframe

APIFRAME_MESSAGES = {400: "Bad request", 401: "Invalid API key", 402: "Insufficient credits",
                     403: "API key is inactive", 404: "Not found", 409: "Conflict",
                     429: "Too many requests", 500: "Internal server error", 502: "Bad gateway",
                     503: "Service unavailable", 504: "Gateway timeout"}
WEBHOOK_EVENTS = ("progress", "completed", "failed")
STEMS_CREDITS = 11


def webhook_signature(api_key: str, body: bytes) -> str:
    """``X-Webhook-Signature`` of a webhook body: hex HMAC-SHA256 keyed with SHA-256(api_key).

    Apiframe documents HMAC-SHA256 of the raw body with the SHA-256 of the API key as secret;
    the encoding of the signature (and whether the secret is the raw digest) is not documented
    [NF]: the sandbox's guess is the raw 32-byte digest as key and a lower-case hex signature.

    >>> webhook_signature("afk_test", b"{}")[:16]
    '052b922d83a20d65'
    """
    return _sign(_digest(api_key), body)


def _sign(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass
class ApiframeJob:
    id: str
    parent_job_id: str
    song: Song  # the song being split
    secret: bytes  # SHA-256 of the submitting key (the webhook secret); never the key
    webhook_url: str | None
    webhook_events: tuple[str, ...]
    created: datetime
    polls: int = 0
    status: str = "QUEUED"
    progress: int = 0
    error: str | None = None
    completed: datetime | None = None
    webhook_status: str | None = None
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


class ApiframeApi:
    """Apiframe v2's Suno ``stems`` action and ``GET /v2/jobs/:id`` (parents and stems jobs)."""

    def __init__(self, book: Book, keys: KeyRing):
        self.book = book
        self.keys = keys
        self.jobs: dict[str, ApiframeJob] = {}

    @property
    def cdn_url(self) -> str:
        return f"{self.book.base_url}/apiframe-cdn/audio"

    def error(self, status: int, message: str | None = None, *, retry_after: float | None = None) -> Reply:
        """Apiframe's error answer: the status and ``{"error": message}``."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        return Reply(status, {"error": message or APIFRAME_MESSAGES.get(status, "Error")}, headers)

    def _auth(self, api_key: str | None) -> Reply | None:
        verdict = self.keys.check(api_key)
        return {"ok": None, "missing": self.error(401, "API key is required"),
                "invalid": self.error(401, "Invalid API key"),
                "inactive": self.error(403, "API key is inactive")}[verdict]

    def submit(self, api_key: str | None, raw: bytes, fault: str | None = None) -> Reply:
        """``POST /v2/music/suno/action`` with ``action: "stems"``: 202 and a QUEUED job."""
        reply, job_id = self._submit(api_key, raw)
        self.book.record_submit("apiframe", raw, job_id, fault)
        return reply

    def _submit(self, api_key: str | None, raw: bytes) -> tuple[Reply, str | None]:
        denied = self._auth(api_key)
        if denied:
            return denied, None
        body = _parse_json(raw)
        problem = self._invalid(body)
        if problem:
            return self.error(400, problem), None
        with self.book.lock:
            parent_id = body["parentJobId"]
            if parent_id in self.jobs:
                return self.error(409, "A stems job cannot be the parent of another action; "
                                       "run stems on the original job"), None
            parent = self.book.by_parent.get(parent_id)
            if parent is None:
                return self.error(404, f"Parent job {parent_id} not found"), None
            track, problem = self._pick_track(parent, body.get("index"), body.get("trackId"))
            if problem:
                return self.error(400, problem), None
            if self.book.at_task_limit("apiframe"):
                return self.error(429), None
            url = body.get("webhookUrl")
            events = tuple(body.get("webhookEvents") or ("completed", "failed")) if url else ()
            job = ApiframeJob(str(uuid.uuid4()), parent_id, self.book.library[track.song_id],
                              _digest(api_key or ""), url, events, _now())
            self.jobs[job.id] = job
            self.book.started("apiframe", job.id)
        return Reply(202, {"jobId": job.id, "status": "QUEUED"}), job.id

    @staticmethod
    def _invalid(body: Any) -> str | None:
        """Why a stems request body is invalid (the 400 message), or ``None``."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        if not isinstance(body.get("parentJobId"), str) or not body["parentJobId"]:
            return "parentJobId is required"
        if body.get("action") != "stems":
            return 'action must be "stems" (the only action the sandbox supports)'
        index, track_id = body.get("index"), body.get("trackId")
        if (index is None) == (track_id is None):
            return "Provide exactly one of index and trackId"
        if index is not None and (type(index) is not int or index not in (1, 2)):
            return "index must be 1 or 2"
        if track_id is not None and (not isinstance(track_id, str) or not track_id):
            return "trackId must be a non-empty string"
        url = body.get("webhookUrl")
        if url is not None and (not isinstance(url, str) or not url.lower().startswith("https://")):
            return "webhookUrl must be an HTTPS URL"
        events = body.get("webhookEvents")
        if events is not None and (not isinstance(events, list) or not set(events) <= set(WEBHOOK_EVENTS)):
            return 'webhookEvents must be a list of "progress", "completed", "failed"'
        return None

    @staticmethod
    def _pick_track(parent: Song, index: int | None, track_id: str | None):
        """``(track, None)`` for the chosen track of a parent job, or ``(None, 400 message)``."""
        if index is not None:
            if index > len(parent.tracks):
                return None, (f"index {index} is out of range: the parent job has "
                              f"{len(parent.tracks)} track(s)")
            return parent.tracks[index - 1], None
        for track in parent.tracks:
            if track.id == track_id:
                return track, None
        return None, f"trackId {track_id} is not a track of the parent job"

    def is_parent(self, job_id: str) -> bool:
        """Whether ``job_id`` is a library song's (completed) parent job."""
        return job_id in self.book.by_parent

    def job(self, api_key: str | None, job_id: str) -> Reply:
        """``GET /v2/jobs/:id``: a parent job, or a stems job (each call counts as one poll)."""
        denied = self._auth(api_key)
        if denied:
            return denied
        with self.book.lock:
            parent = self.book.by_parent.get(job_id)
            if parent is not None:
                return Reply(200, self._parent_view(parent))
            job = self.jobs.get(job_id)
            if job is None:
                return self.error(404, f"Job {job_id} not found")
            self._advance(job)
            return Reply(200, self._view(job))

    def _advance(self, job: ApiframeJob) -> None:
        if job.status in ("COMPLETED", "FAILED"):
            return
        job.polls += 1
        phase, message = self.book.phase(job.polls, job.id, job.parent_job_id, job.song.song_id)
        if phase == "ok" and not {"vocals", "instrumental"} <= set(job.song.two):
            phase, message = "fail", "Provider returned an error: stems are not available for this track"
        if phase != "running":
            self.book.finished("apiframe", job.id)
        if phase == "fail":
            job.status, job.progress, job.completed = "FAILED", 0, _now()
            job.error = message or "Provider returned an error: content policy violation"
            self._deliver(job, "failed", {"event": "failed", "jobId": job.id, "status": "FAILED",
                                          "error": job.error, "model": "suno"})
        elif phase == "ok":
            job.status, job.progress, job.completed = "COMPLETED", 100, _now()
            self._deliver(job, "completed", {"event": "completed", "jobId": job.id, "status": "COMPLETED",
                                             "progress": 100, "result": self._result(job), "model": "suno",
                                             "creditCost": STEMS_CREDITS, "completedAt": _iso(job.completed)})
        else:
            job.status = "QUEUED" if job.polls == 1 else "PROCESSING"
            job.progress = progress_at(job.polls, self.book.options.polls_to_complete)
            if job.status == "PROCESSING":
                self._deliver(job, "progress", {"event": "progress", "jobId": job.id, "status": "PROCESSING",
                                                "progress": job.progress, "model": "suno"})

    def _deliver(self, job: ApiframeJob, event: str, payload: dict) -> None:
        """Record the webhook POST Apiframe would send (the sandbox cannot reach https URLs)."""
        if not job.webhook_url or event not in job.webhook_events:
            return
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "X-Webhook-Event": event,
                   "X-Webhook-Signature": _sign(job.secret, body)}
        job.deliveries.append((headers, body))
        job.webhook_status = "sent"

    def _track(self, job_id: str, index: int, song: Song, key: str, track_id: str, title: str) -> dict:
        duration = song.duration(key)
        return {"id": track_id, "audioUrl": f"{self.cdn_url}/{job_id}-{index}.mp3", "imageUrl": None,
                "title": title, "tags": song.tags if key == "source" else None,
                "duration": None if duration is None else round(duration, 2)}

    def _result(self, job: ApiframeJob) -> dict:
        # song.json "labels" may rename the track ids ("apiframe/instrumental": "vocals" makes two "vocals")
        return {"tracks": [self._track(job.id, i, job.song, f"two/{name}", job.song.labels.get(f"apiframe/{name}", name),
                                       TWO_LABELS[name]) for i, name in enumerate(("vocals", "instrumental"))]}

    def _view(self, job: ApiframeJob) -> dict:
        done = job.status == "COMPLETED"
        return {"id": job.id, "status": job.status, "model": "suno", "progress": job.progress,
                "result": self._result(job) if done else None, "error": job.error,
                "creditCost": 0 if job.status == "FAILED" else STEMS_CREDITS,
                "webhookStatus": job.webhook_status, "createdAt": _iso(job.created),
                "completedAt": _iso(job.completed)}

    def _parent_view(self, song: Song) -> dict:
        made = datetime.fromtimestamp(song.source.stat().st_mtime, timezone.utc)
        tracks = [self._track(song.parent_job_id, i, self.book.library[t.song_id], "source", t.id,
                              self.book.library[t.song_id].title) for i, t in enumerate(song.tracks)]
        return {"id": song.parent_job_id, "status": "COMPLETED", "model": "suno", "progress": 100,
                "result": {"tracks": tracks}, "error": None, "creditCost": STEMS_CREDITS,
                "webhookStatus": None, "createdAt": _iso(made), "completedAt": _iso(made)}

    def file(self, name: str) -> Path | None:
        """The file behind ``<apiframe cdn>/audio/<jobId>-<i>.mp3`` (parent or finished stems job)."""
        stem, _, ext = name.rpartition(".")
        job_id, _, index = stem.rpartition("-")
        if ext != "mp3" or not index.isdigit():
            return None
        index = int(index)
        with self.book.lock:
            parent = self.book.by_parent.get(job_id)
            if parent is not None:
                if index >= len(parent.tracks):
                    return None
                return self.book.library[parent.tracks[index].song_id].source
            job = self.jobs.get(job_id)
            if job is None or job.status != "COMPLETED" or index > 1:
                return None
            return job.song.two[("vocals", "instrumental")[index]]

    def webhooks(self, job_id: str) -> list[tuple[dict[str, str], bytes]]:
        """The webhook deliveries recorded for a job, oldest first."""
        with self.book.lock:
            job = self.jobs.get(job_id)
            return [(dict(h), b) for h, b in job.deliveries] if job else []
