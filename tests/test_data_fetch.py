"""`gesture data fetch`: download (from a local server standing in for the official host), check, import, attribute."""
from __future__ import annotations

import functools
import http.server
import threading

import pytest

from conftest import MAGIC_WAND_ARCHIVE
from gesture_cli import main


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_fetch_downloads_checks_imports_and_attributes(server, tmp_path, capsys):
    if not MAGIC_WAND_ARCHIVE.is_file():
        pytest.skip(f"no real recordings: {MAGIC_WAND_ARCHIVE} is absent")
    www, base = server
    (www / "data.tar.gz").write_bytes(MAGIC_WAND_ARCHIVE.read_bytes())
    out = tmp_path / "mw"
    assert main(["data", "fetch", "magic_wand", "--out", str(out), "--url", f"{base}/data.tar.gz"]) == 0
    assert "imported 802 takes" in capsys.readouterr().out
    from training.dataset import load_dataset
    ds = load_dataset(out)
    assert ds.labels == ["negative", "ring", "slope", "wing"] and len(ds.takes) == 802
    assert ds.manifest["test_subjects"] == ["liucx", "zhangxy", "negative_1"]
    text = (out / "ATTRIBUTION.md").read_text()
    assert "Apache-2.0" in text and "download.tensorflow.org" in text
    # a second fetch into the same folder refuses before downloading
    assert main(["data", "fetch", "magic_wand", "--out", str(out), "--url", f"{base}/data.tar.gz"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_fetch_refuses_a_file_with_the_wrong_checksum_and_leaves_nothing(server, tmp_path, capsys):
    www, base = server
    (www / "data.tar.gz").write_bytes(b"not the archive")
    out = tmp_path / "mw"
    assert main(["data", "fetch", "magic_wand", "--out", str(out), "--url", f"{base}/data.tar.gz"]) == 2
    err = capsys.readouterr().err
    assert "sha256" in err and "Traceback" not in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["www"]  # no temp folder left


def test_fetch_offline_says_what_to_download_and_where(tmp_path, capsys):
    out = tmp_path / "mw"
    assert main(["data", "fetch", "magic_wand", "--out", str(out), "--url", "http://127.0.0.1:9/data.tar.gz"]) == 2
    err = capsys.readouterr().err
    assert "download.tensorflow.org/models/tflite/magic_wand/data.tar.gz" in err and "--file" in err
    assert not out.exists()
    assert main(["data", "fetch", "nope"]) == 2
    assert "known: magic_wand" in capsys.readouterr().err


def test_gesture_data_dir_still_summarises(capsys):
    from conftest import DATA
    assert main(["data", str(DATA)]) == 0
    assert "sim06, sim07" in capsys.readouterr().out
