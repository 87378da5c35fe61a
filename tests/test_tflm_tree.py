"""training.tflm_tree: finding/extracting/downloading the pinned TFLM tree, its source lists, the
cached runtime build (linked and run on the host against the Python TFLM interpreter)."""
from __future__ import annotations

import difflib
import functools
import hashlib
import http.server
import shutil
import subprocess
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import os

from conftest import need_tool

import gesture_cli

from capture.errors import GestureError
from training import tflm_tree as tt


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv(tt.ENV_TREE, raising=False)
    monkeypatch.setenv(tt.ENV_CACHE, str(tmp_path / "cache"))
    return tmp_path / "cache"


def need_tarball() -> Path:
    """The pinned ``tflm-src.tar.gz`` (third-party sources: never in the repository or in CI),
    where a developer has one and names it in $GESTURE_TFLM_TARBALL."""
    path = Path(os.environ.get("GESTURE_TFLM_TARBALL", "/nonexistent"))
    if not path.is_file():
        pytest.skip("no pinned tflm-src.tar.gz: set $GESTURE_TFLM_TARBALL to a copy to run the tarball cases")
    return path


def test_find_tree_explicit_env_cache_and_errors(cache, tmp_path, monkeypatch):
    assert tt.find_tree() is None  # nothing given, empty cache
    tarball = need_tarball()
    tree = tt.find_tree(tarball)
    assert tree is not None and tt.is_tree(tree) and cache in tree.parents
    assert (tree.parent / "SHA256").read_text().strip() == tt.PINNED_SHA256 == tt.file_sha256(tarball)
    assert tt.tree_info(tree)["tflm_commit"] == tt.TFLM_COMMIT
    mtime = (tree / tt.MICRO / "micro_interpreter.h").stat().st_mtime_ns
    assert tt.find_tree(tarball) == tree  # extracted once
    assert (tree / tt.MICRO / "micro_interpreter.h").stat().st_mtime_ns == mtime
    assert tt.find_tree() == tree  # now found in the cache
    monkeypatch.setenv(tt.ENV_TREE, str(tree))  # a folder via the environment
    assert tt.find_tree() == tree.resolve()
    assert tt.tree_info(tree.resolve())["tflm_commit"] == tt.TFLM_COMMIT
    monkeypatch.setenv(tt.ENV_TREE, str(tmp_path))
    with pytest.raises(GestureError, match=r"GESTURE_TFLM.*not a TFLM tree"):
        tt.find_tree()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(GestureError, match="bad.tar.gz: not a readable TFLM source tarball"):
        tt.find_tree(bad)
    with pytest.raises(GestureError, match="no such folder or tarball"):
        tt.find_tree(tmp_path / "missing")


@pytest.fixture()
def http_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args) -> None:  # stderr stays the code under test's
            pass

    handler = functools.partial(Quiet, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_tree_downloads_verifies_and_extracts(cache, http_server, monkeypatch):
    tarball = need_tarball()
    www, url = http_server
    (www / tt.TARBALL_NAME).write_bytes(tarball.read_bytes())
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (www / "wrong.tar.gz").write_bytes(bytes(data))
    with pytest.raises(GestureError, match="is not the pinned .* discarded"):
        tt.fetch_tree(f"{url}/wrong.tar.gz")
    assert tt.find_tree() is None and not list((cache / "tflm").glob(".download-*"))
    with pytest.raises(GestureError, match="could not download the TFLM tree from .*absent.tar.gz: HTTP Error 404"):
        tt.fetch_tree(f"{url}/absent.tar.gz")
    monkeypatch.setenv(tt.ENV_URL, f"{url}/{tt.TARBALL_NAME}")
    tree = tt.fetch_tree()  # the tarball mirror of $GESTURE_TFLM_URL, not the upstream archives
    assert tt.is_tree(tree) and tt.find_tree() == tree and tree.parent.name == tt.pinned_key()
    assert tt.tree_info(tree)["tarball_sha256"] == tt.PINNED_SHA256
    assert sorted(p.name for p in (cache / "tflm").iterdir()) == [tt.pinned_key()]


# ----------------------------------------------------------------------------- the upstream archives

def test_manifest_is_the_pinned_tarball(tflm_tree):
    """tflm_pinned.sha256 lists exactly the files of the pinned tarball with their sha256, each
    under one upstream folder: it is what a fetch from upstream must reproduce."""
    text = (Path(tt.__file__).parent / tt.MANIFEST_NAME).read_text()
    assert tt.manifest_text(tflm_tree) == text
    man = tt.pinned_manifest()
    assert {p.split("/")[0] for p in man} == {u.folder for u in tt.UPSTREAMS} and len(man) == text.count("\n")
    assert f"{tt.MICRO}/micro_interpreter.h" in man and not any(p.endswith("_test.cc") for p in man)
    with pytest.raises(GestureError, match=r"x.sha256:2: expected 'SHA256  FOLDER/PATH'.*'[0-9a-f]{64}  ../etc'"):
        tt.parse_manifest(f"{'0' * 64}  ruy/LICENSE\n{'0' * 64}  ../etc\n", "x.sha256")
    with pytest.raises(GestureError, match="x.sha256:1: .*each path once"):
        tt.parse_manifest(f"{'0' * 64}  bazel/BUILD\n", "x.sha256")


@dataclass
class Upstream:
    """What the fake GitHub serves: per upstream folder, the archive's files (relative to its top
    folder), flatbuffers unpatched, and the sha256 of the patch that turns it into the pinned one."""

    files: dict[str, dict[str, bytes]]
    patch_sha256: str

    def serve(self, www: Path, changed: dict[str, bytes] | None = None, skip: str | None = None) -> None:
        """Write the zips in GitHub's /OWNER/REPO/archive/REF.zip layout; ``changed`` replaces
        files by tree path, ``skip`` leaves one folder's archive out."""
        changed = changed or {}
        for up in tt.UPSTREAMS:
            path = www / up.repo / "archive" / f"{up.ref}.zip"
            shutil.rmtree(path.parent, ignore_errors=True)
            if up.folder == skip:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            files = {**self.files[up.folder],
                     **{p.split("/", 1)[1]: b for p, b in changed.items() if p.split("/", 1)[0] == up.folder}}
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
                zf.mkdir(up.top)  # like GitHub's: folder entries, then files
                for d in sorted({"/".join(r.split("/")[:i]) for r in files for i in range(1, r.count("/") + 1)}):
                    zf.mkdir(f"{up.top}/{d}")
                for rel in sorted(files):
                    zf.writestr(f"{up.top}/{rel}", files[rel])


FB_BASE = "include/flatbuffers/base.h"
EXTRAS = {"README.md": b"not kept\n", "tests/extra_test.cc": b"int main() {}\n", "docs/index.md": b"# docs\n"}


@pytest.fixture(scope="module")
def upstream(tflm_tree) -> Upstream:
    """The pinned tree split back into six upstream archives, with files the prune must drop."""
    files: dict[str, dict[str, bytes]] = {u.folder: dict(EXTRAS) for u in tt.UPSTREAMS}
    for f in tflm_tree.rglob("*"):
        if f.is_file():
            folder, rel = f.relative_to(tflm_tree).as_posix().split("/", 1)
            files[folder][rel] = f.read_bytes()
    files["tflite-micro"]["tensorflow/lite/micro/kernels/xtensa/conv.cc"] = b"// pruned\n"
    pinned = files["flatbuffers"][FB_BASE].decode().splitlines(keepends=True)
    unpatched = [l for l in pinned if "TFLM" not in l]
    assert unpatched != pinned and pinned[-1].endswith("\n")
    diff = "".join(difflib.unified_diff(unpatched, pinned, f"a/{FB_BASE}", f"b/{FB_BASE}"))
    patch = f"diff --git a/{FB_BASE} b/{FB_BASE}\n{diff}".encode()
    files["flatbuffers"][FB_BASE] = "".join(unpatched).encode()
    files["tflite-micro"][tt.FLATBUFFERS_PATCH] = patch
    return Upstream(files, hashlib.sha256(patch).hexdigest())


def nothing_kept(cache: Path) -> bool:
    return not (cache / "tflm").is_dir() or not any((cache / "tflm").iterdir())


def test_fetch_from_upstream_builds_the_pinned_tree(cache, http_server, upstream, monkeypatch, capsys):
    www, url = http_server
    upstream.serve(www)
    monkeypatch.setattr(tt, "FLATBUFFERS_PATCH_SHA256", upstream.patch_sha256)  # the pin the CLI uses
    monkeypatch.setenv(tt.ENV_UPSTREAM, url)
    assert gesture_cli.main(["tflm", "fetch"]) == 0
    out, err = capsys.readouterr()
    tree = Path(out.strip())
    assert tt.is_tree(tree) and tree.parent == cache / "tflm" / tt.pinned_key()
    assert [l.split(":")[0] for l in err.splitlines()] == [u.label for u in tt.UPSTREAMS]
    assert f"tflite-micro 90b983c: {sum(p.startswith('tflite-micro/') for p in tt.pinned_manifest())} files verified" in err
    assert tt.parse_manifest(tt.manifest_text(tree), "fetched") == tt.pinned_manifest()  # patched, pruned, exact
    assert not (tree / "flatbuffers" / "README.md").exists() and not (tree / "tflite-micro" / tt.FLATBUFFERS_PATCH).exists()
    assert sorted(p.name for p in (cache / "tflm").iterdir()) == [tt.pinned_key()]  # no temp folder left
    assert tt.find_tree() == tree
    info = tt.tree_info(tree)
    assert info["tflm_commit"] == tt.TFLM_COMMIT and info["manifest_sha256"] == tt.manifest_digest()
    assert tt.find_tree(need_tarball()) == tree  # the pinned tarball is the same cache entry: not extracted again
    assert not (tree.parent / "SHA256").exists()
    shutil.rmtree(www / "tensorflow")  # already there: no download
    lines: list[str] = []
    assert tt.fetch_tree(base_url=url, echo=lines.append) == tree and "already in the cache" in lines[0]
    (tree / "ruy" / "LICENSE").write_text("edited\n")
    with pytest.raises(GestureError, match=r"pinned tree in the cache\): ruy/LICENSE: expected sha256 .* delete that folder"):
        tt.fetch_tree(base_url=url)


def test_fetch_from_upstream_failures_keep_nothing(cache, http_server, upstream, monkeypatch, tmp_path):
    www, url = http_server
    sha = upstream.patch_sha256
    rel = "CMSIS-NN/Source/SoftmaxFunctions/arm_softmax_s8.c"
    want = tt.pinned_manifest()[rel]
    upstream.serve(www, changed={rel: upstream.files["CMSIS-NN"][rel.split("/", 1)[1]] + b"\n"})
    with pytest.raises(GestureError, match=rf"/ARM-software/CMSIS-NN/archive/{tt.CMSIS_NN_COMMIT}\.zip: {rel}: "
                                           rf"expected sha256 {want} \(tflm_pinned.sha256\), got [0-9a-f]{{64}}; the download was discarded"):
        tt.fetch_tree(base_url=url, patch_sha256=sha)
    assert nothing_kept(cache)
    gone = "gemmlowp/fixedpoint/fixedpoint.h"
    del_files = dict(upstream.files["gemmlowp"])
    del del_files[gone.split("/", 1)[1]]
    Upstream({**upstream.files, "gemmlowp": del_files}, sha).serve(www)
    with pytest.raises(GestureError, match=rf"gemmlowp/archive/.*\.zip: {gone}: expected sha256 .*, got no such file"):
        tt.fetch_tree(base_url=url, patch_sha256=sha)
    assert nothing_kept(cache)
    upstream.serve(www)
    with pytest.raises(GestureError, match=rf"{tt.FLATBUFFERS_PATCH}: expected sha256 {tt.FLATBUFFERS_PATCH_SHA256}, got {sha}"):
        tt.fetch_tree(base_url=url)  # the real pin: the test's patch is not TFLM's
    assert nothing_kept(cache)
    upstream.serve(www, changed={f"flatbuffers/{FB_BASE}": b"something else\n"})
    with pytest.raises(GestureError, match=r"flatbuffers/archive/refs/tags/v25.9.23.zip: .*flatbuffers.patch .*does not apply \(patch"):
        tt.fetch_tree(base_url=url, patch_sha256=sha)
    assert nothing_kept(cache)
    upstream.serve(www, skip="ruy")
    monkeypatch.setenv(tt.ENV_UPSTREAM, url)  # the other host, from the environment
    with pytest.raises(GestureError, match=rf"could not download ruy d371283 from {url}/google/ruy/archive/{tt.RUY_COMMIT}.zip: HTTP Error 404"):
        tt.fetch_tree(patch_sha256=sha)
    assert nothing_kept(cache)
    ruy_zip = www / "google" / "ruy" / "archive" / f"{tt.RUY_COMMIT}.zip"
    ruy_zip.parent.mkdir(parents=True)
    ruy_zip.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(GestureError, match=r"ruy/archive/.*\.zip: not a readable zip archive"):
        tt.fetch_tree(patch_sha256=sha)
    with zipfile.ZipFile(ruy_zip, "w") as zf:
        zf.writestr("ruy-master/LICENSE", b"x")
    with pytest.raises(GestureError, match=rf"no folder ruy-{tt.RUY_COMMIT}/ in the archive \(it holds ruy-master\)"):
        tt.fetch_tree(patch_sha256=sha)
    assert nothing_kept(cache)
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(GestureError, match=r"^neither `patch` nor `git` is installed: .*Debian package: patch\)$"):
        tt.fetch_tree(patch_sha256=sha)
    assert nothing_kept(cache)


def test_fetch_from_upstream_applies_the_patch_with_git_when_patch_is_absent(cache, http_server, upstream, monkeypatch,
                                                                               tmp_path):
    git = need_tool("git")
    www, url = http_server
    upstream.serve(www)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "git").symlink_to(git)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    tree = tt.fetch_tree(base_url=url, patch_sha256=upstream.patch_sha256)
    assert tt.file_sha256(tree / "flatbuffers" / FB_BASE) == tt.pinned_manifest()[f"flatbuffers/{FB_BASE}"]
    assert tt.find_tree() == tree


def test_kernel_selection_follows_the_ops(tflm_tree):
    ops = ["CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX", "RESHAPE"]
    ref = [Path(s).name for s in tt.kernel_sources(tflm_tree, ops, cmsis_nn=False)]
    assert ref == ["conv.cc", "conv_common.cc", "fully_connected.cc", "fully_connected_common.cc", "reduce.cc",
                   "reduce_common.cc", "reshape.cc", "reshape_common.cc", "softmax.cc", "softmax_common.cc"]
    cm = tt.kernel_sources(tflm_tree, ops, cmsis_nn=True)
    assert f"{tt.MICRO}/kernels/cmsis_nn/conv.cc" in cm and f"{tt.MICRO}/kernels/reduce.cc" in cm
    assert f"{tt.MICRO}/kernels/conv.cc" not in cm
    c_files = {Path(s).name for s in cm if s.endswith(".c")}
    assert {"arm_convolve_wrapper_s8.c", "arm_fully_connected_s8.c", "arm_softmax_s8.c"} <= c_files
    assert "arm_depthwise_conv_s8.c" not in c_files  # not reached from these kernels
    with pytest.raises(GestureError, match="TILE"):
        tt.kernel_sources(tflm_tree, ["TILE"], cmsis_nn=False)


HOST_MAIN = r"""
#include <stdio.h>
#include "gk_config.h"
#include "gk_model.h"
#include "gk_package_parse.h"
#include "model_data.h"
static void log_line(const char* s) { fprintf(stderr, "%s\n", s); }
int main() {
  static gk::Config cfg;
  gk::PackageError err;
  const uint8_t* payload = 0;
  size_t len = 0;
  if (!gk::parse_package(g_package_data, g_package_data_len, GK_BOARD_NAME, true, &cfg, &payload, &len, &err)) return 2;
  if (!gk::model_setup(cfg, payload, len, log_line)) return 3;
  static int8_t in[GK_MAX_WINDOW * GK_MAX_CHANNELS];
  int8_t out[GK_MAX_LABELS];
  const size_t n_in = static_cast<size_t>(cfg.input_bytes()), n_out = static_cast<size_t>(cfg.n_labels);
  while (fread(in, 1, n_in, stdin) == n_in) {
    if (!gk::model_invoke(in, out)) return 4;
    fwrite(out, 1, n_out, stdout);
  }
  fprintf(stderr, "arena %lu\n", (unsigned long)gk::model_arena_used());
  return 0;
}
"""


def test_host_runtime_runs_the_exported_model_like_python(tflm_tree, small_model, tmp_path):
    """build_runtime(host) + the sketch's gk_model.cpp/model_data.cpp, unmodified: same int8 bytes
    as the tflite_micro Python interpreter on real windows."""
    gxx = need_tool("g++")
    from training.evaluate import TflmModel
    from training.export import export_sketch
    from training.tflm_ops import firmware_ops, model_ops

    sketch = tmp_path / "gesture_classifier"
    export_sketch(small_model.model_dir, sketch)
    tflite = (small_model.model_dir / "model.tflite").read_bytes()
    # the sketch's resolver: every op of the model families (a pushed model may use any of them)
    rt = tt.build_runtime(tflm_tree, "host", cmsis_nn=False, ops=firmware_ops(model_ops(tflite)))
    (tmp_path / "main.cpp").write_text(HOST_MAIN)
    exe = tmp_path / "model_host"
    cmd = [gxx, *rt.compile_flags(), "-I", str(sketch), str(tmp_path / "main.cpp"), str(sketch / "gk_model.cpp"),
           str(sketch / "model_data.cpp"), str(rt.library), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    py = TflmModel(tflite)
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(20, int(np.prod(py.input_shape))), dtype=np.int8)
    out = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, check=True).stdout
    cpp = np.frombuffer(out, np.int8).reshape(20, -1)
    assert np.array_equal(cpp, np.stack([py.predict(row) for row in x]))
