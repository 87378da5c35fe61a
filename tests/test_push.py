"""gesture push against the Python virtual classifier: the client (training/push.py) over a real
bleak BleakClient whose backend is the virtual board, and the board's transfer service twin
(capture/virtual/push_target.py) with its NOR flash, slots, validation and switch."""
from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from bleak import BleakClient

from capture import protocol as p
from capture.errors import GestureError
from capture.virtual.ble import virtual_backend
from capture.virtual.push_target import NorFlash, PushTarget
from training import package as pk
from training.board_sim import ClassifierSource
from training.push import PushResult, push_package, transfer_package, window_bytes


def board(model_dir: Path, board_key: str = "nano33ble") -> ClassifierSource:
    return ClassifierSource(model_dir, None, rate_hz=119, board=board_key, loop=True)


async def connect(source: ClassifierSource, mtu: int = 247, speed: float = 0.0) -> tuple[BleakClient, type]:
    backend = virtual_backend(source, mtu=mtu, speed=speed)
    client = BleakClient("virtual:classifier", backend=backend)
    await client.connect()
    return client, backend


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


async def send_once(source: ClassifierSource, send, package: bytes) -> None:
    """One connection to ``source`` that hands ``package`` to ``send`` (push_package: the host's
    checks first; transfer_package: straight to the board), then disconnects."""
    client, _ = await connect(source)
    try:
        await send(client, package)
    finally:
        await client.disconnect()


def test_push_switches_the_board_and_its_predictions_carry_the_new_labels(small_model, other_model):
    source = board(small_model.model_dir)
    old_labels = list(source.labels)
    package = pk.build_package(other_model, "nano33ble")
    new = pk.parse_package(package)
    assert list(new.labels) != old_labels

    async def go() -> tuple[PushResult, list[int], list[int]]:
        client, _ = await connect(source)
        sizes: list[int] = []  # scores per PREDICTION, in arrival order
        client_info = p.decode_info(bytes(await client.read_gatt_char(p.INFO_CHAR_UUID)))
        assert client_info["model"] == small_model.report["model_sha256"] and client_info["slot"] == p.INFO_SLOT_BUILTIN

        def on_prediction(_: object, data: bytearray) -> None:
            sizes.append(len(p.decode_prediction(p.split_ble_notification(bytes(data))[2]).scores))

        await client.start_notify(p.PREDICTION_CHAR_UUID, on_prediction)
        while len(sizes) < 3:
            await asyncio.sleep(0.01)
        seen: list[int] = []
        result = await push_package(client, package, progress=lambda done, total: seen.append(done))
        n = len(sizes)
        while len(sizes) < n + 3:
            await asyncio.sleep(0.01)
        await client.disconnect()
        return result, sizes[:n], sizes[n:]

    result, before, after = run(go())
    assert result.status.state == p.PushState.DONE and result.status.total == len(package)
    assert result.info["model"] == new.model_sha256 == other_model_sha(other_model)
    assert result.info["labels"] == ",".join(new.labels) and result.info["slot"] == str(result.status.slot)
    assert result.resumed == 0 and result.sent_bytes == len(package)
    # one switch between two windows: every prediction before it has the old labels, every one after the new
    sizes = before + after
    k = sizes.index(len(new.labels))
    assert k >= 3 and set(sizes[:k]) == {len(old_labels)} and set(sizes[k:]) == {len(new.labels)}
    assert source.labels == list(new.labels)


def other_model_sha(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / "model.tflite").read_bytes()).hexdigest()


def test_progress_follows_the_acknowledgements(small_model, other_model):
    source = board(small_model.model_dir)
    package = pk.build_package(other_model, "nano33ble")
    seen: list[tuple[int, int]] = []

    async def go() -> PushResult:
        client, _ = await connect(source, mtu=23)
        try:
            return await push_package(client, package, ack_every=4, progress=lambda d, t: seen.append((d, t)))
        finally:
            await client.disconnect()

    result = run(go())
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[0] == 0 and done[-1] == len(package)
    assert {t for _, t in seen} == {len(package)}
    # MTU 23: 16-byte chunks, an acknowledgement every 4 chunks
    assert all(b - a in (64, len(package) % 64) for a, b in zip(done[1:], done[2:]))
    assert result.sent_bytes == len(package)


def test_a_lost_data_write_is_resent_from_the_offset_the_board_wants(small_model, other_model):
    source = board(small_model.model_dir)
    source.push_target.faults.drop_writes = {5, 40}
    package = pk.build_package(other_model, "nano33ble")

    async def go() -> PushResult:
        client, _ = await connect(source, mtu=23)
        try:
            return await push_package(client, package)
        finally:
            await client.disconnect()

    result = run(go())
    assert result.status.state == p.PushState.DONE
    assert result.sent_bytes > len(package)  # the chunks after each lost one went again
    assert source.push_target.faults.writes * 16 >= result.sent_bytes
    assert result.info["model"] == other_model_sha(other_model)


def test_a_lost_last_write_is_found_by_asking_the_board(small_model, other_model):
    """Nothing follows the last chunk to make the board rewind: the quiet host asks (STATUS)."""
    source = board(small_model.model_dir)
    package = pk.build_package(other_model, "nano33ble")
    chunks = -(-len(package) // p.push_chunk_size(247))
    source.push_target.faults.drop_writes = {chunks - 1}

    async def go() -> PushResult:
        client, _ = await connect(source)
        try:
            return await push_package(client, package)
        finally:
            await client.disconnect()

    result = run(go())
    assert result.status.state == p.PushState.DONE
    assert result.sent_bytes == len(package) + len(package) - (chunks - 1) * p.push_chunk_size(247)


def test_a_disconnect_mid_transfer_resumes_where_the_board_is(small_model, other_model):
    source = board(small_model.model_dir)
    target = source.push_target
    package = pk.build_package(other_model, "nano33ble")
    half = len(package) // 2
    target.faults.disconnect_at = half
    clients: list[BleakClient] = []

    async def reconnect() -> BleakClient:
        client, _ = await connect(source)
        clients.append(client)
        return client

    async def go() -> PushResult:
        client, _ = await connect(source)
        clients.append(client)
        try:
            return await push_package(client, package, reconnect=reconnect)
        finally:
            for c in clients:
                await c.disconnect()

    result = run(go())
    assert result.resumed == 1 and len(clients) == 2
    assert result.status.state == p.PushState.DONE and result.info["model"] == other_model_sha(other_model)
    # resumed, not restarted: the slot was erased once, and the bytes before the cut went once
    assert target.flash.erases == 1 + -(-len(package) // pk.FLASH_SECTOR)
    # what went before the cut counts, and at most the chunks in flight when it came went twice
    assert len(package) <= result.sent_bytes < len(package) + window_bytes(p.push_chunk_size(247), 8)


def test_without_reconnect_a_disconnect_says_so_and_the_next_push_resumes(small_model, other_model):
    source = board(small_model.model_dir)
    package = pk.build_package(other_model, "nano33ble")
    source.push_target.faults.disconnect_at = len(package) // 3

    async def first() -> None:
        client, _ = await connect(source)
        await push_package(client, package)

    with pytest.raises(GestureError, match="disconnected during the push .*resumes"):
        run(first())

    async def again() -> PushResult:
        client, _ = await connect(source)
        try:
            return await push_package(client, package)
        finally:
            await client.disconnect()

    result = run(again())
    assert result.resumed == 1 and 0 < result.sent_bytes <= len(package) - len(package) // 3 + window_bytes(p.push_chunk_size(247), 8)
    assert result.info["model"] == other_model_sha(other_model)


def test_a_byte_flipped_on_the_link_is_refused_and_the_old_model_runs(small_model, other_model):
    source = board(small_model.model_dir)
    source.push_target.faults.flip_offset = 2000
    package = pk.build_package(other_model, "nano33ble")

    async def go() -> dict[str, str]:
        client, _ = await connect(source)
        try:
            with pytest.raises(GestureError, match="BAD_HASH.*SHA-256.*previous model"):
                await push_package(client, package)
            return p.decode_info(bytes(await client.read_gatt_char(p.INFO_CHAR_UUID)))
        finally:
            await client.disconnect()

    info = run(go())
    assert info["model"] == small_model.report["model_sha256"] and info["slot"] == p.INFO_SLOT_BUILTIN
    assert source.labels == list(small_model.config.labels)


def test_a_package_with_a_changed_payload_is_refused_by_the_board(small_model, other_model):
    source = board(small_model.model_dir)
    package = bytearray(pk.build_package(other_model, "nano33ble"))
    package[-20] ^= 0x01  # BEGIN's sha256 is of these bytes: only the payload's own CRC/SHA can tell

    async def go() -> None:
        client, _ = await connect(source)
        try:
            await transfer_package(client, bytes(package))
        finally:
            await client.disconnect()

    with pytest.raises(GestureError, match="BAD_HASH.*payload CRC32"):
        run(go())
    assert source.push_target.running_slot == p.PUSH_BUILTIN_SLOT


def test_a_model_for_the_other_board_is_refused_before_a_byte_is_sent_and_by_the_board(small_model, other_model):
    source = board(small_model.model_dir, "nano33ble")
    package = pk.build_package(other_model, "nano33ble_rev2")

    with pytest.raises(GestureError, match="built for board nano33ble_rev2.*INFO says nano33ble"):
        run(send_once(source, push_package, package))
    assert source.push_target.faults.writes == 0 and source.push_target.status.state == p.PushState.IDLE
    with pytest.raises(GestureError, match="WRONG_BOARD.*built for nano33ble_rev2; this board is nano33ble"):
        run(send_once(source, transfer_package, package))
    assert source.push_target.running_slot == p.PUSH_BUILTIN_SLOT


def test_an_oversize_package_is_refused_before_sending_and_by_the_board(small_model, other_model):
    source = board(small_model.model_dir)
    big = pk.build_package(other_model, "nano33ble") + bytes(pk.MAX_PACKAGE_BYTES)

    with pytest.raises(GestureError, match="a slot of the board holds at most 69,632"):
        run(send_once(source, push_package, big))
    assert source.push_target.faults.writes == 0
    with pytest.raises(GestureError, match="TOO_LARGE"):
        run(send_once(source, transfer_package, big))
    assert source.push_target.faults.writes == 0  # refused at BEGIN


def test_labels_whose_info_would_not_fit_the_characteristic_are_refused(small_model):
    from dataclasses import replace

    from training.model_dir import load_model_dir
    from training.push import check_package

    cfg, tflite, report = load_model_dir(small_model.model_dir)
    labels = [f"{i}" + "x" * 62 for i in range(4)]  # 255 characters joined: within the package's limits
    package = pk.encode(replace(cfg, labels=labels), tflite, board="nano33ble", model_sha256=report["model_sha256"],
                        arena_bytes=4096)
    # a board whose other INFO values are long leaves less room for the labels
    info = {"board": "nano33ble", "mode": "classifier", "fw": "f" * 64, "sensor": "s" * 64, "ch": ",".join(["ax"] * 20)}
    with pytest.raises(GestureError, match="INFO record would be .* bytes"):
        check_package(package, info)
    check_package(pk.build_package(small_model.model_dir, "nano33ble"), {"board": "nano33ble", "mode": "classifier"})


def test_an_op_missing_from_the_resolver_is_refused(small_model, other_model, monkeypatch):
    from training import tflm_ops

    source = board(small_model.model_dir)
    package = pk.build_package(other_model, "nano33ble")
    # a firmware whose resolver lacks FULLY_CONNECTED (its built-in model has none)
    monkeypatch.setattr(tflm_ops, "FIRMWARE_OPS", tuple(op for op in tflm_ops.FIRMWARE_OPS if op != "FULLY_CONNECTED"))
    source.push_target.builtin_ops = []

    with pytest.raises(GestureError, match="FULLY_CONNECTED"):
        run(send_once(source, push_package, package))
    with pytest.raises(GestureError, match="MISSING_OP.*FULLY_CONNECTED"):
        run(send_once(source, transfer_package, package))


# ----------------------------------------------------------------------------- the twin without the link

def test_nor_flash_programs_only_clear_bits():
    f = NorFlash(2 * pk.FLASH_SECTOR)
    f.program(8, b"\x0f\xf0\xff\x00")
    f.program(8, b"\xf0\xff\x0f\xff")
    assert f.read(8, 4) == b"\x00\xf0\x0f\x00"
    f.erase(0)
    assert f.read(8, 4) == b"\xff" * 4
    with pytest.raises(ValueError):
        f.program(2, b"\x00\x00\x00\x00")


def _feed(target: PushTarget, package: bytes, upto: int | None = None, ack_every: int = 8) -> list[p.PushStatus]:
    out: list[p.PushStatus] = []
    target.notify = lambda b: out.append(p.decode_push_status(b))
    target.control(p.encode_push_begin(len(package), hashlib.sha256(package).digest(), ack_every))
    while target.step():
        pass
    end = len(package) if upto is None else upto
    for off in range(0, end, 240):
        target.data(p.encode_push_data(off, package[off:min(off + 240, end)]))
    return out


def test_boot_runs_the_newest_whole_slot_and_a_cut_transfer_leaves_the_old_model(small_model, other_model):
    switched: list[list[str]] = []
    target = PushTarget("nano33ble", "builtin-sha", lambda cfg, model: switched.append(list(cfg.labels)))
    package = pk.build_package(other_model, "nano33ble")
    statuses = _feed(target, package)
    assert [s.state for s in statuses[:2]] == [p.PushState.ERASING, p.PushState.RECEIVING]
    target.control(bytes([p.PushOp.COMMIT]))
    assert target.status.state == p.PushState.DONE and target.running_slot == target.status.slot
    first_slot = target.running_slot
    # a second push of the same model goes to the other slot; cut it halfway (power off)
    _feed(target, package, upto=len(package) // 2)
    rebooted = PushTarget("nano33ble", "builtin-sha", lambda cfg, model: switched.append(list(cfg.labels)),
                          flash=target.flash)
    assert rebooted.running_slot == first_slot and rebooted.running_sha256 == other_model_sha(other_model)
    # an empty flash boots the built-in model
    assert PushTarget("nano33ble", "builtin-sha", lambda c, m: None).running_slot == p.PUSH_BUILTIN_SLOT


def test_wrong_offsets_are_answered_once_with_the_offset_the_board_wants(small_model, other_model):
    target = PushTarget("nano33ble", "x", lambda c, m: None)
    package = pk.build_package(other_model, "nano33ble")
    statuses = _feed(target, package, upto=240 * 3)  # 3 chunks in, no acknowledgement yet (ack_every 8)
    n = len(statuses)
    for off in (240 * 4, 240 * 5, 240 * 6):  # chunk 3 was lost: three later ones arrive
        target.data(p.encode_push_data(off, package[off:off + 240]))
    assert [(s.state, s.offset) for s in statuses[n:]] == [(p.PushState.RECEIVING, 720)]
    target.data(p.encode_push_data(720, package[720:960]))  # the resent one is programmed
    assert target.status.offset == 960


def test_data_before_begin_and_commit_before_the_last_byte_are_bad_requests(small_model, other_model):
    target = PushTarget("nano33ble", "x", lambda c, m: None)
    package = pk.build_package(other_model, "nano33ble")
    out: list[p.PushStatus] = []
    target.notify = lambda b: out.append(p.decode_push_status(b))
    target.data(p.encode_push_data(0, package[:16]))
    target.data(p.encode_push_data(16, package[16:32]))  # in flight after the failure: ignored
    assert [(s.state, s.error, s.text) for s in out] == [
        (p.PushState.FAILED, p.PushError.BAD_REQUEST, "DATA without a transfer: send BEGIN first")]
    statuses = _feed(target, package, upto=480)
    target.control(bytes([p.PushOp.COMMIT]))
    s = statuses[-1]
    assert (s.state, s.error, s.text) == (p.PushState.FAILED, p.PushError.BAD_REQUEST,
                                          f"COMMIT with 480 of {len(package)} bytes received")
    assert target.running_slot == p.PUSH_BUILTIN_SLOT


def test_chunks_of_any_length_are_programmed_through_a_ram_tail(small_model, other_model):
    target = PushTarget("nano33ble", "x", lambda c, m: None)
    package = pk.build_package(other_model, "nano33ble")
    out: list[p.PushStatus] = []
    target.notify = lambda b: out.append(p.decode_push_status(b))
    target.control(p.encode_push_begin(len(package), hashlib.sha256(package).digest(), 1))
    while target.step():
        pass
    off = 0
    for size in [7, 1, 13, 250] * 100:
        if off >= len(package):
            break
        piece = package[off:off + size]
        target.data(p.encode_push_data(off, piece))
        off += len(piece)
    target.control(bytes([p.PushOp.COMMIT]))
    assert target.status.state == p.PushState.DONE, target.status


def test_info_carries_the_running_model_and_slot():
    sha = "ab" * 32
    info = p.decode_info(p.encode_info({"board": "nano33ble", "model": sha, "slot": 1}))
    assert info["model"] == sha and info["slot"] == "1"
    with pytest.raises(ValueError, match="model"):
        p.decode_info(b"model=<script>")


# ----------------------------------------------------------------------------- the command

def test_gesture_push_cli(small_model, other_model, capsys):
    from gesture_cli import main

    url = f"virtual://classifier?model={small_model.model_dir}&mtu=247"
    assert main(["push", str(other_model), "--url", url]) == 0
    out = capsys.readouterr()
    assert f"the board runs model {other_model_sha(other_model)} from slot" in out.out
    assert "labels: " + (other_model / "labels.txt").read_text().strip().replace("\n", ",") in out.out
    assert "push: 100%" in out.err and "resumes=0" in out.err


def test_gesture_push_cli_resumes_after_the_board_drops_the_link(small_model, other_model, capsys):
    from gesture_cli import main

    url = f"virtual://classifier?model={small_model.model_dir}&mtu=247&push_disconnect_at=5000"
    assert main(["push", str(other_model), "--url", url]) == 0
    out = capsys.readouterr()
    assert "1 resume)" in out.out and "resumes=1" in out.err
    assert f"the board runs model {other_model_sha(other_model)}" in out.out


def test_gesture_push_cli_quotes_the_boards_refusal(small_model, other_model, capsys):
    from gesture_cli import main

    url = f"virtual://classifier?model={small_model.model_dir}&push_flip_at=3000"
    assert main(["push", str(other_model), "--url", url]) == 2
    err = capsys.readouterr().err
    assert "error: the board refused the model (BAD_HASH)" in err and "previous model" in err and "Traceback" not in err


def test_gesture_push_refuses_a_model_beyond_the_firmware_maxima_with_the_field(small_model, capsys, monkeypatch):
    from gesture_cli import main

    monkeypatch.setattr(pk, "MAX_WINDOW", 8)
    url = f"virtual://classifier?model={small_model.model_dir}"
    assert main(["push", str(small_model.model_dir), "--url", url]) == 2
    err = capsys.readouterr().err
    assert "not pushed:" in err and "field 'window'" in err and "2..8 samples" in err


@pytest.mark.parametrize("args, message", [
    (["push", "/nonexistent/model", "--url", "virtual://idle"], "no such folder"),
    (["push", "{data}", "--url", "virtual://idle"], "model.tflite: not found"),
    (["push", "{model}", "--url", "virtual://idle"], "runs the capture sketch"),
    (["push", "{model}"], "--ble NAME|ADDRESS or --url URL"),
    (["push", "{model}", "--url", "/dev/ttyACM0"], "goes over BLE"),
])
def test_gesture_push_cli_errors_are_one_line(small_model, tmp_path, capsys, args, message):
    from gesture_cli import main

    args = [a.format(model=small_model.model_dir, data=tmp_path) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.startswith("error: ")
