# Updates over the network (issue 12) end to end: the firmware under MicroPython (the 32-bit ESP32 stand-in
# at a plain ESP32's heap where there is one), a process restart standing for a reboot, its flash folder kept.
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import run_host

sys.path.insert(0, os.path.join(run_host.ROOT, "tools"))
import ota as ota_tool  # noqa: E402  (tools/ota.py)

TOKEN = "test-admin-token"
POWER_CUT_EXIT_CODE = 76  # tools/hostshim/machine.py flash_step_hook
HEALTHY_WITHIN_S = 8


@pytest.fixture(scope="module")
def board():
    binary = run_host.standin_binary()
    if binary is None:  # a user's clone: the 64-bit unix port
        return None, "512K"
    return binary, run_host.standin_test_heap(binary)


def make_rig(tmp_path, board, mqtt=False, overrides=None):
    interpreter, heap = board
    o = {"http.timeout_s": 3}
    o.update(overrides or {})
    return run_host.Rig(str(tmp_path), meter="kamstrup", speed=20, mqtt=mqtt, heap=heap, interpreter=interpreter,
                        token=TOKEN, overrides=o)


def device_files(replace=None):
    """[(path, bytes)] of the `make mpy` tree as tools/ota.py sends it; replace: {path: bytes}."""
    files = []
    for path, src in ota_tool.bundle_files(run_host.build_device()):
        with open(src, "rb") as f:
            files.append((path, f.read()))
    for path, data in (replace or {}).items():
        files = [(p, data if p == path else d) for p, d in files]
    return files


def compiled(name, source, tmp_path):
    """source compiled as `make mpy` compiles a module (mpy-cross -O3)."""
    src, out = os.path.join(str(tmp_path), name + ".py"), os.path.join(str(tmp_path), name + ".mpy")
    with open(src, "w") as f:
        f.write(source)
    subprocess.run([run_host.MPY_CROSS, "-O3", "-s", name, "-o", out, src], check=True, capture_output=True)
    with open(out, "rb") as f:
        return f.read()


def upload(rig, bundle, token=TOKEN):
    """(status, text) of POST /update, or (None, why) when the connection broke (a power cut)."""
    try:
        return ota_tool.send_retrying("127.0.0.1", token, bundle, rig.http_port)
    except OSError as e:
        return None, repr(e)


def boot(rig, env=None):
    """The firmware starts on the same flash (env: extra environment, e.g. HAN_POWER_CUT_STEP); until
    HTTP answers, or the process ends first (a version that fails at boot resets the board)."""
    rig.env_extra = env
    rig.fw = run_host.start_firmware(flash(rig), rig.cfg, "tcp:127.0.0.1:%d" % rig.sim_port, rig.heap,
                                     rig.line_parity, env, rig.fw_log, rig.interpreter)
    run_host.wait_port(rig.http_port, 20, rig.fw)


def restart(rig, env=None, expect=run_host.RESET_EXIT_CODE):
    """The board's process ends (expect: its exit code) and boots again with the same flash."""
    assert rig.fw.wait(20) == expect, rig.log_tail()
    boot(rig, env)


def reboot(rig, env=None):
    """Power off now (the process is killed), then boot."""
    rig.fw.send_signal(signal.SIGKILL)
    rig.fw.wait(10)
    boot(rig, env)


ROOT_ONLY = {"running_version": "root install", "fallback_version": "root install", "on_trial_now": False,
             "rollback_reason": None}


def update_state(rig):
    """/status "update" (null while no update was ever installed: make deploy's files run)."""
    return rig.status()["update"] or ROOT_ONLY


def wait_for(rig, what, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while True:
        s = update_state(rig)
        if what(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.2)


def flash(rig, *parts):
    return os.path.join(rig.workdir, "flash", *parts)


def pointer(rig):
    try:
        with open(flash(rig, "ota-pointer.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def versions(rig):
    try:
        return sorted(os.listdir(flash(rig, "v")))
    except FileNotFoundError:
        return []


def test_bundle_format_and_manifest():
    files = [("app.mpy", b"M\x06abc"), ("lib/hanport/x.mpy", b"")]
    bundle = ota_tool.make_bundle(files, "1.2.3")
    head, rest = bundle.split(b"\n", 1)
    head = json.loads(head)
    assert head["format"] == "hanport-ota" and head["layout"] == "hanport-mpy6" and head["count"] == 2
    assert head["bytes"] == 5 and head["version"] == "1.2.3"
    line0, rest = rest.split(b"\n", 1)
    assert line0.split(b" ")[1:] == [b"5", b"app.mpy"] and rest.startswith(b"M\x06abc")
    import hashlib

    lines = [b"%s %d %s\n" % (hashlib.sha256(d).hexdigest().encode(), len(d), p.encode()) for p, d in files]
    assert head["sha256"] == hashlib.sha256(b"1.2.3\n" + b"".join(lines)).hexdigest()
    sent = [p for p, _ in ota_tool.bundle_files(run_host.build_device())]
    assert "app.mpy" in sent and "lib/hanport/reader.mpy" in sent and "www/index.html.gz" in sent
    assert "main.py" not in sent and "version.mpy" not in sent  # (the loader: make deploy only)


def test_good_update_runs_then_becomes_the_fallback(tmp_path, board):
    r = make_rig(tmp_path, board, mqtt=bool(run_host.mosquitto_binary()))
    try:
        r.start()
        assert r.status()["update"] is None and "han_firmware_info" not in r.http("/metrics")[2].decode()
        code, headers, page = r.http("/")  # the dashboard's upload (the settings page links to it)
        page = gzip.decompress(page) if headers.get("Content-Encoding") == "gzip" else page
        assert b'fetch("/firmware/update"' in page and b'id="update"' in page
        code, text = upload(r, ota_tool.make_bundle(device_files(), "good-1"))
        assert code == 200 and "installed" in text, text
        restart(r)
        s = update_state(r)
        assert s["running_version"] == "good-1" and s["fallback_version"] in ("root install", "good-1")
        # healthy (a reading, HTTP up, MQTT connected when set): the version is the fallback now
        s = wait_for(r, lambda s: not s["on_trial_now"])
        assert s == {"running_version": "good-1", "fallback_version": "good-1", "on_trial_now": False,
                     "rollback_reason": None}, s
        metrics = r.http("/metrics")[2].decode()
        assert 'han_firmware_info{running="good-1",fallback="good-1"} 1' in metrics
        assert "han_update_trial 0" in metrics
        assert r.http("/")[0] == 200  # the dashboard from the version's own folder
        assert pointer(r)[:2] == ["a", "a"] and versions(r) == ["a"]
        # the next one goes beside it; once healthy, the older one leaves the flash
        code, text = upload(r, ota_tool.make_bundle(device_files(), "good-2"))
        assert code == 200, text
        restart(r)
        s = wait_for(r, lambda s: not s["on_trial_now"])
        assert s["running_version"] == "good-2" and s["fallback_version"] == "good-2", s
        assert versions(r) == ["a", "b"]  # (the older one leaves with the next update)
        code, text = upload(r, ota_tool.make_bundle(device_files(), "good-2"))
        assert code == 409, text  # (running already)
    finally:
        r.close()


def test_refused_uploads_change_nothing(tmp_path, board):
    r = make_rig(tmp_path, board)
    try:
        r.start()
        good = ota_tool.make_bundle(device_files(), "refused")
        # a wrong token: 401 before the body is read (the answer comes without it)
        t0 = time.monotonic()
        reply = r.raw(b"POST /firmware/update HTTP/1.0\r\nAuthorization: Bearer wrong-token-123\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(good), timeout_s=5)
        assert reply.startswith(b"HTTP/1.0 401") and time.monotonic() - t0 < 2.5, reply
        # one file's bytes changed after the manifest was made
        files = device_files()
        bad = ota_tool.make_bundle(files, "bad-hash").replace(files[3][1], files[3][1][:-1] + b"\x00", 1)
        code, text = upload(r, bad)
        assert code == 400 and "SHA-256 does not match" in text, text
        # the manifest's hash does not match the header
        head, rest = good.split(b"\n", 1)
        doc = json.loads(head)
        doc["sha256"] = "0" * 64
        code, text = upload(r, json.dumps(doc).encode() + b"\n" + rest)
        assert code == 400 and "manifest" in text, text
        # another layout, too large for the flash: clear errors before anything is written
        doc = json.loads(head)
        doc["layout"] = "hanport-mpy5"
        code, text = upload(r, json.dumps(doc).encode() + b"\n" + rest)
        assert code == 400 and "layout" in text, text
        doc = json.loads(head)
        doc["bytes"] = 10 ** 13
        code, text = upload(r, json.dumps(doc).encode() + b"\n" + rest)
        assert code == 413 and "flash" in text, text
        assert upload(r, b"not a bundle\n" + rest)[0] == 400
        # cut halfway (the client goes away), and silent halfway (http.timeout_s: 408)
        r.raw(b"POST /firmware/update HTTP/1.0\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
              % (TOKEN.encode(), len(good)) + good[: len(good) // 2], read=False)
        s = socket.create_connection(("127.0.0.1", r.http_port), timeout=10)
        try:
            s.sendall(b"POST /firmware/update HTTP/1.0\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
                      % (TOKEN.encode(), len(good)) + good[: len(good) // 3])
            assert s.recv(100).startswith(b"HTTP/1.0 408")
        finally:
            s.close()
        time.sleep(0.5)
        assert r.fw.poll() is None, r.log_tail()  # nothing restarted
        assert pointer(r) is None and versions(r) == [], versions(r)  # nothing written stays
        st = r.status()
        assert st["update"] is None and st["readings"] > 0
        assert r.http("/data.json")[0] == 200
    finally:
        r.close()


def test_broken_versions_roll_back(tmp_path, board):
    r = make_rig(tmp_path, board)
    try:
        r.start()
        with open(os.path.join(run_host.ROOT, "firmware", "uart.py")) as f:
            uart_source = f.read()
        # 1. its app raises at import: main.py goes back at once
        broken = compiled("app", "raise ImportError('broken release')\n", tmp_path)
        assert upload(r, ota_tool.make_bundle(device_files({"app.mpy": broken}), "no-import"))[0] == 200
        restart(r)  # the update's restart
        restart(r)  # the import error: rolled back, machine.reset()
        s = update_state(r)
        assert s["running_version"] == "root install" and not s["on_trial_now"], s
        assert "no-import rolled back at boot" in s["rollback_reason"] and "broken release" in s["rollback_reason"]
        # 2. a task that crashes in a loop
        crashing = compiled("uart", uart_source + "\n\nasync def run(self):\n    raise RuntimeError('test crash')\n\n\n"
                            "UartTask.run = run\n", tmp_path)
        assert upload(r, ota_tool.make_bundle(device_files({"uart.mpy": crashing}), "crashing"))[0] == 200
        restart(r)
        assert update_state(r)["running_version"] == "crashing"
        restart(r)  # (rolled back by the app: restarted)
        s = update_state(r)
        assert s["running_version"] == "root install", s
        assert s["rollback_reason"].startswith("crashing rolled back: task uart keeps crashing"), s
        # 3. never healthy (no reading ever), and killed at each of its first boots (a crash the app
        # cannot catch): version.py counts them and goes back after 3
        idle = compiled("uart", uart_source + "\n\nasync def run(self):\n    while True:\n"
                        "        await asyncio.sleep_ms(1000)\n\n\nUartTask.run = run\n", tmp_path)
        bundle = ota_tool.make_bundle(device_files({"uart.mpy": idle}), "idle", healthy_within_s=HEALTHY_WITHIN_S)
        assert upload(r, bundle)[0] == 200
        restart(r)
        for boots in (1, 2, 3):
            assert update_state(r)["running_version"] == "idle" and pointer(r)[2] == boots
            reboot(r)
        restart(r)  # the 4th boot: back to the fallback
        s = update_state(r)
        assert s["running_version"] == "root install" and "idle rolled back at boot: not healthy after 3 boots" in \
            s["rollback_reason"], s
        assert upload(r, ota_tool.make_bundle(device_files({"uart.mpy": idle}), "idle-2",
                                              healthy_within_s=HEALTHY_WITHIN_S))[0] == 200
        restart(r)
        t0 = time.monotonic()
        restart(r)  # not healthy within the bundle's healthy_within_s
        assert time.monotonic() - t0 > HEALTHY_WITHIN_S - 2
        s = update_state(r)
        assert s["running_version"] == "root install" and "not healthy within 8 s" in s["rollback_reason"], s
        assert "no reading" in s["rollback_reason"]
        assert "han_update_rolled_back 1" in r.http("/metrics")[2].decode()
        assert len(versions(r)) == 1  # (the failed one, until the next update removes it)
    finally:
        r.close()


def test_power_cut_at_every_flash_step(tmp_path, board):
    # the process ends at once after flash step k (tools/hostshim machine.flash_step_hook): after the next
    # boot the old or the new version runs, never neither, and its files are whole
    r = make_rig(tmp_path, board)
    try:
        r.start()
        running = "root install"
        for k in range(1, 7):  # 1 folder made .. 4 renamed, 5 pointer aside, 6 switched
            reboot(r, {"HAN_POWER_CUT_STEP": str(k)})
            wait_for(r, lambda s: not s["on_trial_now"])
            code, text = upload(r, ota_tool.make_bundle(device_files(), "cut-%d" % k))
            assert code is None, (k, code, text)
            restart(r, env=None, expect=POWER_CUT_EXIT_CODE)
            s = update_state(r)
            assert s["running_version"] == (running if k < 6 else "cut-%d" % k), (k, s)
            s = wait_for(r, lambda s: not s["on_trial_now"])
            running = s["running_version"]
            deadline = time.monotonic() + 10
            while r.status()["readings"] == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert r.status()["readings"] > 0 and r.http("/data.json")[0] == 200
        assert running == "cut-6"
        # 7: old versions removed; 8: the healthy one's pointer written aside
        run_host.stop(r.sim)  # no readings: a new version stays on trial
        reboot(r, {"HAN_POWER_CUT_STEP": "7"})
        assert upload(r, ota_tool.make_bundle(device_files(), "t7a"))[0] == 200  # (nothing to remove yet)
        restart(r, env={"HAN_POWER_CUT_STEP": "7"})
        assert update_state(r)["on_trial_now"]
        got = upload(r, ota_tool.make_bundle(device_files(), "t7b"))
        assert got[0] is None, got  # t7a (on trial) removed
        restart(r, env={"HAN_POWER_CUT_STEP": "8"}, expect=POWER_CUT_EXIT_CODE)
        s = update_state(r)
        assert s["running_version"] == "t7b" and s["fallback_version"] == "cut-6" and s["on_trial_now"]
        r.sim = run_host.start_simulator(r.sim_port, r.meter, r.speed, (), r.sim_log)
        restart(r, env=None, expect=POWER_CUT_EXIT_CODE)  # cut at 8 confirming it
        s = update_state(r)
        assert s["running_version"] == "t7b" and s["on_trial_now"], s  # (the old pointer: still on trial)
        s = wait_for(r, lambda s: not s["on_trial_now"])
        assert s["running_version"] == "t7b" and s["fallback_version"] == "t7b", s
        assert r.http("/data.json")[0] == 200
        assert upload(r, ota_tool.make_bundle(device_files(), "after"))[0] == 200  # (leftovers removed)
        restart(r)
        s = wait_for(r, lambda s: not s["on_trial_now"])
        assert s["running_version"] == "after" and len(versions(r)) == 2, versions(r)  # (it and the one before)
    finally:
        r.close()
