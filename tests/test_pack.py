"""Class packs: a teacher pays for stems once, a class works offline.

Real fetches through the sandbox, real zips, real caches. The hostile packs are built with
``zipfile`` directly, from a valid pack: every refusal is one line, and leaves no new set and no
staging folder behind."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

import stemlab
from conftest import APIFRAME_KEY, CLIP_ID, CQTAI_KEY, SONG
from stemlab import pack
from stemlab.cache import Cache
from stemlab.config import Settings
from stemlab.errors import CacheError, PackError, UsageError
from stemlab.sandbox import Sandbox
from test_cli import assert_one_line_error, one_json

NOTEBOOK = b'{"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Stems"]}], "nbformat": 4}\n'


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def served(folder: Path) -> dict[str, str]:
    """The sha256 of every file of a set as served (not job.json, not derived data)."""
    return {p.relative_to(folder).as_posix(): sha(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "job.json" and "derived" not in p.relative_to(folder).parts}


def nothing_installed(cache_dir: Path, before: set[str] = frozenset()) -> None:
    sets = cache_dir / "sets"
    assert (set(p.name for p in sets.iterdir()) if sets.exists() else set()) == set(before)
    assert not (cache_dir / "staging").exists(), list((cache_dir / "staging").rglob("*"))


def refused(path: Path, cache_dir: Path, *words: str) -> str:
    with pytest.raises(PackError) as caught:
        pack.install(path, cache_dir=cache_dir)
    message = str(caught.value)
    assert "\n" not in message and "nothing was installed" in message, message
    for word in words:
        assert word in message, message
    nothing_installed(cache_dir)
    return message


# -- a teacher's cache, made once for the module (its own sandbox; the `sandbox` fixture is per test)
@dataclass
class Teacher:
    cache: Path
    settings: Settings
    cqtai: str           # set keys
    apiframe: str
    parent_job_id: str
    notebook: Path
    full: Path           # both sets and the notebook
    small: Path          # the Apiframe set and the notebook: the base of every hostile pack
    hashes: dict         # key -> served()


@pytest.fixture(scope="module")
def teacher(library, tmp_path_factory) -> Teacher:
    root = tmp_path_factory.mktemp("teacher")
    with Sandbox(library, cqtai_key=CQTAI_KEY, apiframe_key=APIFRAME_KEY, polls_to_complete=0) as sb:
        settings = Settings.resolve(environ={}, dotenv=None, cqtai_url=sb.cqtai_url, apiframe_url=sb.apiframe_url,
                                    suno_cdn_url=sb.suno_cdn_url, cqtai_api_key=CQTAI_KEY,
                                    apiframe_api_key=APIFRAME_KEY, cache_dir=root / "cache", poll_interval=0.01,
                                    retry_delay=0.01)
        parent = sb.song(SONG).parent_job_id
        cqtai = stemlab.fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False)
        apiframe = stemlab.fetch("apiframe", parent_job_id=parent, index=1, settings=settings, progress=False)
    cqtai["vocals"].audio  # derived data exists beside the set: it must stay out of every pack
    assert any((cqtai.folder / "derived").iterdir())
    notebook = root / "lesson.ipynb"
    notebook.write_bytes(NOTEBOOK)
    full = pack.export([cqtai, apiframe.key], root / "class.zip", notebooks=[notebook], settings=settings)
    small = pack.export([apiframe.key], root / "small.zip", notebooks=[notebook], settings=settings)
    return Teacher(root / "cache", settings, cqtai.key, apiframe.key, parent, notebook, full, small,
                   {s.key: served(s.folder) for s in (cqtai, apiframe)})


# -- the teacher and the class -------------------------------------------------------------------------
def test_a_teacher_pays_once_and_a_class_works_offline(sandbox, settings, tmp_path, monkeypatch):
    song = sandbox.song(SONG)
    cqtai = stemlab.fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False)
    apiframe = stemlab.fetch("apiframe", parent_job_id=song.parent_job_id, index=1, settings=settings, progress=False)
    notebook = tmp_path / "lesson.ipynb"
    notebook.write_bytes(NOTEBOOK)
    written = pack.export([cqtai, apiframe.job_id], tmp_path / "class.zip", notebooks=[notebook], settings=settings)
    assert written == tmp_path / "class.zip" and zipfile.is_zipfile(written)
    paid = len(sandbox.submits)
    ledger = list(sandbox.requests)
    sandbox.stop()

    # a student: a fresh cache, no key anywhere, the providers unreachable
    for name in ("CQTAI_API_KEY", "APIFRAME_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    student = tmp_path / "student"
    keys = pack.install(written, cache_dir=student, notebooks_to=tmp_path / "class")
    assert keys == [cqtai.key, apiframe.key]
    again = stemlab.fetch("cqtai", clip_id=CLIP_ID, cache_dir=student, progress=False)
    other = stemlab.fetch("apiframe", parent_job_id=song.parent_job_id, index=1, cache_dir=student, progress=False)
    assert again.folder == student / "sets" / cqtai.key and other.folder == student / "sets" / apiframe.key
    assert served(again.folder) == served(cqtai.folder) and served(other.folder) == served(apiframe.folder)
    assert sha(again["drums"].path) == sha(cqtai["drums"].path) and len(again) == 12 and other.names == apiframe.names
    assert (student / "sets" / cqtai.key / "manifest.json").read_bytes() == (cqtai.folder / "manifest.json").read_bytes()
    record = Cache(student).read_job(cqtai.key)
    assert record["state"] == "done" and record["job_id"] == cqtai.job_id
    assert sha(tmp_path / "class" / "lesson.ipynb") == sha(notebook)
    assert Cache(student).verify() == [] and not (student / "staging").exists()

    # a second import is harmless: every set already there, nothing rewritten
    stamps = {p: p.stat().st_mtime_ns for p in (student / "sets").rglob("*") if p.is_file()}
    done = pack._install(written, cache_dir=student)
    assert [row["status"] for row in done["sets"]] == ["already there", "already there"]
    assert {p: p.stat().st_mtime_ns for p in (student / "sets").rglob("*") if p.is_file()} == stamps
    with pytest.raises(UsageError, match="already there"):  # the notebooks too, unless force
        pack.install(written, cache_dir=student, notebooks_to=tmp_path / "class")
    pack.install(written, cache_dir=student, notebooks_to=tmp_path / "class", force=True)
    assert sandbox.requests == ledger and len(sandbox.submits) == paid


def run(*args, env=None):
    """``stemlab ARGS`` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "stemlab", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_the_same_through_the_command_line(sandbox_env, sandbox, settings, tmp_path):
    song = sandbox.song(SONG)
    cqtai = stemlab.fetch("cqtai", clip_id=CLIP_ID, settings=settings, progress=False)  # the CLI's cache too
    apiframe = stemlab.fetch("apiframe", parent_job_id=song.parent_job_id, index=1, settings=settings, progress=False)
    (tmp_path / "lesson.ipynb").write_bytes(NOTEBOOK)
    made = one_json(run("pack", "export", CLIP_ID, song.parent_job_id, "-o", "class.zip", "--notebook",
                        "lesson.ipynb", "--json"))
    assert [(s["key"], s["stems"]) for s in made["sets"]] == [(cqtai.key, 12), (apiframe.key, 2)]
    assert made["notebooks"] == [{"name": "lesson.ipynb", "bytes": len(NOTEBOOK)}]
    assert made["bytes"] == (tmp_path / "class.zip").stat().st_size
    listing = one_json(run("pack", "ls", "class.zip", "--json"))
    assert [s["key"] for s in listing["sets"]] == [cqtai.key, apiframe.key]
    assert listing["format_version"] == 1 and listing["stemlab_version"] == stemlab.__version__
    assert "cqtai" in run("pack", "ls", "class.zip").stdout
    sandbox.reset_ledger()

    # a student, with the sandbox still up (any request would show in its ledger) and no key
    student = {"STEMLAB_CACHE_DIR": str(tmp_path / "student"), "CQTAI_API_KEY": "", "APIFRAME_API_KEY": ""}
    installed = one_json(run("pack", "import", "class.zip", "--notebooks", "class", "--json", env=student))
    assert [s["status"] for s in installed["sets"]] == ["installed", "installed"]
    assert installed["cache_dir"] == str(tmp_path / "student")
    fetched = one_json(run("fetch", "cqtai", CLIP_ID, "--json", env=student))
    assert fetched["set_dir"] == str(tmp_path / "student" / "sets" / cqtai.key)
    assert run("fetch", "apiframe", song.parent_job_id, "--index", "1", "--quiet", env=student).returncode == 0
    text = run("pack", "import", "class.zip", env=student)
    assert text.returncode == 0 and "already there" in text.stdout
    assert sandbox.requests == [] and sandbox.submits == []
    assert (tmp_path / "class" / "lesson.ipynb").read_bytes() == NOTEBOOK

    (tmp_path / "not-a-pack.zip").write_text("hello")
    assert_one_line_error(run("pack", "import", "not-a-pack.zip", env=student), 3)
    assert_one_line_error(run("pack", "import", "missing.zip", env=student), 2)
    assert_one_line_error(run("pack", "export", "no-such-set", "-o", "x.zip"), 2)
    assert not (tmp_path / "x.zip").exists()


# -- export ------------------------------------------------------------------------------------------------
def entries_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def test_a_pack_holds_no_key_no_job_record_and_no_derived_data(teacher):
    raw = teacher.full.read_bytes()
    contents = entries_of(teacher.full)
    for blob in (raw, *contents.values()):
        assert CQTAI_KEY.encode() not in blob and APIFRAME_KEY.encode() not in blob
    assert not [name for name in contents if name.endswith("job.json") or "/derived/" in name]
    assert any((teacher.cache / "sets" / teacher.cqtai / "derived").iterdir())
    for key in (teacher.cqtai, teacher.apiframe):  # every file as served, byte for byte
        folder = teacher.cache / "sets" / key
        assert {name.removeprefix(f"sets/{key}/") for name in contents if name.startswith(f"sets/{key}/")} \
            == set(served(folder))
        assert all(contents[f"sets/{key}/{rel}"] == (folder / rel).read_bytes() for rel in served(folder))
    with zipfile.ZipFile(teacher.full) as zf:
        kinds = {i.filename: i.compress_type for i in zf.infolist()}
    assert {kinds[n] for n in kinds if n.endswith(".mp3")} == {zipfile.ZIP_STORED}
    assert {kinds[n] for n in kinds if n.endswith((".json", ".ipynb"))} == {zipfile.ZIP_DEFLATED}
    header = json.loads(contents["stemlab-pack.json"])
    assert header["format_version"] == 1 and header["stemlab_version"] == stemlab.__version__
    assert [(s["key"], s["provider"], s["stems"]) for s in header["sets"]] == [(teacher.cqtai, "cqtai", 12),
                                                                               (teacher.apiframe, "apiframe", 2)]
    assert header["notebooks"] == [{"name": "lesson.ipynb", "size": len(NOTEBOOK),
                                    "sha256": hashlib.sha256(NOTEBOOK).hexdigest()}]
    assert header["sets"][0]["request"]["clip_id"] == CLIP_ID and header["sets"][0]["job_id"]


@pytest.fixture
def own_copy(teacher, tmp_path) -> Path:
    """A copy of the teacher's cache, to damage."""
    return Path(shutil.copytree(teacher.cache, tmp_path / "cache"))


def export_refused(error, cache: Path, sets, tmp_path, *words, notebooks=()):
    with pytest.raises(error) as caught:
        pack.export(sets, tmp_path / "out" / "class.zip", notebooks=notebooks,
                    settings=Settings.resolve(environ={}, dotenv=None, cache_dir=cache, cqtai_api_key=CQTAI_KEY))
    message = str(caught.value)
    assert "\n" not in message and all(word in message for word in words), message
    assert list((tmp_path / "out").iterdir()) == []  # not the pack, not a temporary file


@pytest.fixture
def out(tmp_path):
    (tmp_path / "out").mkdir()


def test_export_refuses_a_damaged_set_and_writes_nothing(teacher, own_copy, tmp_path, out):
    (own_copy / "sets" / teacher.cqtai / "stems" / "bass.mp3").unlink()
    export_refused(CacheError, own_copy, [teacher.cqtai, teacher.apiframe], tmp_path, "damaged", "bass.mp3",
                   "no charge")


def test_export_refuses_a_file_changed_on_disk(teacher, own_copy, tmp_path, out):
    stem = own_copy / "sets" / teacher.apiframe / "stems" / "vocals.mp3"
    data = bytearray(stem.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the same size: intact by size, caught by the sha256 as it is written
    stem.write_bytes(bytes(data))
    export_refused(CacheError, own_copy, [teacher.apiframe], tmp_path, "changed on disk", "vocals.mp3")


def test_export_refuses_an_unfinished_set_an_unknown_one_and_a_notebook_with_a_key(teacher, own_copy, tmp_path,
                                                                                    out):
    running = own_copy / "sets" / "cqtai-2-running"
    running.mkdir()
    (running / "job.json").write_text(json.dumps({"provider": "cqtai", "key": "cqtai-2-running", "state": "submitted",
                                                  "job_id": "job-running", "request": {"clip_id": "running"}}))
    export_refused(UsageError, own_copy, ["cqtai-2-running"], tmp_path, "not complete", "submitted", "fetch it again")
    export_refused(UsageError, own_copy, ["job-running"], tmp_path, "not complete")
    export_refused(UsageError, own_copy, ["no-such-set"], tmp_path, "no set 'no-such-set'")
    two = own_copy / "sets" / f"cqtai-2-{CLIP_ID}"
    two.mkdir()
    (two / "job.json").write_text(json.dumps({"provider": "cqtai", "state": "submitted", "job_id": "job-two",
                                              "request": {"clip_id": CLIP_ID}}))
    export_refused(UsageError, own_copy, [CLIP_ID], tmp_path, "names 2 sets", "by key")
    leaky = tmp_path / "leaky.ipynb"
    leaky.write_text(f'{{"cells": [{{"source": ["key = \\"{CQTAI_KEY}\\""]}}]}}')
    export_refused(UsageError, own_copy, [teacher.apiframe], tmp_path, "holds one of your API keys",
                   notebooks=[leaky])
    with pytest.raises(UsageError, match="is a folder"):
        pack.export([teacher.apiframe], tmp_path, cache_dir=own_copy)


# -- import: what a student's cache already holds ---------------------------------------------------------
def test_a_damaged_or_different_set_is_repaired_from_the_pack(teacher, tmp_path):
    student = tmp_path / "student"
    pack.install(teacher.full, cache_dir=student)
    cqtai, apiframe = student / "sets" / teacher.cqtai, student / "sets" / teacher.apiframe
    (cqtai / "stems" / "bass.mp3").unlink()
    stem = apiframe / "stems" / "vocals.mp3"  # complete and intact, but other files than the pack's
    stem.write_bytes(stem.read_bytes()[:-100])
    manifest = json.loads((apiframe / "manifest.json").read_text())
    manifest["stems"][0].update(size=stem.stat().st_size, sha256=sha(stem))
    (apiframe / "manifest.json").write_text(json.dumps(manifest))
    assert Cache(student).intact(teacher.apiframe) and not Cache(student).intact(teacher.cqtai)
    kept = served(apiframe)
    with pytest.raises(UsageError, match="already holds a complete set .* with other files.*--force"):
        pack.install(teacher.full, cache_dir=student)  # a complete set of the student's own is not dropped
    assert served(apiframe) == kept and not Cache(student).intact(teacher.cqtai)
    done = pack._install(teacher.full, cache_dir=student, force=True)
    assert [row["status"] for row in done["sets"]] == ["repaired", "replaced"]
    assert served(cqtai) == teacher.hashes[teacher.cqtai] and served(apiframe) == teacher.hashes[teacher.apiframe]
    nothing_installed(student, {teacher.cqtai, teacher.apiframe})


def test_a_failure_while_moving_sets_in_puts_everything_back(teacher, tmp_path, monkeypatch):
    student = tmp_path / "student"
    pack.install(teacher.small, cache_dir=student)
    (student / "sets" / teacher.apiframe / "stems" / "vocals.mp3").unlink()  # to be repaired, second in the pack
    before = served(student / "sets" / teacher.apiframe)
    real, moves = os.replace, []

    def replace(src, dst):
        moves.append((Path(src).parent.name, Path(dst).name))
        if Path(src).parent.name == "sets" and Path(dst).name == teacher.apiframe:  # moving the staged set in
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(pack.os, "replace", replace)
    with pytest.raises(CacheError, match="No space left on device.*nothing was installed"):
        pack.install(teacher.full, cache_dir=student)
    monkeypatch.undo()
    assert ("sets", teacher.cqtai) in moves  # the first set was in place, and was taken out again
    assert served(student / "sets" / teacher.apiframe) == before  # the damaged set as it was, to be repaired
    nothing_installed(student, {teacher.apiframe})


def test_a_set_being_fetched_is_not_touched(teacher, tmp_path):
    student = tmp_path / "student"
    with Cache(student).lock(teacher.apiframe):
        with pytest.raises(UsageError, match="a fetch of it is running now"):
            pack.install(teacher.small, cache_dir=student)
    nothing_installed(student)


# -- import: hostile and damaged packs ------------------------------------------------------------------
class Hostile:
    """A valid pack's entries, to be edited and written as a new zip with ``zipfile`` itself."""

    def __init__(self, teacher: Teacher):
        self.teacher = teacher
        with zipfile.ZipFile(teacher.small) as zf:
            self.items = [[info, zf.read(info)] for info in zf.infolist()]
        self.key = teacher.apiframe
        self.vocals = f"sets/{self.key}/stems/vocals.mp3"
        self.manifest_name = f"sets/{self.key}/manifest.json"

    def __getitem__(self, name: str) -> bytes:
        return next(data for info, data in self.items if info.filename == name)

    def __setitem__(self, name: str, data: bytes) -> None:
        for item in self.items:
            if item[0].filename == name:
                item[1] = data
                return
        self.items.append([_info(name), data])

    def drop(self, name: str) -> None:
        self.items = [item for item in self.items if item[0].filename != name]

    @property
    def header(self) -> dict:
        return json.loads(self["stemlab-pack.json"])

    @header.setter
    def header(self, value: dict) -> None:
        self["stemlab-pack.json"] = json.dumps(value).encode()

    def listed(self, name: str, data: bytes | None = None) -> None:
        """Make the pack manifest's size and sha256 of ``name`` those of ``data`` (default: its entry's)."""
        data = self[name] if data is None else data
        header = self.header
        for one in header["sets"]:
            for file in one["files"]:
                if f"sets/{one['key']}/{file['path']}" == name:
                    file.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
        for book in header["notebooks"]:
            if f"notebooks/{book['name']}" == name:
                book.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
        self.header = header

    def write(self, path: Path) -> Path:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Duplicate name": on purpose
            with zipfile.ZipFile(path, "w") as zf:
                for info, data in self.items:
                    zf.writestr(info, data)
        return path


def _info(name: str, mode: int = stat.S_IFREG | 0o644, compress: int = zipfile.ZIP_STORED) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
    info.create_system, info.external_attr, info.compress_type = 3, mode << 16, compress
    return info


@pytest.fixture
def hostile(teacher) -> Hostile:
    return Hostile(teacher)


@pytest.fixture
def student(tmp_path) -> Path:
    return tmp_path / "student"


def flipped(data: bytes) -> bytes:
    data = bytearray(data)
    data[len(data) // 2] ^= 0x01
    return bytes(data)


def test_the_untouched_base_installs(hostile, student, tmp_path):
    assert pack.install(hostile.write(tmp_path / "same.zip"), cache_dir=student) == [hostile.key]


def test_a_flipped_byte_in_an_mp3_is_refused(hostile, student, tmp_path):
    hostile[hostile.vocals] = flipped(hostile[hostile.vocals])  # zipfile writes a matching CRC: only sha256 sees it
    refused(hostile.write(tmp_path / "p.zip"), student, "vocals.mp3", "differs", "sha256")


def test_a_set_manifest_edited_to_match_a_changed_file_is_refused(hostile, student, tmp_path):
    changed = flipped(hostile[hostile.vocals])
    hostile[hostile.vocals] = changed
    manifest = json.loads(hostile[hostile.manifest_name])
    manifest["stems"][0]["sha256"] = hashlib.sha256(changed).hexdigest()
    hostile[hostile.manifest_name] = json.dumps(manifest).encode()
    hostile.listed(hostile.manifest_name)  # the set manifest is listed as it now is; the MP3 is not
    refused(hostile.write(tmp_path / "p.zip"), student, "disagree", "vocals.mp3")


def test_a_pack_manifest_edited_to_match_a_changed_file_is_refused(hostile, student, tmp_path):
    hostile[hostile.vocals] = flipped(hostile[hostile.vocals])
    hostile.listed(hostile.vocals)  # the pack manifest agrees with the changed file; the set's manifest does not
    refused(hostile.write(tmp_path / "p.zip"), student, "disagree", "vocals.mp3")


@pytest.mark.parametrize("name, words", [
    ("../evil", "'..'"), (f"sets/../../evil", "'..'"), ("/abs", "absolute"), ("/etc/cron.d/x", "absolute"),
    ("C:/Windows/evil.dll", "drive letter"), ("sets\\..\\evil", "backslash"), ("sets//x", "empty component"),
    ("sets/./x", "'.' component"), ("notebooks/a\x1b[2Jb", "control character"),
])
def test_unsafe_entry_names_are_refused(hostile, student, tmp_path, name, words):
    hostile[name] = b"evil"
    refused(hostile.write(tmp_path / "p.zip"), student, words)
    assert not (tmp_path / "evil").exists() and not (student / "evil").exists()


@pytest.mark.parametrize("mode, words", [
    (stat.S_IFLNK | 0o777, "symbolic link"), (stat.S_IFDIR | 0o755, "folder"), (stat.S_IFCHR | 0o644, "device"),
])
def test_links_folders_and_devices_are_refused(hostile, student, tmp_path, mode, words):
    target = b"/etc/passwd"
    hostile.drop(hostile.vocals)
    hostile.items.append([_info(hostile.vocals, mode), target])
    hostile.listed(hostile.vocals, target)
    refused(hostile.write(tmp_path / "p.zip"), student, words, "vocals.mp3")


def test_a_duplicate_entry_is_refused(hostile, student, tmp_path):
    hostile.items.append([_info(hostile.vocals), b"the second one wins in zipfile"])
    refused(hostile.write(tmp_path / "p.zip"), student, "twice")


def test_names_that_differ_only_in_case_are_refused(hostile, student, tmp_path):
    hostile.items.append([_info(hostile.vocals.upper()), b"on a case-insensitive disk, the same file"])
    refused(hostile.write(tmp_path / "p.zip"), student, "only in case")


def test_an_unlisted_entry_is_refused(hostile, student, tmp_path):
    hostile[f"sets/{hostile.key}/stems/extra.mp3"] = b"not listed"
    refused(hostile.write(tmp_path / "p.zip"), student, "extra.mp3", "does not list")


def test_a_missing_entry_is_refused(hostile, student, tmp_path):
    hostile.drop(hostile.vocals)
    refused(hostile.write(tmp_path / "p.zip"), student, "lacks", "vocals.mp3")


@pytest.mark.parametrize("edit, words", [
    (lambda h: h.update(format_version=2), "newer stemlab"),
    (lambda h: h.update(format_version="1"), "unknown pack format version"),
    (lambda h: h.update(format="something-else"), "not a stemlab pack"),
    (lambda h: h["notebooks"].append({"name": "../x.ipynb", "size": 1, "sha256": "0" * 64}), "not a plain file name"),
    (lambda h: h["sets"][0]["files"].append({"path": "job.json", "size": 1, "sha256": "0" * 64}), "job record"),
    (lambda h: h["sets"][0]["files"].append({"path": "derived/x.npy", "size": 1, "sha256": "0" * 64}), "derived"),
    (lambda h: h["sets"][0].update(key="../../evil"), "not a set key"),
    (lambda h: h["sets"][0].update(job_id="another-job"), "disagree about the job_id"),
])
def test_a_bad_pack_manifest_is_refused(hostile, student, tmp_path, edit, words):
    header = hostile.header
    edit(header)
    hostile.header = header
    refused(hostile.write(tmp_path / "p.zip"), student, words)


def test_a_pack_manifest_that_is_not_json_or_absent_is_refused(hostile, student, tmp_path):
    hostile["stemlab-pack.json"] = b'{"format": "stemlab-pack", "sets": ['
    refused(hostile.write(tmp_path / "p.zip"), student, "not a JSON object")
    hostile.drop("stemlab-pack.json")
    refused(hostile.write(tmp_path / "q.zip"), student, "holds no stemlab-pack.json")


def test_not_a_zip_and_a_truncated_zip_are_refused(teacher, student, tmp_path):
    (tmp_path / "text.zip").write_text("a teacher's note, not a pack")
    refused(tmp_path / "text.zip", student, "not a zip file")
    data = teacher.small.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        (tmp_path / "cut.zip").write_bytes(data[:cut])
        refused(tmp_path / "cut.zip", student, "not a zip file")
    with pytest.raises(UsageError, match="no pack"):
        pack.install(tmp_path / "absent.zip", cache_dir=student)


def test_a_zip_bomb_is_refused_before_anything_is_unpacked(hostile, student, tmp_path):
    size, block = 64 * 1024 ** 2, bytes(1024 ** 2)
    header = hostile.header
    header["notebooks"].append({"name": "bomb.ipynb", "size": size,
                                "sha256": hashlib.sha256(bytes(size)).hexdigest()})
    hostile.header = header
    path = hostile.write(tmp_path / "bomb.zip")
    with zipfile.ZipFile(path, "a") as zf, zf.open(_info("notebooks/bomb.ipynb", compress=zipfile.ZIP_DEFLATED),
                                                   "w") as f:
        for _ in range(size // len(block)):  # streamed: 64 MB of zeros deflate to about 64 kB
            f.write(block)
    assert path.stat().st_size < 1024 ** 2
    refused(path, student, "zip bomb", "bomb.ipynb")


def test_the_caps_per_file_and_per_pack(teacher, student, monkeypatch):
    monkeypatch.setattr(pack, "MAX_FILE_BYTES", 50_000)
    refused(teacher.small, student, "over the cap", "per file", "MAX_FILE_BYTES")
    monkeypatch.setattr(pack, "MAX_FILE_BYTES", 2 * 1024 ** 3)
    monkeypatch.setattr(pack, "MAX_PACK_BYTES", 200_000)
    refused(teacher.small, student, "over the cap", "per pack", "MAX_PACK_BYTES")


def _patch_size(data: bytes, name: str, size: int) -> bytes:
    """The zip ``data`` with ``name``'s uncompressed size set to ``size`` in both of its headers."""
    data = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info, start = zf.getinfo(name), zf.start_dir
    data[info.header_offset + 22:info.header_offset + 26] = size.to_bytes(4, "little")
    at = data.index(b"PK\x01\x02", start)
    while data[at + 46:at + 46 + len(name)] != name.encode():
        at = data.index(b"PK\x01\x02", at + 4)
    data[at + 24:at + 28] = size.to_bytes(4, "little")
    return bytes(data)


def test_a_header_that_lies_about_its_size_is_never_read_past_it(hostile, student, tmp_path, monkeypatch):
    stated, real = 1000, 8 * 1024 ** 2  # 8 MB of zeros, stated as 1,000 bytes (under the ratio's floor)
    header = hostile.header
    header["notebooks"].append({"name": "liar.ipynb", "size": stated, "sha256": hashlib.sha256(bytes(stated)).hexdigest()})
    hostile.header = header
    path = hostile.write(tmp_path / "liar.zip")
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(_info("notebooks/liar.ipynb", compress=zipfile.ZIP_DEFLATED), bytes(real))
    path.write_bytes(_patch_size(path.read_bytes(), "notebooks/liar.ipynb", stated))
    read = []
    original = pack._Reader._read_block
    monkeypatch.setattr(pack._Reader, "_read_block",
                        lambda self, handle, size, name: read.append((name, len(block := original(
                            self, handle, size, name)))) or block)
    refused(path, student, "liar.ipynb")
    assert sum(n for name, n in read if name == "notebooks/liar.ipynb") <= stated + 1
    # and a header that states more than there is: the file ends early
    header["notebooks"][-1].update(size=2 * stated)
    hostile.header = header
    short = hostile.write(tmp_path / "short.zip")
    with zipfile.ZipFile(short, "a") as zf:
        zf.writestr(_info("notebooks/liar.ipynb", compress=zipfile.ZIP_DEFLATED), bytes(stated))
    short.write_bytes(_patch_size(short.read_bytes(), "notebooks/liar.ipynb", 2 * stated))
    refused(short, student, "liar.ipynb", "ends before the size its header states")


def test_entries_that_overlap_are_refused(hostile, student, tmp_path):
    path = hostile.write(tmp_path / "p.zip")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        infos, start = zf.infolist(), zf.start_dir
    second = infos[1]  # point the second entry's central record at the first entry's local header
    at = data.index(b"PK\x01\x02", start)
    at = data.index(b"PK\x01\x02", at + 4)
    assert data[at + 46:at + 46 + len(second.filename)] == second.filename.encode()
    data[at + 42:at + 46] = infos[0].header_offset.to_bytes(4, "little")
    (tmp_path / "q.zip").write_bytes(bytes(data))
    refused(tmp_path / "q.zip", student)


def test_ls_checks_a_pack_as_install_does(teacher, hostile, tmp_path):
    rows = pack.ls(teacher.full)
    assert [(r["kind"], r.get("key") or r["name"]) for r in rows] == [
        ("set", teacher.cqtai), ("set", teacher.apiframe), ("notebook", "lesson.ipynb")]
    assert rows[0]["stems"] == 12 and rows[0]["bytes"] > 0 and rows[0]["provider"] == "cqtai"
    hostile[hostile.vocals] = flipped(hostile[hostile.vocals])
    with pytest.raises(PackError, match="differs"):
        pack.ls(hostile.write(tmp_path / "p.zip"))


# -- fuzz ------------------------------------------------------------------------------------------------
REGIONS = ("anywhere", "local header", "central directory", "end")


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.sampled_from(REGIONS), st.integers(0, 2 ** 32), st.integers(1, 255)),
                      min_size=0, max_size=3),
       cut=st.none() | st.integers(0, 2 ** 32))
def test_a_mutated_pack_is_installed_whole_or_refused(teacher, flips, cut):
    data = bytearray(teacher.small.read_bytes())
    with zipfile.ZipFile(teacher.small) as zf:
        infos, start = zf.infolist(), zf.start_dir
    for region, where, xor in flips:
        if region == "local header":
            info = infos[where % len(infos)]
            low, high = info.header_offset, info.header_offset + 30 + len(info.filename)
        elif region == "central directory":
            low, high = start, len(data)
        elif region == "end":
            low, high = len(data) - 22, len(data)
        else:
            low, high = 0, len(data)
        data[low + where % (high - low)] ^= xor
    if cut is not None:
        data = data[:cut % (len(data) + 1)]
    with tempfile.TemporaryDirectory() as scratch:
        path, student = Path(scratch) / "p.zip", Path(scratch) / "student"
        path.write_bytes(bytes(data))
        try:
            keys = pack.install(path, cache_dir=student)
        except PackError as exc:
            assert "\n" not in str(exc)
            nothing_installed(student)
        else:
            assert keys == [teacher.apiframe]
            assert served(student / "sets" / teacher.apiframe) == teacher.hashes[teacher.apiframe]
            assert Cache(student).intact(teacher.apiframe) and not (student / "staging").exists()


@pytest.mark.parametrize("name", ["../../../../tmp/x", "/abs/x", "mixture", "Vocals", ""])
def test_a_stem_name_that_would_become_a_path_elsewhere_is_refused(hostile, student, tmp_path, name):
    """A stem's name becomes file names (its decoded array, its exported WAV): a pack's names must
    be names stemlab itself gives. (A pack once installed "../../../../tmp/x", and decoding it wrote
    outside the cache.)"""
    manifest = json.loads(hostile[hostile.manifest_name])
    manifest["stems"][0]["name"] = name
    hostile[hostile.manifest_name] = json.dumps(manifest).encode()
    hostile.listed(hostile.manifest_name)
    refused(hostile.write(tmp_path / "p.zip"), student, "stem")


def test_a_decoding_record_that_cannot_be_is_refused(hostile, student, tmp_path):
    manifest = json.loads(hostile[hostile.manifest_name])
    manifest["stems"][0]["decode"] = {**(manifest["stems"][0].get("decode") or {}), "sr": 0}
    hostile[hostile.manifest_name] = json.dumps(manifest).encode()
    hostile.listed(hostile.manifest_name)
    refused(hostile.write(tmp_path / "p.zip"), student, "decoding")


@pytest.mark.parametrize("path", ["Derived/vocals.0123456789abcdef.native.npy", "JOB.json", "stems/v.mp3.",
                                  "other/v.mp3"])
def test_files_a_set_does_not_keep_are_refused_whatever_their_case(hostile, student, tmp_path, path):
    """On a case-insensitive disk ``Derived/`` is ``derived/``: a planted array would be served
    instead of the verified MP3."""
    name = f"sets/{hostile.key}/{path}"
    hostile[name] = b"x"
    header = hostile.header
    next(s for s in header["sets"] if s["key"] == hostile.key)["files"].append(
        {"path": path, "size": 1, "sha256": hashlib.sha256(b"x").hexdigest()})
    hostile.header = header
    refused(hostile.write(tmp_path / "p.zip"), student, path.split("/")[-1])


def test_a_set_filed_under_a_key_its_request_does_not_give_is_refused(hostile, student, tmp_path):
    """Else ``stemlab.fetch`` of another request would be answered, offline, with this set."""
    header = hostile.header
    one = next(s for s in header["sets"] if s["key"] == hostile.key)
    manifest = json.loads(hostile[hostile.manifest_name])
    one["request"] = manifest["request"] = {**manifest["request"], "parent_job_id": "someone-else"}
    hostile[hostile.manifest_name] = json.dumps(manifest).encode()
    hostile.header = header
    hostile.listed(hostile.manifest_name)
    refused(hostile.write(tmp_path / "p.zip"), student, "key its request does not give")


def test_a_set_a_fetch_completes_while_the_pack_is_staged_is_not_replaced(teacher, tmp_path, monkeypatch):
    student = tmp_path / "student"
    pack.install(teacher.small, cache_dir=student)
    folder = student / "sets" / teacher.apiframe
    (folder / "stems" / "vocals.mp3").unlink()  # damaged: planned as a repair
    mine = tmp_path / "mine"
    shutil.copytree(folder, mine)
    real = pack._stage_set

    def fetch_finishes_meanwhile(*args, **kwargs):
        real(*args, **kwargs)
        shutil.rmtree(folder)
        shutil.copytree(teacher_own := mine, folder)
        stem = folder / "stems" / "vocals.mp3"
        stem.write_bytes(b"ID3" + b"\0" * 2000)  # a complete set of the student's own
        manifest = json.loads((folder / "manifest.json").read_text())
        entry = next(s for s in manifest["stems"] if s["name"] == "vocals")
        entry.update(size=stem.stat().st_size, sha256=sha(stem))
        (folder / "manifest.json").write_text(json.dumps(manifest))
        assert Cache(student).intact(teacher.apiframe), teacher_own

    monkeypatch.setattr(pack, "_stage_set", fetch_finishes_meanwhile)
    with pytest.raises(UsageError, match="now holds a complete set"):
        pack.install(teacher.small, cache_dir=student)
    assert (folder / "stems" / "vocals.mp3").read_bytes().startswith(b"ID3\0")  # the student's set is kept


def test_a_set_that_cannot_be_put_back_is_kept_and_said(teacher, tmp_path, monkeypatch):
    student = tmp_path / "student"
    pack.install(teacher.small, cache_dir=student)
    (student / "sets" / teacher.apiframe / "stems" / "vocals.mp3").unlink()
    real, calls = os.replace, []

    def replace(src, dst):
        calls.append((Path(src), Path(dst)))
        if "staging" in Path(src).parts and Path(src).parent.name == "sets":
            raise OSError(28, "No space left on device")  # moving the staged set in fails
        if Path(src).parent.name == "old":
            raise OSError(5, "Input/output error")  # and so does putting the old one back
        return real(src, dst)

    monkeypatch.setattr(pack.os, "replace", replace)
    with pytest.raises(CacheError, match="could not be put back: it is kept at"):
        pack.install(teacher.small, cache_dir=student)
    kept = list((student / "staging").glob("pack-*/old/*"))
    assert [p.name for p in kept] == [teacher.apiframe] and (kept[0] / "manifest.json").exists()


def test_export_never_overwrites_a_file_without_force(teacher, own_copy, tmp_path):
    """``-o lesson.ipynb --notebook lesson.ipynb`` once replaced the lesson with the pack."""
    lesson = tmp_path / "lesson.ipynb"
    lesson.write_bytes(NOTEBOOK)
    settings = Settings.resolve(environ={}, dotenv=None, cache_dir=own_copy)
    with pytest.raises(UsageError, match="already exists; pass --force"):
        pack.export([teacher.cqtai], lesson, notebooks=[lesson], settings=settings)
    assert lesson.read_bytes() == NOTEBOOK
    assert pack.export([teacher.cqtai], lesson, settings=settings, force=True) == lesson
    assert zipfile.is_zipfile(lesson)
