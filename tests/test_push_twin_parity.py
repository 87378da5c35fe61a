"""One exchange through both boards: the firmware's transfer service (gk_push.h, compiled with g++
and driven by tests/push_driver.cpp on its NOR model) and its Python twin behind the virtual board
(capture/virtual/push_target.py) must notify the same statuses (state, error, offset, total, slot,
text) for the same writes, so `gesture push` meets the same board in both."""
from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from capture import protocol as p
from capture.resources import firmware_dir
from capture.virtual.push_target import PushTarget
from training import package as pk

HERE = Path(__file__).resolve().parent
TEMPLATE = firmware_dir() / "templates" / "gesture_classifier"


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found (Debian package g++): the board's C++ is checked compiled")
    if not (HERE / "push_driver.cpp").is_file() or not (TEMPLATE / "gk_push.h").is_file():
        pytest.skip("the firmware's transfer service (gk_push.h, tests/push_driver.cpp) is not in this tree")
    inc = tmp_path_factory.mktemp("twin_inc")
    (inc / "gk_package.h").write_text(pk.c_header())
    (inc / "gesture_protocol.h").write_text(p.c_header())
    exe = inc / "push_driver"
    r = subprocess.run([gxx, "-std=c++17", "-O1", f"-I{inc}", f"-I{TEMPLATE}", str(HERE / "push_driver.cpp"),
                        "-o", str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe


def exchange(package: bytes, chunk: int, ack: int, lost: tuple[int, ...]) -> list[tuple[str, bytes]]:
    """DATA before BEGIN, BEGIN, erase, chunks with some lost and then resent from the first lost,
    COMMIT, a repeated COMMIT, a second transfer committed early, ABORT, an unknown op."""
    sha = hashlib.sha256(package).digest()
    ops: list[tuple[str, bytes]] = [("D", p.encode_push_data(0, package[:16])),
                                    ("C", p.encode_push_begin(len(package), sha, ack)), ("P", b"")]
    offsets = list(range(0, len(package), chunk))
    ops += [("D", p.encode_push_data(o, package[o:o + chunk])) for i, o in enumerate(offsets) if i not in lost]
    first = offsets[lost[0]] if lost else len(package)
    ops += [("D", p.encode_push_data(o, package[o:o + chunk])) for o in range(first, len(package), chunk)]
    ops += [("C", bytes([p.PushOp.COMMIT])), ("P", b""), ("C", bytes([p.PushOp.COMMIT])),
            ("C", p.encode_push_begin(len(package), sha, ack)), ("P", b""), ("C", bytes([p.PushOp.COMMIT])),
            ("C", bytes([p.PushOp.ABORT])), ("C", bytes([0x77]))]
    return ops


def firmware(exe: Path, ops: list[tuple[str, bytes]]) -> list[p.PushStatus]:
    script = b"".join(op.encode() + struct.pack("<H", len(body)) + body for op, body in ops)
    out = subprocess.run([str(exe)], input=script, capture_output=True, check=True).stdout
    statuses, i = [], 0
    while i < len(out):
        kind, n = out[i], struct.unpack_from("<H", out, i + 1)[0]
        if kind == ord("S"):
            statuses.append(p.decode_push_status(out[i + 3:i + 3 + n]))
        i += 3 + n
    return statuses


def twin(ops: list[tuple[str, bytes]]) -> list[p.PushStatus]:
    statuses: list[p.PushStatus] = []
    target = PushTarget("nano33ble", "builtin", lambda cfg, model: None)
    target.notify = lambda b: statuses.append(p.decode_push_status(b))
    for op, body in ops:
        if op == "C":
            target.control(body)
        elif op == "D":
            target.data(body)
        else:
            while target.step():
                pass
    return statuses


@pytest.mark.parametrize("chunk, ack, lost", [(224, 4, (5,)), (16, 8, (3, 9)), (100, 1, ()), (37, 3, (2, 3))])
def test_the_firmware_and_the_twin_answer_an_exchange_alike(driver, other_model, chunk, ack, lost):
    package = pk.build_package(other_model, "nano33ble")
    ops = exchange(package, chunk, ack, lost)
    a, b = firmware(driver, ops), twin(ops)
    assert len(a) > 10 and any(s.state == p.PushState.DONE for s in a)
    assert [tuple(s.__dict__.values()) for s in a] == [tuple(s.__dict__.values()) for s in b]
