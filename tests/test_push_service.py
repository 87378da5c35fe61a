"""The board's transfer service (gk_push.h) and A/B slots (gk_slots.h), compiled with g++ and driven
on a NOR-flash model (tests/push_driver.cpp): the exchange of docs/push.md, go-back-N, resume,
refusals with their reasons, and power cuts at any byte leaving the old or the new model whole."""
from __future__ import annotations

import hashlib
import random
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from capture import protocol as p
from capture.resources import firmware_dir
from training import package as pkg
from training.preprocess import PreprocessConfig

ROOT = Path(__file__).resolve().parent
TEMPLATE = firmware_dir() / "templates" / "gesture_classifier"
BOOT = struct.Struct("<BI32s")


def make_package(seed: int = 0, payload_bytes: int = 3000, board: str = "nano33ble", labels=("wave", "punch")) -> bytes:
    """A real package (training.package.encode) around random payload bytes: the service checks
    the package, the hook (here a stub) would check the model."""
    rng = random.Random(seed)
    cfg = PreprocessConfig(labels=list(labels), channels=["ax", "ay", "az"], model_rate_hz=25, window=32, stride=4,
                           mean=[1, 2, 3], mult=[1 << 20] * 3, input_zero_point=-3)
    payload = bytes(rng.getrandbits(8) for _ in range(payload_bytes))
    return pkg.encode(cfg, payload, board=board, model_sha256=hashlib.sha256(payload).hexdigest(), arena_bytes=8000)


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found (Debian package g++): the board's C++ is checked compiled")
    inc = tmp_path_factory.mktemp("push_inc")
    (inc / "gk_package.h").write_text(pkg.c_header())
    (inc / "gesture_protocol.h").write_text(p.c_header())
    exe = inc / "push_driver"
    cmd = [gxx, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{inc}", f"-I{TEMPLATE}",
           str(ROOT / "push_driver.cpp"), "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe


@dataclass
class Run:
    statuses: list[p.PushStatus]
    boots: list[tuple[int, int, bytes]]  # slot, sequence, sha256 of the running package
    erases: int
    programmed: int


class Script:
    """Records for the driver's stdin."""

    def __init__(self) -> None:
        self.data = bytearray()

    def rec(self, op: str, body: bytes = b"") -> "Script":
        self.data += op.encode() + struct.pack("<H", len(body)) + body
        return self

    def control(self, body: bytes) -> "Script":
        return self.rec("C", body)

    def begin(self, package: bytes, ack_every: int = 4, length: int | None = None) -> "Script":
        return self.control(p.encode_push_begin(len(package) if length is None else length,
                                                hashlib.sha256(package).digest(), ack_every)).poll()

    def data_(self, offset: int, chunk: bytes) -> "Script":
        return self.rec("D", p.encode_push_data(offset, chunk))

    def send(self, package: bytes, chunk: int = 240, start: int = 0, stop: int | None = None) -> "Script":
        end = len(package) if stop is None else stop
        for off in range(start, end, chunk):
            self.data_(off, package[off:min(off + chunk, end)])
        return self

    def commit(self) -> "Script":
        return self.control(bytes([p.PushOp.COMMIT])).poll()

    def poll(self) -> "Script":
        return self.rec("P")

    def push(self, package: bytes, chunk: int = 240) -> "Script":
        return self.begin(package).send(package, chunk).commit()


def run(exe: Path, script: Script) -> Run:
    r = subprocess.run([str(exe)], input=bytes(script.data), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out, i = r.stdout, 0
    statuses, boots, fin = [], [], (0, 0)
    while i < len(out):
        kind, n = out[i], out[i + 1] | out[i + 2] << 8
        body = out[i + 3:i + 3 + n]
        i += 3 + n
        if kind == ord("S"):
            statuses.append(p.decode_push_status(body))
        elif kind == ord("B"):
            boots.append(BOOT.unpack(body))
        elif kind == ord("F"):
            fin = struct.unpack("<II", body)
    return Run(statuses, boots, *fin)


def states(r: Run) -> list[str]:
    return [p.PushState(s.state).name for s in r.statuses]


def test_a_push_erases_receives_acknowledges_validates_and_commits(driver):
    package = make_package()
    r = run(driver, Script().push(package).rec("B"))
    assert r.boots[0][0] == p.PUSH_BUILTIN_SLOT  # a new board runs the built-in model
    assert states(r)[0] == "ERASING" and r.statuses[0].total == len(package)
    receiving = [s for s in r.statuses if s.state == p.PushState.RECEIVING]
    assert receiving[0].offset == 0
    chunks = -(-len(package) // 240)
    # an acknowledgement every 4 chunks and one at the last byte
    assert [s.offset for s in receiving[1:]] == sorted({min(240 * k, len(package)) for k in range(4, chunks + 1, 4)}
                                                       | {len(package)})
    assert states(r)[-2:] == ["VALIDATING", "DONE"]
    done = r.statuses[-1]
    assert done.error == p.PushError.NONE and done.slot == 0
    # only the sectors the package needs, and the record sector, were erased
    assert r.erases == -(-len(package) // pkg.FLASH_SECTOR) + 1
    assert r.boots[1] == (0, 1, hashlib.sha256(package).digest())  # after a reset: the pushed model, sequence 1


def test_the_next_push_goes_to_the_other_slot_and_wins_by_sequence(driver):
    a, b, c = make_package(1), make_package(2), make_package(3)
    r = run(driver, Script().push(a).rec("B").push(b).rec("B").push(c).rec("B"))
    assert [(s, q, sha) for s, q, sha in r.boots[1:]] == [
        (0, 1, hashlib.sha256(a).digest()), (1, 2, hashlib.sha256(b).digest()), (0, 3, hashlib.sha256(c).digest())]


@pytest.mark.parametrize("chunk", [4, 5, 7, 13, 16, 240])
def test_chunks_of_any_length_land_byte_for_byte(driver, chunk):
    package = make_package(4, payload_bytes=1001)  # an odd length: the last word is padded
    r = run(driver, Script().push(package, chunk).rec("B"))
    assert r.statuses[-1].state == p.PushState.DONE, r.statuses[-1]
    assert r.boots[-1][2] == hashlib.sha256(package).digest()


def test_a_chunk_at_another_offset_is_not_programmed_and_the_wanted_offset_is_said_once(driver):
    package = make_package(5)
    s = Script().begin(package).send(package, 240, 0, 480)
    s.data_(720, package[720:960]).data_(960, package[960:1200])  # 480..720 was lost
    s.send(package, 240, 480).commit()
    r = run(driver, s)
    complaints = [st for st in r.statuses if st.state == p.PushState.RECEIVING and st.offset == 480]
    assert len(complaints) == 1  # go-back-N: one notification for the two chunks past the gap
    assert r.statuses[-1].state == p.PushState.DONE


def test_begin_again_with_the_same_package_resumes_at_the_received_offset(driver):
    package = make_package(6)
    s = Script().begin(package).send(package, 240, 0, 1203)  # an unaligned stop: 3 bytes wait in RAM
    s.begin(package, ack_every=8).send(package, 240, 1203).commit().rec("B")
    r = run(driver, s)
    resumed = [st for st in r.statuses if st.text == "resumed"]
    assert resumed and resumed[0].offset == 1203 and resumed[0].state == p.PushState.RECEIVING
    assert r.statuses[-1].state == p.PushState.DONE
    assert r.boots[-1][2] == hashlib.sha256(package).digest()


def test_a_different_package_starts_over(driver):
    a, b = make_package(7), make_package(8)
    r = run(driver, Script().begin(a).send(a, 240, 0, 960).begin(b).send(b).commit())
    assert [st.offset for st in r.statuses if st.state == p.PushState.ERASING] == [0, 0]
    assert r.statuses[-1].state == p.PushState.DONE


def test_chunks_in_flight_after_a_failure_do_not_replace_its_reason(driver):
    package = make_package(24)
    s = Script().begin(package).data_(0, package[:240]).data_(240, package)  # runs past the end
    s.data_(480, package[480:720])
    r = run(driver, s)
    assert (r.statuses[-1].state, r.statuses[-1].error) == (p.PushState.FAILED, p.PushError.BAD_REQUEST)
    assert "runs past" in r.statuses[-1].text and states(r).count("FAILED") == 1


def test_a_flipped_byte_is_refused_and_the_previous_model_stays(driver):
    old, new = make_package(9), make_package(10)
    bad = bytearray(new)
    bad[len(bad) // 2] ^= 0x10
    s = Script().push(old).rec("B").begin(new).send(bytes(bad)).commit().rec("B")
    r = run(driver, s)
    last = r.statuses[-1]
    assert (last.state, last.error) == (p.PushState.FAILED, p.PushError.BAD_HASH)
    assert "SHA-256" in last.text and last.slot == 0  # the slot still running
    assert r.boots[-1][:2] == (0, 1) and r.boots[-1][2] == hashlib.sha256(old).digest()


def test_a_model_for_the_other_board_is_refused_with_the_reason(driver):
    other = make_package(11, board="nano33ble_rev2")
    r = run(driver, Script().push(other).rec("B"))
    last = r.statuses[-1]
    assert (last.state, last.error) == (p.PushState.FAILED, p.PushError.WRONG_BOARD)
    assert "nano33ble_rev2" in last.text
    assert r.boots[-1][0] == p.PUSH_BUILTIN_SLOT


def test_an_oversize_package_is_refused_at_begin(driver):
    package = make_package(12)
    r = run(driver, Script().begin(package, length=pkg.MAX_PACKAGE_BYTES + 1))
    last = r.statuses[-1]
    assert (last.state, last.error) == (p.PushState.FAILED, p.PushError.TOO_LARGE)
    assert f"{pkg.MAX_PACKAGE_BYTES}" in last.text and r.erases == 0


def test_what_the_hook_refuses_keeps_the_running_model(driver):
    old, new = make_package(13), make_package(14)
    s = Script().push(old).rec("A", bytes([p.PushError.MISSING_OP])).push(new).rec("B")
    r = run(driver, s)
    last = r.statuses[-1]
    assert (last.state, last.error) == (p.PushState.FAILED, p.PushError.MISSING_OP)
    assert "refused" in last.text and last.slot == 0
    assert r.boots[-1][2] == hashlib.sha256(old).digest()


def test_commit_before_the_last_byte_is_refused_with_what_is_missing(driver):
    package = make_package(15)
    r = run(driver, Script().begin(package).send(package, 240, 0, 480).commit().rec("B"))
    last = r.statuses[-1]
    assert (last.state, last.error) == (p.PushState.FAILED, p.PushError.BAD_REQUEST) and "480 of" in last.text
    assert r.boots[-1][0] == p.PUSH_BUILTIN_SLOT


def test_data_without_a_transfer_is_refused_once_and_data_while_erasing_is_ignored(driver):
    package = make_package(22)
    s = Script().data_(0, package[:240]).data_(240, package[240:480])  # no BEGIN
    s.control(p.encode_push_begin(len(package), hashlib.sha256(package).digest(), 4))  # ERASING, not polled
    s.data_(0, package[:240])
    r = run(driver, s)
    assert [(st.state, st.error) for st in r.statuses] == [(p.PushState.FAILED, p.PushError.BAD_REQUEST),
                                                          (p.PushState.ERASING, p.PushError.NONE)]


def test_the_acknowledgement_count_restarts_at_every_notification(driver):
    package = make_package(23)
    s = Script().begin(package).send(package, 240, 0, 720)  # 3 chunks (ack_every 4): no acknowledgement yet
    s.control(bytes([p.PushOp.STATUS]))  # a notification: the count starts again
    s.send(package, 240, 720, 240 * 7).send(package, 240, 240 * 7, 240 * 8)
    r = run(driver, s)
    assert [st.offset for st in r.statuses if st.state == p.PushState.RECEIVING] == [0, 720, 240 * 7]


def test_a_repeated_commit_is_answered_not_refused(driver):
    package = make_package(21)
    s = Script().begin(package).send(package).control(bytes([p.PushOp.COMMIT]))
    s.control(bytes([p.PushOp.COMMIT])).poll().control(bytes([p.PushOp.COMMIT])).rec("B")
    r = run(driver, s)
    assert all(st.error == p.PushError.NONE for st in r.statuses)
    assert states(r)[-3:] == ["VALIDATING", "DONE", "DONE"] and r.boots[-1][2] == hashlib.sha256(package).digest()


def test_abort_keeps_the_running_model(driver):
    old, new = make_package(16), make_package(17)
    s = Script().push(old).begin(new).send(new, 240, 0, 960).control(bytes([p.PushOp.ABORT])).rec("B")
    r = run(driver, s)
    aborted = r.statuses[-1]
    assert (aborted.state, aborted.error) == (p.PushState.FAILED, p.PushError.ABORTED)
    assert r.boots[-1][2] == hashlib.sha256(old).digest()


def test_a_status_that_finds_the_buffers_full_goes_out_later(driver):
    package = make_package(18)
    s = Script().rec("N", b"\x01").control(p.encode_push_begin(len(package), hashlib.sha256(package).digest(), 4))
    s.rec("N", b"\x00").poll()
    r = run(driver, s)
    assert states(r)[0] in ("ERASING", "RECEIVING")  # nothing was lost: the newest status went out


def _cut_run(driver, old: bytes, new: bytes, cut: int) -> Run:
    s = Script().push(old).rec("B").rec("K", struct.pack("<I", cut)).push(new).rec("B")
    return run(driver, s)


def test_a_power_cut_at_any_byte_leaves_the_old_or_the_new_model_whole(driver):
    old, new = make_package(19), make_package(20, payload_bytes=2500)
    sha_old, sha_new = hashlib.sha256(old).digest(), hashlib.sha256(new).digest()
    padded = -(-len(new) // 4) * 4
    rng = random.Random(0)
    cuts = sorted(set(rng.sample(range(padded), 40)) | {0, 1, padded - 1}
                  | set(range(padded, padded + pkg_record_bytes() + 1)))
    for cut in cuts:
        r = _cut_run(driver, old, new, cut)
        slot, seq, sha = r.boots[-1]
        if cut < padded + pkg_record_bytes():  # the commit record is not whole: the old model
            assert (slot, seq, sha) == (0, 1, sha_old), cut
        else:
            assert (slot, seq, sha) == (1, 2, sha_new), cut


def pkg_record_bytes() -> int:
    return 48  # gk_slots.h CommitRecord::kBytes
