"""A pinned TensorFlow Lite Micro source tree: where to find it, which files build it, a cached build.

Why a source tree and not an Arduino library: the only Arduino TFLM library (Arduino_TensorFlowLite,
last updated 2023) runs older kernels that give different int8 outputs for the same model (its
FULLY_CONNECTED ignores per-channel weight scales), so the report would not describe the board.
The kit therefore builds the model against one pinned upstream tree (TFLM 90b983c + CMSIS-NN),
in tests, in ``gesture verify`` and in the exported sketch.

A *tree* is a folder laid out like ``tflm-src.tar.gz`` (see PROVENANCE.md beside it)::

    tflite-micro/  CMSIS-NN/  CMSIS_6/  flatbuffers/  gemmlowp/  ruy/

It is found (:func:`find_tree`) from an explicit path, else ``$GESTURE_TFLM``, else the user
cache; a tarball is extracted once into the cache, keyed by its sha256. :func:`fetch_tree` fills
the same cache from the upstream repositories: the source archives of the six trees at the
commits tflite-micro pins in its own download scripts (:data:`UPSTREAMS`), TFLM's
flatbuffers.patch applied, pruned to the files of ``tflm_pinned.sha256`` beside this module.
That manifest (``sha256sum`` format, one line per kept file) is both the keep-list and the
checksum of every file: GitHub does not promise byte-identical archives over time, so a check of
the archives' own digests could fail for a correct download, while a per-file check cannot.
A fetched tree and the pinned tarball hold the same files, so both land in one cache folder
keyed by the manifest's digest, which :func:`find_tree` looks at first. ``--url`` (or
``$GESTURE_TFLM_URL``) instead downloads a mirror of the pruned tarball, checked by its sha256.

:func:`runtime_sources` lists the files that make the runtime plus the kernels (all of them, or
only those of a given op list, with the CMSIS-NN variants for Cortex-M); :func:`build_runtime`
compiles them once per (tree, target, flags) into a static library, caching every object file
outside the repository, so a test session or a ``gesture verify`` after the first costs seconds.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
import functools
from pathlib import Path
from typing import Callable, Iterable, Literal

from capture.errors import GestureError
from capture.fileio import file_sha256
from capture.resources import user_cache_dir

Target = Literal["host", "cortex-m4"]

# The pinned tree (PROVENANCE.md of tflm-src.tar.gz): upstream commits and the tarball's checksum.
TFLM_COMMIT = "90b983c2b3f1480642e040bbd2ddb37b998f3424"
CMSIS_NN_COMMIT = "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae"
# the third-party pins of tflite-micro 90b983c (tensorflow/lite/micro/tools/make/flatbuffers_download.sh,
# third_party_downloads.inc, ext_libs/cmsis_nn_download.sh, ext_libs/cmsis_download.sh)
CMSIS_6_COMMIT = "5782d6f8057906d360f4b95ec08a2354afe5c9b9"
FLATBUFFERS_TAG = "v25.9.23"  # = 187240970746d00bbd26b0f5873ed54d2477f9f3
GEMMLOWP_COMMIT = "719139ce755a0f31cbf1c37f7f98adcc7fc9f425"
RUY_COMMIT = "d37128311b445e758136b8602d1bbd2a755e115d"
# TFLM's patch to flatbuffers, taken from the tflite-micro archive (pruned from the tree itself)
FLATBUFFERS_PATCH = "tensorflow/lite/micro/tools/make/flatbuffers.patch"
FLATBUFFERS_PATCH_SHA256 = "ba539d67507d635cf1c9eaf032538a4f2424909e1677877b54e91e000b578356"
PINNED_SHA256 = "9fe56bc4ab1deaf01cac38a3d8357b94a81b79f3b0188a5328049f0bdc6e0559"  # sha256 of tflm-src.tar.gz at these commits
TARBALL_NAME = "tflm-src.tar.gz"
MANIFEST_NAME = "tflm_pinned.sha256"  # beside this module: "SHA256  folder/path" for every file of the pinned tree
UPSTREAM_BASE = "https://github.com"  # serves /<owner>/<repo>/archive/<ref>.zip
ENV_TREE = "GESTURE_TFLM"  # a folder or a tarball
ENV_URL = "GESTURE_TFLM_URL"  # where `fetch_tree` downloads the pinned tarball from
ENV_UPSTREAM = "GESTURE_TFLM_UPSTREAM"  # another host in GitHub's archive layout, instead of UPSTREAM_BASE
ENV_CACHE = "GESTURE_CACHE"  # overrides the user cache folder (trees)
ENV_BUILD_CACHE = "GESTURE_BUILD_CACHE"  # overrides where compiled objects are cached
TREE_DIRS = ("tflite-micro", "CMSIS-NN", "CMSIS_6", "flatbuffers", "gemmlowp")
MICRO = "tflite-micro/tensorflow/lite/micro"

# Debian packages per tool, for the one-line message when a tool is missing.
DEBIAN_PACKAGES = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib",
    "arm-none-eabi-g++": "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib",
    "qemu-system-arm": "qemu-system-arm",
    "g++": "g++",
}


# ----------------------------------------------------------------------------- the cache, a tree's layout

def cache_root() -> Path:
    """The user cache folder of the kit (``$GESTURE_CACHE``, else ``$XDG_CACHE_HOME/gesture-kit``)."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    return user_cache_dir()


def build_cache_root() -> Path:
    """Where compiled objects and libraries are cached (``$GESTURE_BUILD_CACHE``, else
    ``cache_root()/build``): keyed by content, so any number of trees and sessions share it."""
    env = os.environ.get(ENV_BUILD_CACHE)
    return Path(env).expanduser() if env else cache_root() / "build"


def is_tree(path: Path) -> bool:
    """Whether ``path`` is laid out like the pinned tree: cheap enough for every lookup (the
    file-by-file check is :func:`verify_files`, run when a tree enters the cache)."""
    return all((path / d).is_dir() for d in TREE_DIRS) and (path / MICRO / "micro_interpreter.h").is_file()


def _tree_in(folder: Path) -> Path | None:
    """``folder`` itself or its single ``tflm-src`` child, when laid out like the tarball."""
    for cand in (folder, folder / "tflm-src"):
        if is_tree(cand):
            return cand
    return None


# ----------------------------------------------------------------------------- the pinned file set

@dataclass(frozen=True)
class Upstream:
    """One upstream repository at its pinned ref: its source archive and the tree folder it fills."""

    folder: str  # in the tree: tflm-src/<folder>
    repo: str  # owner/name on GitHub
    ref: str  # a commit, or refs/tags/<tag>
    top: str  # the archive's single top folder (GitHub: <name>-<commit>, or <name>-<tag without v>)

    def url(self, base: str) -> str:
        """GitHub's address of the archive (``base`` another host in the same layout)."""
        return f"{base.rstrip('/')}/{self.repo}/archive/{self.ref}.zip"

    @property
    def label(self) -> str:
        ref = self.ref.rsplit("/", 1)[-1]
        return f"{self.folder} {ref[:7] if re.fullmatch(r'[0-9a-f]{40}', ref) else ref}"


# The archives tflite-micro's own download scripts use, in that order: tflite-micro comes first
# because flatbuffers needs the patch inside it.
UPSTREAMS = (
    Upstream("tflite-micro", "tensorflow/tflite-micro", TFLM_COMMIT, f"tflite-micro-{TFLM_COMMIT}"),
    Upstream("CMSIS-NN", "ARM-software/CMSIS-NN", CMSIS_NN_COMMIT, f"CMSIS-NN-{CMSIS_NN_COMMIT}"),
    Upstream("CMSIS_6", "ARM-software/CMSIS_6", CMSIS_6_COMMIT, f"CMSIS_6-{CMSIS_6_COMMIT}"),
    Upstream("flatbuffers", "google/flatbuffers", f"refs/tags/{FLATBUFFERS_TAG}", f"flatbuffers-{FLATBUFFERS_TAG[1:]}"),
    Upstream("gemmlowp", "google/gemmlowp", GEMMLOWP_COMMIT, f"gemmlowp-{GEMMLOWP_COMMIT}"),
    Upstream("ruy", "google/ruy", RUY_COMMIT, f"ruy-{RUY_COMMIT}"),
)
_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  (\S(?:.*\S)?)")


def parse_manifest(text: str, origin: str) -> dict[str, str]:
    """``{path in the tree: sha256}`` from ``sha256sum`` lines; a GestureError naming the line
    when one is not ``SHA256  FOLDER/PATH`` with FOLDER one of the upstream folders (the paths
    become file names under the cache, so nothing may point outside the tree)."""
    folders = {u.folder for u in UPSTREAMS}
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _MANIFEST_LINE.fullmatch(line)
        parts = m.group(2).split("/") if m else []
        if not m or len(parts) < 2 or parts[0] not in folders or any(p in ("", ".", "..") for p in parts) \
                or m.group(2) in out:
            raise GestureError(f"{origin}:{n}: expected 'SHA256  FOLDER/PATH' (FOLDER one of {', '.join(sorted(folders))}, "
                               f"each path once), got {line[:120]!r}")
        out[m.group(2)] = m.group(1)
    if not out:
        raise GestureError(f"{origin}: lists no files; expected one 'SHA256  FOLDER/PATH' line per file of the pinned tree")
    return out


@functools.cache
def pinned_manifest() -> dict[str, str]:
    """The files of the pinned tree and their sha256 (``tflm_pinned.sha256``, package data)."""
    res = importlib.resources.files("training").joinpath(MANIFEST_NAME)
    try:
        text = res.read_text(encoding="utf-8")
    except OSError as e:
        raise GestureError(f"{res}: the kit's list of the pinned TFLM files is missing ({e}); reinstall gesture-kit")
    return parse_manifest(text, str(res))


@functools.cache
def manifest_digest() -> str:
    """sha256 of the pinned manifest in its canonical form (sorted, LF): what names the pinned
    tree, whichever way it came (fetched, or the pinned tarball), and survives CRLF checkouts."""
    man = pinned_manifest()
    return hashlib.sha256("".join(f"{man[p]}  {p}\n" for p in sorted(man)).encode()).hexdigest()


def pinned_key() -> str:
    """The cache folder (under ``cache_root()/tflm``) of the pinned tree."""
    return f"pinned-{manifest_digest()[:16]}"


def manifest_text(tree: Path) -> str:
    """``SHA256  path`` for every file under ``tree``, sorted by path: how ``tflm_pinned.sha256``
    is made from the pinned tarball (tests/make_tflm_manifest.py), and what a test compares."""
    files = sorted((f for f in tree.rglob("*") if f.is_file()), key=lambda f: f.relative_to(tree).as_posix())
    return "".join(f"{file_sha256(f)}  {f.relative_to(tree).as_posix()}\n" for f in files)


def verify_files(tree: Path, want: dict[str, str], origin: str, after: str) -> None:
    """Every file of ``want`` present under ``tree`` with its sha256, else a GestureError naming
    ``origin``, the first bad file, expected vs got, then ``after`` (what happened to the tree)."""
    for rel in sorted(want):
        f = tree / rel
        got = file_sha256(f) if f.is_file() else None
        if got != want[rel]:
            raise GestureError(f"{origin}: {rel}: expected sha256 {want[rel]} ({MANIFEST_NAME}), got "
                               f"{got or 'no such file'}; {after}")


# ----------------------------------------------------------------------------- locating the tree

def _move_into_place(tmp: Path, dest: Path) -> None:
    """One rename publishes a finished tree, so a reader never sees half of one; when another
    process got there first, its tree (the same pinned files) is kept."""
    try:
        tmp.rename(dest)
    except OSError:
        if not dest.is_dir():
            raise


def _placed_tree(dest: Path) -> Path:
    found = _tree_in(dest)
    assert found is not None
    return found


def extract_tarball(tarball: Path, cache_dir: Path | None = None) -> Path:
    """Extract a tflm-src tarball once into ``cache/tflm/<sha256[:16]>`` (temp folder + rename, so
    an interrupted extraction never leaves a half tree) and return the tree inside. The pinned
    tarball goes to the pinned tree's folder (:func:`pinned_key`), checked file by file, so a
    tree fetched from upstream and the extracted tarball are one cache entry."""
    digest = file_sha256(tarball)
    pinned = digest == PINNED_SHA256
    dest = (cache_dir or cache_root()) / "tflm" / (pinned_key() if pinned else digest[:16])
    found = _tree_in(dest) if dest.is_dir() else None
    if found:
        return found
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest.parent))
    try:
        try:
            with tarfile.open(tarball) as tf:
                tf.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as e:
            raise GestureError(f"{tarball}: not a readable TFLM source tarball ({e})") from e
        tree = _tree_in(tmp)
        if tree is None:
            raise GestureError(f"{tarball}: no TFLM tree inside (expected tflm-src/{{{','.join(TREE_DIRS)}}})")
        if pinned:
            verify_files(tree, pinned_manifest(), str(tarball), "the extraction was discarded")
            (tmp / "MANIFEST").write_text(manifest_digest() + "\n")
        (tmp / "SHA256").write_text(digest + "\n")
        _move_into_place(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _placed_tree(dest)


def _resolve(path: Path, origin: str, cache_dir: Path | None) -> Path:
    path = path.expanduser()
    if path.is_dir():
        tree = _tree_in(path)
        if tree is None:
            raise GestureError(f"{path} ({origin}): not a TFLM tree; expected the folders "
                               f"{', '.join(TREE_DIRS)} (laid out like {TARBALL_NAME})")
        return tree.resolve()
    if path.is_file():
        return extract_tarball(path, cache_dir)
    raise GestureError(f"{path} ({origin}): no such folder or tarball")


def find_tree(explicit: str | Path | None = None, *, cache_dir: Path | None = None) -> Path | None:
    """The TFLM tree to build against: ``explicit`` (folder or tarball), else ``$GESTURE_TFLM``,
    else a tree already in the user cache (the pinned one first: fetched or extracted before).
    None when there is none; a GestureError when a given path is not a tree."""
    if explicit is not None and str(explicit) != "":
        return _resolve(Path(explicit), "--tflm", cache_dir)
    env = os.environ.get(ENV_TREE)
    if env:
        return _resolve(Path(env), f"${ENV_TREE}", cache_dir)
    base = (cache_dir or cache_root()) / "tflm"
    # the pinned tree; then where the pinned tarball was extracted before the manifest existed
    for key in (pinned_key(), PINNED_SHA256[:16]):
        tree = _tree_in(base / key) if (base / key).is_dir() else None
        if tree:
            return tree
    if base.is_dir():  # any tree extracted before, newest first
        for d in sorted((d for d in base.iterdir() if d.is_dir() and not d.name.startswith(".")),
                        key=lambda d: d.stat().st_mtime, reverse=True):
            tree = _tree_in(d)
            if tree:
                return tree
    return None


def missing_tree_hint() -> str:
    """One line: what is missing and the ways to add it."""
    return (f"no TFLM source tree: pass --tflm PATH (a folder or {TARBALL_NAME}), set ${ENV_TREE}, or run "
            f"`gesture tflm fetch` to download the pinned tree (TFLM {TFLM_COMMIT[:7]} and its third-party "
            f"code, from GitHub, checksum-verified) into {cache_root()}")


# ----------------------------------------------------------------------------- downloading the tree

Echo = Callable[[str], None]


def _download(url: str, out: Path, timeout: float, what: str, progress: bool) -> int:
    """Stream ``url`` into ``out``; the bytes written. A progress bar on a terminal when
    ``progress`` (the tflite-micro archive is tens of MB)."""
    import http.client

    from tqdm import tqdm

    n = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(out, "wb") as f:
            size = resp.headers.get("Content-Length", "")
            with tqdm(total=int(size) if size.isdigit() else None, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=what, leave=False, file=sys.stderr, disable=None if progress else True) as bar:
                for block in iter(lambda: resp.read(1 << 16), b""):
                    f.write(block)
                    n += len(block)
                    bar.update(len(block))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        raise GestureError(f"could not download {what} from {url}: {e}") from e
    return n


def _patch_command(patch_file: Path, folder: Path) -> tuple[list[str], dict[str, str] | None]:
    """How to apply a ``-p1`` patch in ``folder``: the system ``patch``, else ``git apply`` (what
    TFLM's own script uses), kept from looking for a repository above ``folder``."""
    tool = shutil.which("patch")
    if tool:
        return [tool, "-p1", "-N", "-t", "-i", str(patch_file)], None
    git = shutil.which("git")
    if git:
        env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(folder.resolve().parent)}
        return [git, "apply", "-p1", "--ignore-space-change", "--ignore-whitespace", str(patch_file)], env
    raise GestureError("neither `patch` nor `git` is installed: one of them applies TFLM's flatbuffers.patch to the "
                       "flatbuffers download (Debian package: patch)")


def apply_patch(patch: bytes, folder: Path, patch_file: Path, origin: str) -> None:
    """Apply ``patch`` (TFLM's flatbuffers.patch) to ``folder`` as TFLM's download script does."""
    patch_file.write_bytes(patch)
    cmd, env = _patch_command(patch_file, folder)
    try:
        r = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=False)
    except OSError as e:
        raise GestureError(f"could not run {cmd[0]} to apply {FLATBUFFERS_PATCH}: {e}") from e
    if r.returncode != 0:
        said = " / ".join((r.stdout + r.stderr).strip().splitlines()[-3:])
        raise GestureError(f"{origin}: {FLATBUFFERS_PATCH} (from the tflite-micro archive) does not apply "
                           f"({Path(cmd[0]).name}: {said}); the download was discarded")


def _unpack(archive: Path, up: Upstream, keep: dict[str, str], tree: Path, extra: tuple[str, ...],
            url: str) -> dict[str, bytes]:
    """Write the files of ``keep`` from a GitHub source archive into ``tree`` (top folder
    ``up.top`` becomes ``up.folder``); return the archive's ``extra`` files (relative to its top
    folder) as bytes. Only listed paths are written, so no archive entry can land elsewhere."""
    prefix = up.top + "/"
    extras: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            if not any(i.filename.startswith(prefix) for i in infos):
                tops = sorted({i.filename.split("/", 1)[0] for i in infos})
                raise GestureError(f"{url}: no folder {up.top}/ in the archive (it holds {', '.join(tops[:3]) or 'nothing'}); "
                                   f"expected the source archive of {up.repo} at {up.ref}")
            for info in infos:
                if info.is_dir() or not info.filename.startswith(prefix):
                    continue
                rel = info.filename[len(prefix):]
                path = f"{up.folder}/{rel}"
                if path in keep:
                    out = tree / path
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                elif rel in extra:
                    extras[rel] = zf.read(info)
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise GestureError(f"{url}: not a readable zip archive ({e}); the download was discarded") from e
    for rel in extra:
        if rel not in extras:
            raise GestureError(f"{url}: {up.top}/{rel} is missing from the archive; the download was discarded")
    return extras


def fetch_upstream(base_url: str = UPSTREAM_BASE, *, cache_dir: Path | None = None, timeout: float = 60.0,
                   patch_sha256: str | None = None, echo: Echo | None = None) -> Path:
    """Build the pinned tree from the upstream source archives (:data:`UPSTREAMS`, from
    ``base_url`` in GitHub's ``/<owner>/<repo>/archive/<ref>.zip`` layout): keep the files of
    the manifest, apply TFLM's flatbuffers.patch (from the tflite-micro archive, checked against
    ``patch_sha256``, default :data:`FLATBUFFERS_PATCH_SHA256`), check every file's sha256, and
    move the tree into the cache in one rename. Any failure discards everything. A pinned tree
    already in the cache is checked and returned without a download."""
    say = echo or (lambda _s: None)
    patch_sha256 = patch_sha256 or FLATBUFFERS_PATCH_SHA256
    want = pinned_manifest()
    base = (cache_dir or cache_root()) / "tflm"
    dest = base / pinned_key()
    found = _tree_in(dest) if dest.is_dir() else None
    if found:
        verify_files(found, want, f"{dest} (the pinned tree in the cache)",
                     "it was changed since it was fetched: delete that folder and run `gesture tflm fetch` again")
        say(f"the pinned TFLM tree is already in the cache ({len(want)} files verified)")
        return found
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=base))
    try:
        tree = tmp / "tflm-src"
        _patch_command(tmp / "flatbuffers.patch", tmp)  # no patch tool: say so before downloading anything
        patch: bytes | None = None
        for up in UPSTREAMS:
            t0 = time.monotonic()
            url = up.url(base_url)
            keep = {p: h for p, h in want.items() if p.split("/", 1)[0] == up.folder}
            archive = tmp / f"{up.folder}.zip"
            size = _download(url, archive, timeout, up.label, progress=echo is not None)
            extra = (FLATBUFFERS_PATCH,) if up.folder == "tflite-micro" else ()
            extras = _unpack(archive, up, keep, tree, extra, url)
            archive.unlink()
            if up.folder == "tflite-micro":
                patch = extras[FLATBUFFERS_PATCH]
                got = hashlib.sha256(patch).hexdigest()
                if got != patch_sha256:
                    raise GestureError(f"{url}: {FLATBUFFERS_PATCH}: expected sha256 {patch_sha256}, got {got}; "
                                       "the download was discarded")
            elif up.folder == "flatbuffers":
                assert patch is not None, "UPSTREAMS lists tflite-micro before flatbuffers"
                apply_patch(patch, tree / up.folder, tmp / "flatbuffers.patch", url)
                for f in [f for f in (tree / up.folder).rglob("*") if f.is_file()]:  # patch's .orig/.rej
                    if f.relative_to(tree).as_posix() not in keep:
                        f.unlink()
            verify_files(tree, keep, url, "the download was discarded")
            say(f"{up.label}: {len(keep)} files verified ({size / 1e6:.1f} MB archive, {time.monotonic() - t0:.1f} s)")
        (tmp / "MANIFEST").write_text(manifest_digest() + "\n")
        _move_into_place(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _placed_tree(dest)


def fetch_tree(url: str | None = None, *, sha256: str | None = None, cache_dir: Path | None = None,
               timeout: float = 60.0, base_url: str | None = None, patch_sha256: str | None = None,
               echo: Echo | None = None) -> Path:
    """Put the pinned tree into the user cache and return it. With ``url`` (default
    ``$GESTURE_TFLM_URL``): download a mirror of the pruned tflm-src tarball and check its sha256
    (``sha256``, default the pinned one); nothing is kept when it differs. Without: build it from
    the upstream archives (:func:`fetch_upstream`) at ``base_url``, default ``$GESTURE_TFLM_UPSTREAM``,
    else GitHub."""
    url = url or os.environ.get(ENV_URL)
    if not url:
        return fetch_upstream(base_url or os.environ.get(ENV_UPSTREAM) or UPSTREAM_BASE, cache_dir=cache_dir,
                              timeout=timeout, patch_sha256=patch_sha256, echo=echo)
    want = sha256 or PINNED_SHA256
    base = (cache_dir or cache_root()) / "tflm"
    base.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=".tar.gz", dir=base)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _download(url, tmp, timeout, "the TFLM tree", progress=echo is not None)
        got = file_sha256(tmp)
        if got != want:
            raise GestureError(f"{url}: sha256 {got} is not the pinned {want}; the download was discarded")
        return extract_tarball(tmp, cache_dir)
    finally:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- what to compile

def include_dirs(tree: Path) -> list[Path]:
    """Include folders, relative to which every #include of the runtime resolves."""
    return [tree / "tflite-micro", tree / "flatbuffers" / "include", tree / "gemmlowp", tree / "ruy",
            tree / "CMSIS-NN", tree / "CMSIS-NN" / "Include", tree / "CMSIS_6" / "CMSIS" / "Core" / "Include"]


# Files of the micro/ folder that are tests, test helpers or alternatives of others.
_CORE_SKIP = {"test_helpers.cc", "test_helper_custom_ops.cc", "mock_micro_graph.cc", "fake_micro_context.cc",
              "recording_micro_allocator.cc"}
_KERNEL_SKIP_RE = re.compile(r"(_test|_test_common|kernel_runner|_generated_data|ethosu|test_data)")
# kernel helpers every kernel may call (not tied to one op)
_KERNEL_HELPERS = ("kernel_util.cc", "micro_tensor_utils.cc")


def core_sources(tree: Path) -> list[str]:
    """The interpreter, allocator, planners, flatbuffer parsing and the TF Lite helpers they use
    (paths relative to ``tree``)."""
    out: list[str] = []
    micro = tree / MICRO
    out += [f"{MICRO}/{f.name}" for f in sorted(micro.glob("*.cc")) if f.name not in _CORE_SKIP]
    for sub in ("arena_allocator", "memory_planner", "tflite_bridge"):
        out += [f"{MICRO}/{sub}/{f.name}" for f in sorted((micro / sub).glob("*.cc"))
                if not f.name.startswith("recording_")]
    lite = "tflite-micro/tensorflow/lite"
    for sub in ("core/api", "core/c", "kernels", "kernels/internal", "kernels/internal/reference", ""):
        folder = tree / lite / sub if sub else tree / lite
        out += [str(f.relative_to(tree)) for f in sorted(folder.glob("*.cc"))]
    for sub in ("tflite-micro/tensorflow/compiler/mlir/lite/core/api",
                "tflite-micro/tensorflow/compiler/mlir/lite/schema"):
        out += [str(f.relative_to(tree)) for f in sorted((tree / sub).glob("*.cc"))]
    out += [f"{MICRO}/kernels/{h}" for h in _KERNEL_HELPERS]
    return out


def resolver_registrations(tree: Path, op: str) -> list[str]:
    """``Register_X`` functions the MicroMutableOpResolver method of builtin ``op`` uses."""
    from training.tflm_ops import RESOLVER_METHODS

    if op not in RESOLVER_METHODS:
        raise GestureError(f"op {op} is not registered in TensorFlow Lite Micro")
    text = (tree / MICRO / "micro_mutable_op_resolver.h").read_text()
    m = re.search(rf"TfLiteStatus {RESOLVER_METHODS[op]}\((.*?)\n  }}", text, re.S)
    if not m:
        raise GestureError(f"{MICRO}/micro_mutable_op_resolver.h: no method {RESOLVER_METHODS[op]} (op {op})")
    return sorted(set(re.findall(r"\bRegister_(\w+)\(", m.group(1))))


def kernel_sources(tree: Path, ops: Iterable[str] | None, *, cmsis_nn: bool) -> list[str]:
    """Kernel files for ``ops`` (None: every kernel). With ``cmsis_nn`` a kernel that has a
    CMSIS-NN variant (kernels/cmsis_nn/X.cc) replaces the reference kernels/X.cc, and the
    CMSIS-NN C sources it calls are added."""
    kdir = tree / MICRO / "kernels"
    cdir = kdir / "cmsis_nn"
    variants = {f.name for f in cdir.glob("*.cc")} if cmsis_nn else set()
    if ops is None:
        names = {f.name for f in kdir.glob("*.cc") if not _KERNEL_SKIP_RE.search(f.name)}
    else:
        names = set()
        defs: dict[str, str] = {}
        for f in list(kdir.glob("*.cc")) + (list(cdir.glob("*.cc")) if cmsis_nn else []):
            if _KERNEL_SKIP_RE.search(f.name):
                continue
            for reg in re.findall(r"^TFLMRegistration Register_(\w+)\(\)", f.read_text(), re.M):
                defs.setdefault(reg, f.name)
        for op in ops:
            for reg in resolver_registrations(tree, op):
                if reg not in defs:
                    raise GestureError(f"no kernel file in {MICRO}/kernels defines Register_{reg} (op {op})")
                names.add(defs[reg])
        for n in list(names):  # X.cc shares X_common.cc with its variants
            common = n[:-3] + "_common.cc"
            if (kdir / common).is_file():
                names.add(common)
        names -= set(_KERNEL_HELPERS)
    out = []
    for n in sorted(names):
        out.append(f"{MICRO}/kernels/cmsis_nn/{n}" if n in variants else f"{MICRO}/kernels/{n}")
    if cmsis_nn:
        chosen = [tree / o for o in out if "/cmsis_nn/" in o]
        out += cmsis_nn_sources(tree, chosen if ops is not None else None)
    return out


_C_DEF_RE = re.compile(r"^[A-Za-z_][\w \*]*?\b(arm_\w+)\s*\(", re.M)  # a definition starts in column 0
_C_USE_RE = re.compile(r"\b(arm_\w+|\w+_table\w*)\b")


def cmsis_nn_sources(tree: Path, callers: list[Path] | None) -> list[str]:
    """CMSIS-NN C files the ``callers`` (TFLM cmsis_nn kernels) reach, following calls from file
    to file (None: every CMSIS-NN file). CMSIS-NN defines one public function per file, in column
    0, and its lookup tables in NNSupportFunctions/arm_nntables.c."""
    files = sorted((tree / "CMSIS-NN" / "Source").rglob("*.c"))
    if callers is None:
        return [str(f.relative_to(tree)) for f in files]
    texts = {f: f.read_text(errors="replace") for f in files}
    where: dict[str, Path] = {}
    for f, text in texts.items():
        for name in _C_DEF_RE.findall(text):
            where.setdefault(name, f)
        for table in re.findall(r"^const\s+[\w\s]+?\b(\w+)\s*\[", text, re.M):
            where.setdefault(table, f)
    todo = [t for c in callers for t in _C_USE_RE.findall(c.read_text())]
    seen: set[Path] = set()
    while todo:
        f = where.get(todo.pop())
        if f is not None and f not in seen:
            seen.add(f)
            todo += _C_USE_RE.findall(texts[f])
    return [str(f.relative_to(tree)) for f in files if f in seen]


def runtime_sources(tree: Path, ops: Iterable[str] | None = None, *, cmsis_nn: bool) -> list[str]:
    return core_sources(tree) + kernel_sources(tree, ops, cmsis_nn=cmsis_nn)


# ----------------------------------------------------------------------------- building

M4_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")


@dataclass(frozen=True)
class Toolchain:
    cc: str
    cxx: str
    ar: str
    arch_flags: tuple[str, ...]


def toolchain(target: Target) -> Toolchain:
    """The compilers for ``target``; a GestureError naming the Debian packages when absent."""
    if target == "host":
        names, arch = ("gcc", "g++", "ar"), ()
    elif target == "cortex-m4":
        names, arch = ("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-ar"), M4_FLAGS
    else:
        raise GestureError(f"unknown target {target!r}; expected host or cortex-m4")
    found = [shutil.which(n) for n in names]
    missing = [n for n, f in zip(names, found) if f is None]
    if missing:
        pkgs = sorted({p for n in missing for p in DEBIAN_PACKAGES.get(n, n).split()})
        raise GestureError(f"{', '.join(missing)} not found; install the Debian packages: {' '.join(pkgs)}")
    return Toolchain(found[0], found[1], found[2], arch)  # type: ignore[arg-type]


@dataclass
class Runtime:
    """A compiled TFLM runtime: link ``library`` and compile against ``include_dirs``/``defines``."""

    target: str
    tree: Path
    library: Path
    include_dirs: list[Path]
    defines: list[str]
    cflags: list[str]  # for C and C++ (arch, optimisation, sections)
    cxxflags: list[str]  # C++ only
    sources: list[str]
    toolchain: Toolchain
    built: int = 0  # objects compiled now (0: all came from the cache)
    extra: dict = field(default_factory=dict)

    def compile_flags(self, cxx: bool = True) -> list[str]:
        """Flags to compile a file that includes the TFLM headers, as the runtime was compiled."""
        return ([*self.cflags, *(self.cxxflags if cxx else [])] + [f"-D{d}" for d in self.defines]
                + [f"-I{d}" for d in self.include_dirs])


def _flags(target: Target, cmsis_nn: bool) -> tuple[list[str], list[str], list[str]]:
    defines = ["TF_LITE_STATIC_MEMORY", "TF_LITE_DISABLE_X86_NEON"] + (["CMSIS_NN"] if cmsis_nn else [])
    cflags = ["-Os" if target == "cortex-m4" else "-O2", "-ffunction-sections", "-fdata-sections",
              "-Wno-unused-parameter", "-Wno-psabi"]
    cxxflags = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"]
    return defines, cflags, cxxflags


def _compiler_id(tc: Toolchain) -> str:
    out = subprocess.run([tc.cxx, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else tc.cxx


def compile_objects(tree: Path, sources: list[str], tc: Toolchain, flags_c: list[str], flags_cxx: list[str],
                    obj_dir: Path, jobs: int | None = None, salt: str = "") -> tuple[list[Path], int]:
    """Compile ``sources`` (relative to ``tree``) into ``obj_dir``, one object per source whose
    name holds the hash of (compiler, flags, path, content): an unchanged file is never compiled
    twice, whatever the session. ``salt`` stands for what the sources include (a digest of the
    headers), so a changed header recompiles everything. Returns the objects and how many were
    compiled now."""
    obj_dir.mkdir(parents=True, exist_ok=True)
    cid = _compiler_id(tc)
    jobs = jobs or os.cpu_count() or 2

    def one(rel: str) -> tuple[Path, bool]:
        src = tree / rel
        is_c = rel.endswith(".c")
        # __FILE__ (TFLM's error messages) and debug info name files relative to the tree: an object
        # cached by one run (a temporary sketch folder) must not print that run's gone path in another
        cmd_flags = [*(flags_c if is_c else flags_cxx), f"-ffile-prefix-map={tree}/="]
        portable = [f.replace(str(tree), "<tree>") for f in cmd_flags]  # the tree's location is not content
        key = hashlib.sha256("\0".join([cid, salt, *portable, rel]).encode() + src.read_bytes()).hexdigest()[:20]
        obj = obj_dir / f"{Path(rel).stem}-{key}.o"
        if obj.is_file():
            return obj, False
        tmp = obj.with_suffix(f".{os.getpid()}.tmp.o")
        cmd = [tc.cc if is_c else tc.cxx, *cmd_flags, "-c", str(src), "-o", str(tmp)]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise GestureError(f"compiling {rel} failed:\n{r.stderr.strip()[-3000:]}")
        os.replace(tmp, obj)
        return obj, True

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, sources))
    return [o for o, _ in results], sum(1 for _, new in results if new)


def headers_digest(tree: Path) -> str:
    """sha256 over every header of the tree (paths and contents), cached beside an extracted tree."""
    h = hashlib.sha256()
    for f in sorted(tree.rglob("*.h")):
        h.update(str(f.relative_to(tree)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def build_runtime(tree: str | Path, target: Target, *, cmsis_nn: bool, cache_dir: str | Path | None = None,
                  ops: Iterable[str] | None = None, jobs: int | None = None) -> Runtime:
    """Compile the TFLM runtime of ``tree`` (all kernels, or only those of ``ops``) for ``target``
    into a cached static library ``libtflm-<key>.a``; return it with the flags to compile
    against it. The key covers the compiler, flags and every source's content."""
    tree = Path(tree)
    tc = toolchain(target)
    defines, cflags, cxxflags = _flags(target, cmsis_nn)
    incs = include_dirs(tree)
    base = [*tc.arch_flags, *cflags] + [f"-D{d}" for d in defines] + [f"-I{d}" for d in incs]
    flags_c = [*base, "-std=c11"]
    flags_cxx = [*base, *cxxflags]
    sources = runtime_sources(tree, sorted(ops) if ops is not None else None, cmsis_nn=cmsis_nn)
    cache = Path(cache_dir) if cache_dir is not None else build_cache_root()
    obj_dir = cache / f"obj-{target}{'-cmsis' if cmsis_nn else ''}"
    objs, built = compile_objects(tree, sources, tc, flags_c, flags_cxx, obj_dir, jobs, salt=headers_digest(tree))
    key = hashlib.sha256("\n".join(o.name for o in objs).encode()).hexdigest()[:16]
    lib = cache / f"libtflm-{target}-{key}.a"
    if not lib.is_file():
        tmp = lib.with_suffix(f".{os.getpid()}.tmp.a")
        tmp.unlink(missing_ok=True)
        r = subprocess.run([tc.ar, "rcs", str(tmp), *map(str, objs)], capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise GestureError(f"{tc.ar} failed: {r.stderr.strip()}")
        os.replace(tmp, lib)
    return Runtime(target, tree, lib, incs, defines, [*tc.arch_flags, *cflags], cxxflags, sources, tc, built,
                   {"obj_dir": str(obj_dir)})


def tree_info(tree: Path) -> dict[str, str]:
    """What export.json and the README record about the tree: the commits only when the cache
    vouches for it (the pinned tarball, or files checked against the pinned manifest)."""
    def marker(name: str) -> str:
        f = tree.parent / name
        return f.read_text().strip() if f.is_file() else ""

    sha, manifest = marker("SHA256"), marker("MANIFEST")
    if sha == PINNED_SHA256 or (manifest and manifest == manifest_digest()):
        return {"tflm_commit": TFLM_COMMIT, "cmsis_nn_commit": CMSIS_NN_COMMIT,
                "tarball_sha256": sha or "n/a (fetched from the upstream archives)", "manifest_sha256": manifest_digest()}
    # a folder or another tarball: we cannot vouch for its commit
    return {"tflm_commit": "unknown (not the pinned tarball)", "tarball_sha256": sha or "n/a (a folder)"}


# ----------------------------------------------------------------------------- bundling into a sketch

BUNDLE_DIR = "src/tflm"  # inside the sketch folder: Arduino compiles src/ recursively
DEFINES_HEADER = "gk_tflm_defines.h"
_INCLUDE_RE = re.compile(r'^([ \t]*#[ \t]*include[ \t]*)([<"])([^>"\n]+)[>"]', re.M)
_MACRO_RE = re.compile(r"\b(TF_LITE_STATIC_MEMORY|CMSIS_NN)\b")
# C++17 type-trait variable templates -> their C++11 spelling: the Arduino mbed core compiles C++
# with -std=gnu++14 (variants/*/cxxflags.txt) and a sketch cannot change that; GCC accepts the
# tree's other C++17 construct (`if constexpr`) in gnu++14 as an extension.
_TRAIT_V_RE = re.compile(r"\bstd::(is_\w+)_v<([^<>]*)>")
_DEFINES = """// gk_tflm_defines.h: generated by gesture-kit. The build flags TFLM needs, as a header,
// because an Arduino sketch cannot pass -D flags: every bundled file that tests one of these
// macros includes this header first, so all of them see one value.
#pragma once
#ifndef TF_LITE_STATIC_MEMORY
#define TF_LITE_STATIC_MEMORY
#endif
#if defined(__ARM_ARCH) && !defined(CMSIS_NN)
#define CMSIS_NN  // the CMSIS-NN kernel variants are bundled for Cortex-M
#endif
"""


def _find_include(name: str, here: Path, quoted: bool, incs: list[Path]) -> Path | None:
    for d in ([here] if quoted else []) + incs:
        cand = (d / name)
        if cand.is_file():
            return cand.resolve()
    return None


def bundle_runtime(tree: Path, ops: Iterable[str], *, entry_includes: Iterable[str],
                   cmsis_nn: bool = True) -> dict[str, bytes]:
    """The TFLM runtime and exactly ``ops``' kernels as sketch files: ``{path in the sketch: bytes}``.

    Every source (``.cc`` renamed ``.cpp``: the Arduino builder compiles .c/.cpp) and every header
    they or ``entry_includes`` reach goes under ``src/tflm/`` with its tree-relative path, and
    every ``#include`` that resolves inside the tree is rewritten relative to the including file,
    because Arduino compiles ``src/`` but puts no include path on it; ``std::is_X_v<T>`` becomes
    ``std::is_X<T>::value`` for the core's C++14. Each upstream tree's LICENSE goes with it."""
    tree = Path(tree).resolve()
    incs = [d.resolve() for d in include_dirs(tree)]
    sources = [(tree / s).resolve() for s in runtime_sources(tree, list(ops), cmsis_nn=cmsis_nn)]
    todo = list(sources)
    for name in entry_includes:
        found = _find_include(name, tree, True, incs)
        if found is None:
            raise GestureError(f"{tree}: {name} not found in the TFLM tree")
        todo.append(found)
    files: dict[Path, str] = {}
    while todo:
        f = todo.pop()
        if f in files:
            continue
        files[f] = text = f.read_text(errors="surrogateescape")
        for _, kind, name in _INCLUDE_RE.findall(text):
            dep = _find_include(name, f.parent, kind == '"', incs)
            if dep is not None and tree in dep.parents:
                todo.append(dep)

    def dest(f: Path) -> str:
        rel = f.relative_to(tree).as_posix()
        return f"{BUNDLE_DIR}/{rel[:-3]}.cpp" if rel.endswith(".cc") else f"{BUNDLE_DIR}/{rel}"

    out: dict[str, bytes] = {}
    defines_at = f"{BUNDLE_DIR}/{DEFINES_HEADER}"
    for f, text in files.items():
        here = Path(dest(f)).parent

        def rewrite(m: re.Match, f: Path = f, here: Path = here) -> str:
            dep = _find_include(m.group(3), f.parent, m.group(2) == '"', incs)
            if dep is None or tree not in dep.parents:
                return m.group(0)
            return f'{m.group(1)}"{os.path.relpath(dest(dep), here).replace(os.sep, "/")}"'

        new = _TRAIT_V_RE.sub(r"std::\1<\2>::value", _INCLUDE_RE.sub(rewrite, text))
        if _MACRO_RE.search(text):
            new = f'#include "{os.path.relpath(defines_at, here)}"  // gesture-kit: TFLM build flags\n' + new
        out[dest(f)] = new.encode("utf-8", errors="surrogateescape")
    out[defines_at] = _DEFINES.encode()
    for top in {f.relative_to(tree).parts[0] for f in files}:
        lic = tree / top / "LICENSE"
        if lic.is_file():
            out[f"{BUNDLE_DIR}/{top}/LICENSE"] = lic.read_bytes()
    return out


def bundle_sources(files: Iterable[str]) -> list[str]:
    """The compiled files (.c/.cpp) among bundled sketch paths."""
    return sorted(f for f in files if f.startswith(BUNDLE_DIR + "/") and f.endswith((".c", ".cpp")))
