"""Push over BLE against the exported classifier sketch itself, compiled for the host (firmware/shim):
the board's transfer service (gk_push.h, gk_push_ble.h) on the shim's NOR flash (FlashIAP.h, a file
that outlives the process) over the shim's BLE link model, driven by gesture push's client
(training/push.py). Faults: kill -9 of the firmware at random offsets and a power cut inside the
commit (then a restart runs a whole model, old or new, never a mixture), a flipped byte, a model
for the other board, an op the resolver lacks, an oversize package, a disconnect (resume)."""
from __future__ import annotations

import asyncio
import hashlib
import random
import signal
from pathlib import Path

import pytest

from capture import protocol as p
from capture.errors import GestureError
from capture.virtual import firmware as fw
from tests.conftest import need_tool
from training import package as pk
from training.push import push_package, transfer_package

INTERVAL_MS = 15.0  # the connection interval of every test (the benchmark sweeps it)
SPEED = 2.0  # device seconds per host second


@pytest.fixture(scope="module")
def sketch(small_model, tflm_tree, tmp_path_factory):
    need_tool("g++")
    from training.export import export_sketch

    d = tmp_path_factory.mktemp("push_fw") / "clf_push"
    export_sketch(small_model.model_dir, d, board="nano33ble")
    fw.build(d, "nano33ble", tflm=tflm_tree)  # compiled once (cached by content afterwards)
    return d


@pytest.fixture(scope="module")
def other_model(tmp_path_factory) -> Path:
    """A second model with other labels than small_model's, so a switch shows in the predictions."""
    from capture.virtual import hand
    from training.train import train

    root = tmp_path_factory.mktemp("other_model_fw")
    hand.write_dataset(root / "data", people=4, per_person=4, labels=("ring", "slope", "negative"), test_people=1)
    train(root / "data", root / "model", epochs=1, augment=1, seed=2, quiet=True)
    return root / "model"


def start(sketch: Path, tflm_tree: Path, flash: Path, **kw) -> fw.FirmwareBoard:
    return fw.start_board(board="nano33ble", sketch=sketch, speed=SPEED, tflm=tflm_tree, loop=True, flash=flash,
                          ble_interval_ms=INTERVAL_MS, **kw)


async def connect(board: fw.FirmwareBoard, mtu: int = 247):
    from bleak import BleakClient

    client = BleakClient("firmware", backend=board.backend(mtu=mtu))
    await client.connect()
    return client


async def info(client) -> dict[str, str]:
    return p.decode_info(bytes(await client.read_gatt_char(p.INFO_CHAR_UUID)))


async def predictions(client, seconds: float) -> list[p.Prediction]:
    got: list[p.Prediction] = []

    def on(_sender, data: bytearray) -> None:
        got.append(p.decode_prediction(p.split_ble_notification(bytes(data))[2]))

    await client.start_notify(p.PREDICTION_CHAR_UUID, on)
    await asyncio.sleep(seconds)
    await client.stop_notify(p.PREDICTION_CHAR_UUID)
    return got


def run(coro, timeout: float = 120):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def sha_of(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / "model.tflite").read_bytes()).hexdigest()


def labels_of(model_dir: Path) -> list[str]:
    return (model_dir / "labels.txt").read_text().split()


async def whole_model(board: fw.FirmwareBoard, models: dict[str, Path]) -> str:
    """The running model (by INFO) is one of `models`, and its predictions have its label count."""
    client = await connect(board)
    try:
        i = await info(client)
        assert i["model"] in models, i
        labels = labels_of(models[i["model"]])
        assert i["labels"].split(",") == labels
        preds = await predictions(client, 1.5)
        assert preds and all(len(x.scores) == len(labels) for x in preds)
        return i["model"]
    finally:
        await client.disconnect()


def test_push_switches_the_running_sketch_and_a_restart_keeps_the_new_model(sketch, tflm_tree, small_model,
                                                                             other_model, tmp_path):
    flash = tmp_path / "flash.bin"
    package = pk.build_package(other_model, "nano33ble")
    new_labels = labels_of(other_model)

    async def go():
        client = await connect(b)
        try:
            before = await info(client)
            result = await push_package(client, package)
            after = await predictions(client, 2.0)
            return before, result, after
        finally:
            await client.disconnect()

    with start(sketch, tflm_tree, flash) as b:
        before, result, after = run(go())
        st = b.status
    assert before["model"] == small_model.report["model_sha256"] and before["slot"] in ("255", "builtin")
    assert result.status.state == p.PushState.DONE and result.status.slot == 0
    assert result.info["model"] == sha_of(other_model) and result.info["labels"].split(",") == new_labels
    assert after and all(len(x.scores) == len(new_labels) for x in after)  # the predictions carry the new labels
    assert st.flash_programmed >= len(package) and st.overwritten == 0  # loop() kept reading the IMU
    with start(sketch, tflm_tree, flash) as b:  # power off and on: the committed slot runs
        assert run(whole_model(b, {sha_of(other_model): other_model})) == sha_of(other_model)


@pytest.mark.parametrize("seed", [0, 1, 2, "erasing"])
def test_kill_9_at_a_random_offset_leaves_a_whole_model(sketch, tflm_tree, small_model, other_model, tmp_path, seed):
    flash = tmp_path / "flash.bin"
    package = pk.build_package(other_model, "nano33ble")
    # an offset (len(package): during COMMIT), or "erasing": 0.1 s after BEGIN, while sectors are erased
    at = -1 if seed == "erasing" else random.Random(seed).randrange(0, len(package) + 1)
    models = {small_model.report["model_sha256"]: small_model.model_dir, sha_of(other_model): other_model}

    async def go(b):
        client = await connect(b)

        def progress(done: int, total: int) -> None:
            if done >= at and b.running():
                b.proc.send_signal(signal.SIGKILL)

        async def kill_soon() -> None:
            await asyncio.sleep(0.1)  # BEGIN answered ERASING; 5 sectors take 0.43 s of device time
            b.proc.send_signal(signal.SIGKILL)

        killer = asyncio.get_running_loop().create_task(kill_soon()) if at < 0 else None
        try:
            await transfer_package(client, package, progress=None if at < 0 else progress)
        except GestureError:
            pass  # the board died under the push
        finally:
            await client.disconnect()
            if killer is not None:
                await killer

    with start(sketch, tflm_tree, flash) as b:
        run(go(b))
        b.wait(10)
    with start(sketch, tflm_tree, flash) as b:
        run(whole_model(b, models))


async def push_into_a_cut(b: fw.FirmwareBoard, package: bytes) -> None:
    """Push ``package`` to a board whose power will be cut mid-way: the push fails, which is the point."""
    client = await connect(b)
    try:
        await transfer_package(client, package)
    except GestureError:
        pass
    finally:
        await client.disconnect()


@pytest.mark.parametrize("where", [0, 2, 30, 44, 47])  # bytes of the 48-byte commit record programmed
def test_a_power_cut_inside_the_commit_keeps_the_old_model(sketch, tflm_tree, small_model, other_model, tmp_path,
                                                           where):
    flash = tmp_path / "flash.bin"
    package = pk.build_package(other_model, "nano33ble")
    cut = -(-len(package) // 4) * 4 + where  # the package (padded to a word), then the record

    with start(sketch, tflm_tree, flash, flash_cut=cut) as b:
        run(push_into_a_cut(b, package))
        assert b.wait(10) == fw.FLASH_CUT_EXIT  # the cut happened, inside the record
    with start(sketch, tflm_tree, flash) as b:
        assert run(whole_model(b, {small_model.report["model_sha256"]: small_model.model_dir})) \
            == small_model.report["model_sha256"]


def test_a_power_cut_in_the_middle_of_the_package_keeps_the_old_model(sketch, tflm_tree, small_model, other_model,
                                                                      tmp_path):
    flash = tmp_path / "flash.bin"
    package = pk.build_package(other_model, "nano33ble")

    with start(sketch, tflm_tree, flash, flash_cut=len(package) // 2 + 1) as b:  # half a word programmed
        run(push_into_a_cut(b, package))
        assert b.wait(10) == fw.FLASH_CUT_EXIT
    with start(sketch, tflm_tree, flash) as b:
        run(whole_model(b, {small_model.report["model_sha256"]: small_model.model_dir}))


async def raw_push(client, begin_package: bytes, data: bytes, chunk: int = 240) -> p.PushStatus:
    """BEGIN announcing `begin_package`, DATA from `data` (a corrupted copy, say), COMMIT: the final
    status (the client would refuse some of these before sending)."""
    statuses: asyncio.Queue[p.PushStatus] = asyncio.Queue()
    await client.start_notify(p.PUSH_STATUS_CHAR_UUID, lambda _s, d: statuses.put_nowait(p.decode_push_status(bytes(d))))

    async def until(*states: p.PushState) -> p.PushStatus:
        while True:
            s = await asyncio.wait_for(statuses.get(), 30)
            if s.state in states or s.state == p.PushState.FAILED:
                return s

    await client.write_gatt_char(p.PUSH_CONTROL_CHAR_UUID, p.encode_push_begin(
        len(begin_package), hashlib.sha256(begin_package).digest(), 1), response=True)
    s = await until(p.PushState.RECEIVING)
    if s.state == p.PushState.FAILED:
        return s
    for off in range(0, len(data), chunk):
        await client.write_gatt_char(p.PUSH_DATA_CHAR_UUID, p.encode_push_data(off, data[off:off + chunk]), response=False)
        s = await until(p.PushState.RECEIVING)  # one chunk at a time: no go-back-N needed here
        assert s.offset == min(off + chunk, len(data)), s
    await client.write_gatt_char(p.PUSH_CONTROL_CHAR_UUID, bytes([p.PushOp.COMMIT]), response=True)
    return await until(p.PushState.DONE)


def _refused(sketch, tflm_tree, tmp_path, small_model, begin: bytes, data: bytes) -> p.PushStatus:
    flash = tmp_path / "flash.bin"

    async def go(b):
        client = await connect(b)
        try:
            return await raw_push(client, begin, data), await info(client)
        finally:
            await client.disconnect()

    with start(sketch, tflm_tree, flash) as b:
        status, after = run(go(b))
        assert b.running()
    assert after["model"] == small_model.report["model_sha256"]  # the old model runs on
    with start(sketch, tflm_tree, flash) as b:  # and after a restart
        run(whole_model(b, {small_model.report["model_sha256"]: small_model.model_dir}))
    return status


def test_a_byte_flipped_in_transit_is_refused_and_the_old_model_runs(sketch, tflm_tree, small_model, other_model,
                                                                     tmp_path):
    package = pk.build_package(other_model, "nano33ble")
    bad = bytearray(package)
    bad[len(bad) - 100] ^= 0x04
    s = _refused(sketch, tflm_tree, tmp_path, small_model, package, bytes(bad))
    assert (s.state, s.error) == (p.PushState.FAILED, p.PushError.BAD_HASH) and "BEGIN" in s.text


def test_a_package_whose_payload_does_not_match_its_header_is_refused(sketch, tflm_tree, small_model, other_model,
                                                                       tmp_path):
    bad = bytearray(pk.build_package(other_model, "nano33ble"))
    bad[len(bad) - 100] ^= 0x04  # BEGIN announces the flipped bytes: only the header's hashes can tell
    s = _refused(sketch, tflm_tree, tmp_path, small_model, bytes(bad), bytes(bad))
    assert (s.state, s.error) == (p.PushState.FAILED, p.PushError.BAD_HASH) and "payload" in s.text


def test_a_model_for_the_other_board_is_refused_with_the_reason(sketch, tflm_tree, small_model, other_model, tmp_path):
    package = pk.build_package(other_model, "nano33ble_rev2")
    s = _refused(sketch, tflm_tree, tmp_path, small_model, package, package)
    assert (s.state, s.error) == (p.PushState.FAILED, p.PushError.WRONG_BOARD) and "nano33ble_rev2" in s.text


def test_an_oversize_package_is_refused_at_begin(sketch, tflm_tree, small_model, other_model, tmp_path):
    big = pk.build_package(other_model, "nano33ble") + bytes(pk.MAX_PACKAGE_BYTES)
    s = _refused(sketch, tflm_tree, tmp_path, small_model, big, big)
    assert (s.state, s.error) == (p.PushState.FAILED, p.PushError.TOO_LARGE)
    assert f"{pk.MAX_PACKAGE_BYTES}" in s.text


def _with_unknown_op(tflite: bytes) -> bytes:
    """The model with its first operator code turned into HASHTABLE_LOOKUP (no TFLM kernel)."""
    tf = pytest.importorskip("tensorflow")
    from tensorflow.lite.tools import flatbuffer_utils as fu

    del tf
    model = fu.read_model_from_bytearray(bytearray(tflite))
    model.operatorCodes[0].builtinCode = 10  # BuiltinOperator.HASHTABLE_LOOKUP
    model.operatorCodes[0].deprecatedBuiltinCode = 10
    return bytes(fu.convert_object_to_bytearray(model))


def test_an_op_missing_from_the_resolver_is_refused_with_its_name(sketch, tflm_tree, small_model, other_model,
                                                                 tmp_path):
    from training.model_dir import load_model_dir

    cfg, tflite, report = load_model_dir(other_model)
    odd = _with_unknown_op(tflite)
    package = pk.encode(cfg, odd, board="nano33ble", model_sha256=hashlib.sha256(odd).hexdigest(),
                        arena_bytes=int(report["arena_board_bytes"]))
    s = _refused(sketch, tflm_tree, tmp_path, small_model, package, package)
    assert (s.state, s.error) == (p.PushState.FAILED, p.PushError.MISSING_OP) and "HASHTABLE_LOOKUP" in s.text


def test_a_disconnect_mid_transfer_resumes_from_the_acknowledged_offset(sketch, tflm_tree, other_model, tmp_path):
    flash = tmp_path / "flash.bin"
    package = pk.build_package(other_model, "nano33ble")
    acked: list[int] = []

    async def go(b):
        client = await connect(b)
        clients = [client]

        def progress(done: int, total: int) -> None:
            acked.append(done)
            if len(clients) == 1 and done >= total // 3 and clients[0].is_connected:
                asyncio.get_running_loop().create_task(clients[0].disconnect())

        async def reconnect():
            clients.append(await connect(b))
            return clients[-1]

        try:
            return await push_package(client, package, progress=progress, reconnect=reconnect)
        finally:
            for c in clients:
                await c.disconnect()

    with start(sketch, tflm_tree, flash) as b:
        result = run(go(b))
    assert result.resumed == 1 and result.status.state == p.PushState.DONE
    cut = next(d for d in acked if d >= len(package) // 3)
    resumed_at = acked[acked.index(cut) + 1]  # the first offset the board reported on the new link
    assert resumed_at >= cut  # never from 0: the acknowledged bytes stayed in flash
    assert result.sent_bytes < 2 * len(package)
    assert result.info["model"] == sha_of(other_model)


def test_a_sketch_reaching_into_the_slots_turns_push_off_and_says_why(sketch, tflm_tree, small_model, other_model,
                                                                      tmp_path, monkeypatch):
    monkeypatch.setenv("GK_SHIM_APP_END", "0xC0000")  # the image would end inside slot 0 (0xBC000 ..)
    package = pk.build_package(other_model, "nano33ble")

    async def go(b):
        client = await connect(b)
        try:
            return await raw_push(client, package, package), await info(client)
        finally:
            await client.disconnect()

    with start(sketch, tflm_tree, tmp_path / "flash.bin") as b:
        status, after = run(go(b))
        st = b.status
    assert (status.state, status.error) == (p.PushState.FAILED, p.PushError.FLASH)
    assert "reaches into the model slots" in status.text
    assert after["model"] == small_model.report["model_sha256"] and st.flash_erases == 0


def test_the_whole_reason_reaches_the_user_at_mtu_23(sketch, tflm_tree, small_model, other_model, tmp_path):
    """At MTU 23 a PUSH_STATUS notification carries 9 characters of text; the client reads the
    characteristic (its whole value) for the reason it shows."""
    package = pk.build_package(other_model, "nano33ble_rev2")

    async def go(b):
        client = await connect(b, mtu=23)
        try:
            with pytest.raises(GestureError) as e:
                await transfer_package(client, package)
            return str(e.value)
        finally:
            await client.disconnect()

    with start(sketch, tflm_tree, tmp_path / "flash.bin") as b:
        message = run(go(b))
    assert "WRONG_BOARD" in message and "nano33ble_rev2" in message, message
