"""The C++/Python parity harness: compile the exported sketch's portable C++ on the host with
``parity_driver.cpp`` and feed it the same streams as Python (tests/test_parity.py and
bench/bench_parity.py). The driver reads its configuration from a model package, as the
push-ready board does: :func:`build_host_driver` gives a :class:`HostDriver` on the sketch's
built-in package, :meth:`HostDriver.with_package` the same binary on another. A test tool, so it
lives in tests/ and never ships in the wheel."""
from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

HOST_DRIVER = Path(__file__).resolve().parent / "parity_driver.cpp"
HOST_FLAGS = ("-std=c++11", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")


@dataclass(frozen=True)
class HostDriver:
    """The compiled driver and the model package it reads its configuration from."""

    path: Path
    package: Path

    def with_package(self, package: bytes, where: Path) -> "HostDriver":
        """The same binary on another package (written to ``where``)."""
        where.write_bytes(package)
        return replace(self, package=where)


def build_host_driver(sketch_dir: str | Path, out: str | Path, compiler: str = "g++") -> HostDriver:
    """Compile tests/parity_driver.cpp against an exported sketch's headers (raises with g++'s
    output); its package is the sketch's built-in one (model_data.cpp), written beside ``out``."""
    from training.export import parse_model_data

    out = Path(out)
    cmd = [compiler, *HOST_FLAGS, f"-I{sketch_dir}", str(HOST_DRIVER), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    builtin = out.with_name(out.name + ".builtin.gkpkg")
    builtin.write_bytes(parse_model_data((Path(sketch_dir) / "model_data.cpp").read_text()))
    return HostDriver(out, builtin)


def _run(exe: HostDriver, mode: str, data: bytes, args: tuple[str, ...] = ()) -> bytes:
    proc = subprocess.run([str(exe.path), str(exe.package), mode, *args], input=data, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{exe.path} {mode} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def host_crop(exe: HostDriver, takes: list[np.ndarray], window: int) -> np.ndarray:
    """C++ crop_take + quantize of each model-rate take -> (takes, window, C) int8."""
    buf = b"".join(struct.pack("<i", len(t)) + np.ascontiguousarray(t, dtype="<i2").tobytes() for t in takes)
    c = takes[0].shape[1] if takes else 1
    return np.frombuffer(_run(exe, "crop", buf), dtype=np.int8).reshape(len(takes), window, c)


@dataclass
class HostLive:
    resampled: np.ndarray  # (m, C) int16 model-rate samples
    resampled_src: np.ndarray  # IMU index that completed each
    windows: list[tuple[int, np.ndarray | None]]  # (IMU index, int8 input or None when idle)


def host_live(exe: HostDriver, stream: np.ndarray, n_channels: int, window: int) -> HostLive:
    """C++ Resampler -> LiveWindow -> quantize on a (n, 6) IMU-rate stream."""
    s = np.ascontiguousarray(stream, dtype="<i2")
    out = _run(exe, "live", struct.pack("<i", len(s)) + s.tobytes())
    res, src, wins = [], [], []
    i, nbytes = 0, window * n_channels
    while i < len(out):
        tag, (idx,) = out[i:i + 1], struct.unpack_from("<I", out, i + 1)
        i += 5
        if tag == b"S":
            res.append(np.frombuffer(out, dtype="<i2", count=n_channels, offset=i))
            src.append(idx)
            i += 2 * n_channels
        elif tag == b"I":
            wins.append((idx, None))
        elif tag == b"R":
            wins.append((idx, np.frombuffer(out, dtype=np.int8, count=nbytes, offset=i).reshape(window, n_channels)))
            i += nbytes
        else:
            raise RuntimeError(f"parity driver: unexpected tag {tag!r} at byte offset {i - 5}")
    return HostLive(np.array(res, dtype=np.int16).reshape(-1, n_channels), np.array(src, dtype=np.int64), wins)


def host_smooth(exe: HostDriver, records: list[np.ndarray | None], n_labels: int) -> list[tuple[bytes, str]]:
    """C++ Smoother + PREDICTION encoder + Serial line for each record (None = idle window)."""
    buf = struct.pack("<i", len(records)) + b"".join(
        (b"\x01" + bytes(n_labels)) if r is None else (b"\x02" + np.asarray(r, np.int8).tobytes()) for r in records)
    out = _run(exe, "smooth", buf)
    res, i = [], 0
    for _ in records:
        payload = out[i:i + 3 + n_labels]
        i += 3 + n_labels
        (n,) = struct.unpack_from("<H", out, i)
        res.append((payload, out[i + 2:i + 2 + n].decode("ascii")))
        i += 2 + n
    return res


def host_detect(exe: HostDriver, records: list[np.ndarray | None], n_labels: int,
                setting: tuple[int, int, int, int] | None = None) -> list[tuple[int, int, int]]:
    """C++ gk::Detector over candidate windows (None = idle; else the int8 model output):
    (candidate index, class, score) per event. ``setting`` = (average, threshold, min_count,
    suppression), else the sketch's generated GK_DETECT_* setting."""
    buf = struct.pack("<i", len(records)) + b"".join(
        (b"\x01" + bytes(n_labels)) if r is None else (b"\x02" + np.asarray(r, np.int8).tobytes()) for r in records)
    out = _run(exe, "detect", buf, tuple(str(v) for v in setting) if setting else ())
    rows = np.frombuffer(out, dtype=np.uint8).reshape(-1, 3)
    return [(i, int(c), int(s)) for i, (f, c, s) in enumerate(rows) if f]


def host_info(exe: HostDriver, slot: int) -> str:
    """The INFO text gk_format.h builds for the driver's package, running from ``slot``."""
    return _run(exe, "info", b"", (str(slot),)).decode("ascii")
