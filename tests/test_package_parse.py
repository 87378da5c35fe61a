"""The board's package parser (gk_package_parse.h) and hashes (gk_sha256.h, gk_crc32.h) against Python.

The push-ready classifier takes its whole configuration from a model package, the built-in one and
a pushed one alike, through gk::parse_package. These tests compile it with g++ -Wall -Wextra -Werror
(tests/package_parse_driver.cpp) and check that (1) a package training.package builds parses to the
very fields training.package.parse_package reads, for several boards and configurations, and (2) a
damaged or out-of-range package is refused by both with the same PushError and the same byte offset,
for hand-made faults of every check and for a few hundred random ones.
"""
from __future__ import annotations

import hashlib
import random
import struct
import subprocess
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from capture import protocol as p
from conftest import need_tool
from training import package as pkg
from training.model_dir import load_model_dir

TEMPLATES = Path(__file__).resolve().parents[1] / "firmware" / "templates" / "gesture_classifier"
DRIVER = Path(__file__).resolve().parent / "package_parse_driver.cpp"
FLAGS = ("-std=c++11", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    gxx = need_tool("g++")
    d = tmp_path_factory.mktemp("pkgparse")
    (d / "gk_package.h").write_text(pkg.c_header())
    (d / "gesture_protocol.h").write_text(p.c_header())
    exe = d / "package_parse_driver"
    cmd = [gxx, *FLAGS, f"-I{d}", f"-I{TEMPLATES}", str(DRIVER), "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe


def cpp_parse(exe: Path, data: bytes, board: str | None = None, check: bool = True) -> dict[str, str] | tuple[int, int, str]:
    r = subprocess.run([str(exe), "parse", board or "-", "1" if check else "0"], input=data, capture_output=True, check=True)
    lines = r.stdout.decode("ascii").splitlines()
    declared = int(lines.pop(0).split()[1])
    if declared:  # what the header says the package spans: a whole package of this format, within the maxima
        assert data[:4] == pkg.MAGIC and declared <= pkg.MAX_PACKAGE_BYTES
        assert declared == sum(struct.unpack_from("<HI", data, 6)) if len(data) >= 128 else declared == 0
    if lines[0].startswith("error "):
        _, code, offset, text = lines[0].split(" ", 3)
        return int(code), int(offset), text
    assert lines[0] == "ok"
    return dict(line.split(" ", 1) if " " in line else (line, "") for line in lines[1:])


def py_parse(data: bytes, board: str | None = None, check: bool = True) -> pkg.Package | tuple[int, int, str]:
    try:
        return pkg.parse_package(data, board=board, check_payload=check)
    except pkg.PackageError as e:
        return int(e.code), int(e.offset or 0), e.reason


def expected_fields(got: pkg.Package) -> dict[str, str]:
    j = lambda v: ",".join(str(x) for x in v)  # noqa: E731
    out = {k: str(getattr(got, k)) for k in (
        "board", "model_sha256", "payload_sha256", "payload_crc32", "header_length", "imu_rate_hz", "model_rate_hz",
        "resample_step", "window", "stride", "smoothing", "motion_threshold", "confidence_threshold",
        "input_zero_point", "unknown_label_index", "detect_average", "detect_threshold", "detect_min_count",
        "detect_suppression", "arena_bytes")}
    out.update(channel_index=j(got.channel_index), motion_channel=j(pkg.motion_channels(got)), mean=j(got.mean),
               mult=j(got.mult), lowpass=j(got.lowpass), labels=j(got.labels),
               payload=f"{got.header_length} {len(got.payload)}")
    return out


def refix(data: bytearray) -> bytearray:
    """Recompute the header CRC32 (so a changed field reaches the check that is about it)."""
    h = struct.unpack_from("<H", data, 6)[0]
    if 100 <= h <= len(data):
        struct.pack_into("<I", data, h - 4, zlib.crc32(bytes(data[:h - 4])))
    return data


@pytest.fixture(scope="module")
def packages(small_model) -> dict[str, bytes]:
    """The small model's package for both boards, and for three other configurations (the parser
    does not look inside the .tflite, so the bytes serve for any)."""
    cfg, tflite, report = load_model_dir(small_model.model_dir)
    sha = report["model_sha256"]
    out = {b: pkg.build_package(small_model.model_dir, b) for b in ("nano33ble", "nano33ble_rev2")}
    other = replace(cfg, window=40, stride=5, model_rate_hz=50, channels=["az", "gx", "ax"],
                    mean=[100, -2000, 32767], mult=[123456, 1, (1 << 46) - 1], labels=["a", "b-2", "C_3", "d", "e", "f"],
                    unknown_label=None, smoothing=3, confidence_threshold=200, input_zero_point=-5, motion_threshold=-7)
    out["other"] = pkg.encode(other, tflite, board="nano33ble", model_sha256=sha, arena_bytes=pkg.MAX_ARENA_BYTES)
    most = replace(cfg, window=pkg.MAX_WINDOW, stride=pkg.MAX_WINDOW, model_rate_hz=119, channels=list(pkg.IMU_CHANNELS),
                   mean=[0] * 6, mult=[1] * 6, labels=[f"L{i}" for i in range(pkg.MAX_LABELS)], unknown_label="L3",
                   smoothing=pkg.MAX_SMOOTHING)
    out["most"] = pkg.encode(most, tflite, board="nano33ble_rev2", model_sha256=sha, arena_bytes=1)
    up = replace(cfg, model_rate_hz=119 * pkg.MAX_UPSAMPLE, window=16, stride=1)  # the most upsampling allowed
    out["upsample"] = pkg.encode(up, tflite, board="nano33ble", model_sha256=sha, arena_bytes=4096)
    return out


# ----------------------------------------------------------------------------- hashes

def test_sha256_and_crc32_match_hashlib_and_zlib_in_any_pieces(driver):
    def cpp(data: bytes, *chunks: int) -> tuple[str, int]:
        r = subprocess.run([str(driver), "hash", *map(str, chunks)], input=data, capture_output=True, check=True)
        digest, crc = r.stdout.decode().split()
        return digest, int(crc, 16)

    nist = [b"", b"abc", b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            b"a" * 1_000_000]
    assert cpp(b"abc", 1)[0] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    rng = random.Random(5)
    cases = [(d, (7,)) for d in nist] + [(rng.randbytes(n), (n or 1,)) for n in range(0, 201)]
    cases += [(rng.randbytes(5000), chunks) for chunks in ((1,), (63,), (64,), (65,), (4096,), (3, 61, 200), (55, 56, 57))]
    for data, chunks in cases:
        assert cpp(data, *chunks) == (hashlib.sha256(data).hexdigest(), zlib.crc32(data)), (len(data), chunks)


# ----------------------------------------------------------------------------- valid packages

@pytest.mark.parametrize("name", ["nano33ble", "nano33ble_rev2", "other", "most", "upsample"])
def test_a_python_package_parses_to_the_same_fields_in_cpp(driver, packages, name):
    data = packages[name]
    got = py_parse(data)
    assert isinstance(got, pkg.Package)
    assert cpp_parse(driver, data) == expected_fields(got)
    assert cpp_parse(driver, data, got.board) == expected_fields(got)  # its own board: accepted
    r = subprocess.run([str(driver), "parse", "-", "1"], input=data + bytes(4096), capture_output=True, check=True)
    assert r.stdout.decode().splitlines()[0] == f"declared {len(data)}"  # found at the start of a larger slot
    assert cpp_parse(driver, data, check=False) == expected_fields(got)


def test_the_configurations_really_differ(packages):
    """The parity above covers distinct windows, rates, channels, labels and boards."""
    parsed = [pkg.parse_package(d) for d in packages.values()]
    for key in ("window", "model_rate_hz", "channel_index", "labels", "resample_step", "board", "lowpass"):
        assert len({getattr(x, key) for x in parsed}) >= 2, key


# ----------------------------------------------------------------------------- refusals

def _faults(data: bytes) -> dict[str, tuple[bytes, str | None, bool]]:
    """name -> (package bytes, board to expect, check payload)."""
    h = struct.unpack_from("<H", data, 6)[0]
    pre = pkg.FIXED.size
    arrays = pre + pkg.PRE.size
    n = data[pre + 12]

    def edit(fmt: str, offset: int, value: int, fix: bool = True) -> bytes:
        d = bytearray(data)
        struct.pack_into(fmt, d, offset, value)
        return bytes(refix(d) if fix else d)

    def flip(offset: int, fix: bool = False) -> bytes:
        d = bytearray(data)
        d[offset] ^= 0x10
        return bytes(refix(d) if fix else d)

    big = bytearray(data) + bytes(pkg.MAX_PACKAGE_BYTES)
    struct.pack_into("<I", big, 8, len(big) - h)
    f: dict[str, tuple[bytes, str | None, bool]] = {
        "short": (data[:100], None, True),
        "magic": (flip(0), None, True),
        "version": (edit("<H", 4, 2), None, True),
        "header length unaligned": (edit("<H", 6, h + 1, fix=False), None, True),
        "header length past the end": (edit("<H", 6, len(data) + 16, fix=False), None, True),
        "truncated": (data[:-1], None, True),
        "extra byte": (data + b"\0", None, True),
        "too large": (bytes(refix(big)), None, True),
        "header crc": (flip(100), None, True),
        "header crc itself": (flip(h - 2), None, True),
        "board not ascii": (edit("<B", 90, 0xC3), None, True),
        "board with a gap": (edit("<B", 95, ord("x")), None, True),
        "other board": (data, "nano33ble_rev2" if data[80:96].rstrip(b"\0") == b"nano33ble" else "nano33ble", True),
        "board prefix": (data, "nano33", True),
        "imu rate 0": (edit("<H", 96, 0), None, True),
        "model rate 0": (edit("<H", 98, 0), None, True),
        "step too small": (edit("<I", 100, pkg.MIN_RESAMPLE_STEP - 1), None, True),
        "step too big": (edit("<I", 100, (1 << 24) + 1), None, True),
        "window 1": (edit("<H", 104, 1), None, True),
        "window over max": (edit("<H", 104, pkg.MAX_WINDOW + 1), None, True),
        "stride 0": (edit("<H", 106, 0), None, True),
        "stride over window": (edit("<H", 106, 1000), None, True),
        "no channels": (edit("<B", 108, 0), None, True),
        "7 channels": (edit("<B", 108, 7), None, True),
        "no labels": (edit("<B", 109, 0), None, True),
        "12 labels": (edit("<B", 109, pkg.MAX_LABELS + 1), None, True),
        "no taps": (edit("<B", 110, 0), None, True),
        "64 taps": (edit("<B", 110, pkg.MAX_TAPS + 1), None, True),
        "smoothing 0": (edit("<B", 111, 0), None, True),
        "smoothing over max": (edit("<B", 111, pkg.MAX_SMOOTHING + 1), None, True),
        "unknown past labels": (edit("<b", 118, 11), None, True),
        "unknown -2": (edit("<b", 118, -2), None, True),
        "detect average 0": (edit("<B", 119, 0), None, True),
        "detect average over max": (edit("<B", 119, pkg.MAX_DETECT_AVERAGE + 1), None, True),
        "detect min_count over average": (edit("<B", 121, 255), None, True),
        "arena 0": (edit("<I", 124, 0), None, True),
        "arena over max": (edit("<I", 124, pkg.MAX_ARENA_BYTES + 1), None, True),
        "channel index 6": (edit("<B", arrays, 6), None, True),
        "channel repeated": (edit("<B", arrays + n - 1, data[arrays]), None, True) if n > 1 else None,
        "mean over int16": (edit("<i", arrays + n, 40000), None, True),
        "mult 0": (edit("<q", arrays + 5 * n, 0), None, True),
        "mult negative": (edit("<q", arrays + 5 * n, -5), None, True),
        "mult too big": (edit("<q", arrays + 5 * n, pkg.MAX_MULT), None, True),
        "arrays past header": (edit("<B", 110, pkg.MAX_TAPS), None, True),
        "payload crc": (flip(len(data) - 1), None, True),
        "payload crc unchecked": (flip(len(data) - 1), None, False),
    }
    sha_only = bytearray(data)
    sha_only[h + 10] ^= 0x40
    struct.pack_into("<I", sha_only, 12, zlib.crc32(bytes(sha_only[h:])))
    f["payload sha"] = (bytes(refix(sha_only)), None, True)
    return {k: v for k, v in f.items() if v is not None}


def _label_faults(cfg, tflite, sha, monkeypatch) -> dict[str, bytes]:
    """Packages whose labels only a hand-made header can carry (encode refuses them)."""
    monkeypatch.setattr(pkg, "_limits", lambda *a, **k: None)
    out = {}
    for name, labels in (("label too long", ["a" * 65, "b"]), ("label bad char", ["ok", "no!"]),
                         ("label starts with _", ["_x", "y"]), ("labels text too long", ["x" * 64] * 5)):
        out[name] = pkg.encode(replace(cfg, labels=labels, unknown_label=None), tflite, board="nano33ble",
                               model_sha256=sha, arena_bytes=4096)
    empty = bytearray(out["label bad char"])  # a zero-length label: its length byte set to 0
    h = struct.unpack_from("<H", empty, 6)[0]
    pos = empty.rindex(b"\x03no!", 0, h)
    empty[pos] = 0
    out["label empty"] = bytes(refix(empty))
    return out


def test_every_fault_is_refused_alike_by_python_and_cpp(driver, packages, small_model, monkeypatch):
    cfg, tflite, report = load_model_dir(small_model.model_dir)
    cases = {f"{base}: {k}": v for base in ("nano33ble", "other") for k, v in _faults(packages[base]).items()}
    cases.update({k: (v, None, True) for k, v in _label_faults(cfg, tflite, report["model_sha256"], monkeypatch).items()})
    codes = set()
    for name, (data, board, check) in cases.items():
        py = py_parse(data, board, check)
        cpp = cpp_parse(driver, data, board, check)
        if isinstance(py, pkg.Package):
            assert name.endswith("unchecked"), f"{name}: Python accepted it"
            assert cpp == expected_fields(py), name
            continue
        assert isinstance(cpp, tuple), f"{name}: C++ accepted what Python refused ({py})"
        assert cpp[:2] == py[:2], f"{name}: C++ {cpp}, Python {py}"
        codes.add(py[0])
    assert codes == {p.PushError.BAD_HEADER, p.PushError.TOO_LARGE, p.PushError.WRONG_BOARD, p.PushError.BAD_HASH}


def test_random_damage_is_judged_alike(driver, packages):
    """Random bytes of the header changed (CRC recomputed, so the field checks see them) or
    anywhere (CRC kept): C++ and Python agree on accept / refuse, the error and its offset."""
    rng = random.Random(21)
    data = packages["other"]
    h = struct.unpack_from("<H", data, 6)[0]
    outcomes = set()
    for i in range(300):
        d = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 4))):
            pos = rng.randrange(4, h - 4) if i % 3 else rng.randrange(len(d))
            d[pos] = rng.randrange(256)
        if i % 3:
            refix(d)
        py, cpp = py_parse(bytes(d)), cpp_parse(driver, bytes(d))
        if isinstance(py, pkg.Package):
            assert cpp == expected_fields(py), i
            outcomes.add("ok")
        else:
            assert isinstance(cpp, tuple) and cpp[:2] == py[:2], (i, cpp, py)
            outcomes.add(py[0])
    assert {"ok", p.PushError.BAD_HEADER, p.PushError.BAD_HASH} <= outcomes


def test_encode_refuses_what_the_board_would_refuse(small_model):
    """Every package encode writes passes the board's checks; what the checks refuse, encode refuses
    first with the field's name (new maxima: smoothing, mean/mult, label text, upsampling)."""
    from capture.errors import DataError

    cfg, tflite, report = load_model_dir(small_model.model_dir)
    sha = report["model_sha256"]
    for bad, field in ((dict(smoothing=pkg.MAX_SMOOTHING + 1), "smoothing"), (dict(mult=[0] * len(cfg.channels)), "mult"),
                       (dict(mean=[40000] * len(cfg.channels)), "mean"),
                       (dict(labels=["x" * 64] * 5, unknown_label=None), "labels"),
                       (dict(model_rate_hz=119 * pkg.MAX_UPSAMPLE + 1), "model_rate_hz")):
        with pytest.raises(DataError, match=field):
            pkg.encode(replace(cfg, **bad), tflite, board="nano33ble", model_sha256=sha, arena_bytes=4096)


def test_the_longest_info_fits_the_protocol():
    """MAX_LABELS_TEXT leaves room in INFO (at most MAX_PAYLOAD bytes) for every other key, on every board."""
    from capture.boards import BOARDS
    from capture.device_info import capture_info

    for b in BOARDS.values():
        labels = ["x" * 64] * 3 + ["y" * (pkg.MAX_LABELS_TEXT - 3 * 65)]
        assert len(",".join(labels)) == pkg.MAX_LABELS_TEXT
        info = capture_info(b.max_rate_hz, 6, mode="classifier", fw="classifier-9.99.99", board=b.key, sensor=b.sensor,
                            labels=labels, model="f" * 64, slot=p.INFO_SLOT_BUILTIN)
        assert len(p.encode_info(info)) <= p.MAX_PAYLOAD, b.key


def test_info_carries_the_running_model():
    """INFO's new keys: the model's sha256 (64 hex digits) and its slot (a number or 'builtin')."""
    info = p.decode_info(b"mode=classifier;model=" + b"0123456789abcdef" * 4 + b";slot=builtin")
    assert info == {"mode": "classifier", "model": "0123456789abcdef" * 4, "slot": p.INFO_SLOT_BUILTIN}
    assert p.decode_info(b"slot=1")["slot"] == "1"
    for bad in (b"model=" + b"0" * 63, b"model=" + b"G" * 64, b"slot=<b>", b"slot=builtins"):
        with pytest.raises(ValueError, match="model|slot"):
            p.decode_info(bad)
