"""training.tflm_tree: finding/extracting/downloading the pinned TFLM tree, its source lists, the
cached runtime build (linked and run on the host against the Python TFLM interpreter)."""
from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_TFLM, need_tool

from capture.errors import GestureError
from training import tflm_tree as tt


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv(tt.ENV_TREE, raising=False)
    monkeypatch.setenv(tt.ENV_CACHE, str(tmp_path / "cache"))
    return tmp_path / "cache"


def need_tarball() -> Path:
    if not SHARED_TFLM.is_file():
        pytest.skip(f"no TFLM source tree: {SHARED_TFLM} is absent")
    return SHARED_TFLM


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
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_tree_downloads_verifies_and_extracts(cache, http_server):
    tarball = need_tarball()
    www, url = http_server
    (www / tt.TARBALL_NAME).write_bytes(tarball.read_bytes())
    data = bytearray(tarball.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (www / "wrong.tar.gz").write_bytes(bytes(data))
    with pytest.raises(GestureError, match="is not the pinned .* discarded"):
        tt.fetch_tree(f"{url}/wrong.tar.gz")
    assert tt.find_tree() is None and not list((cache / "tflm").glob(".download-*"))
    with pytest.raises(GestureError, match="could not download"):
        tt.fetch_tree(f"{url}/absent.tar.gz")
    with pytest.raises(GestureError, match="GESTURE_TFLM_URL"):
        tt.fetch_tree(None)
    tree = tt.fetch_tree(f"{url}/{tt.TARBALL_NAME}")
    assert tt.is_tree(tree) and tt.find_tree() == tree
    assert tt.tree_info(tree)["tarball_sha256"] == tt.PINNED_SHA256


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
static void log_line(const char* s) { fprintf(stderr, "%s\n", s); }
int main() {
  if (!gk::model_setup(log_line)) return 3;
  static int8_t in[GK_INPUT_BYTES];
  int8_t out[GK_N_LABELS];
  while (fread(in, 1, sizeof(in), stdin) == sizeof(in)) {
    if (!gk::model_invoke(in, out)) return 4;
    fwrite(out, 1, sizeof(out), stdout);
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
    from training.tflm_ops import model_ops

    sketch = tmp_path / "gesture_classifier"
    export_sketch(small_model.model_dir, sketch)
    tflite = (small_model.model_dir / "model.tflite").read_bytes()
    rt = tt.build_runtime(tflm_tree, "host", cmsis_nn=False, ops=model_ops(tflite))
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
