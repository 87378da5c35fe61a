"""`gesture capture --continuous`: one long stream from any link, crash-safe chunks, prompted events."""
from __future__ import annotations

import numpy as np

import gesture_cli
from capture import protocol as p
from capture.streams import read_stream
from capture.virtual.url import source_from_url
from conftest import DATA


def test_continuous_capture_over_a_virtual_board(tmp_path, capsys):
    url = f"virtual://replay?data={DATA}&rate=25&channels=3&speed=0&seed=4"
    out = tmp_path / "walk"
    rc = gesture_cli.main(["capture", "--url", url, "--continuous", "--minutes", "0.5", "--prompt", "wing,ring",
                           "--prompt-every", "3,5", "--chunk-seconds", "5", "--seed", "1", "--data", str(out),
                           "--subject", "tester", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    s = read_stream(out)
    assert s.rate_hz == 25 and s.channels == ("ax", "ay", "az") and s.meta["subject"] == "tester"
    assert 30.0 <= s.duration_s < 31.0
    assert np.allclose(np.diff(s.t_ms), 40.0)  # the board's clock: 1/25 s apart, nothing lost
    assert len(list(out.glob("chunk_*.csv"))) == int(np.ceil(len(s.values) / 125))
    # prompts every 3-5 s, each marked with its label at the device time it was shown
    assert 5 <= len(s.events) <= 10 and {e.label for e in s.events} <= {"wing", "ring"}
    gaps = np.diff([0.0] + [e.onset_ms for e in s.events])
    assert np.all(gaps >= 3000 - 40) and np.all(gaps <= 5000 + 1000)
    # the stream is exactly what the board sent (regenerated from the same URL and seed)
    src, _ = source_from_url(url)
    blocks, n = [], 0
    for b, _ in src.stream():  # a looping source: take what the recording needs
        blocks.append(b)
        n += len(b)
        if n >= len(s.values):
            break
    sent = np.vstack(blocks)[:len(s.values)]
    assert np.array_equal(p.units_to_counts(s.values), sent)
    assert f"stream {out}" in cap.out and f"{len(s.events)} events" in cap.out


def test_continuous_capture_bad_options_are_one_line_errors(tmp_path, capsys):
    url = f"virtual://replay?data={DATA}&rate=25&channels=3&speed=0"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    for args, msg in ((["--label", "wing"], "--label is for takes"),
                      (["--prompt-every", "5"], "--prompt-every"),
                      (["--minutes", "0"], "--minutes"),
                      (["--prompt", "no way"], "label"),
                      ([], "not empty")):
        rc = gesture_cli.main(["capture", "--url", url, "--continuous", "--data", str(tmp_path / "full"), "--quiet", *args])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error:") and msg in err and len(err.strip().splitlines()) == 1, (args, err)
