# The UART side end to end: line auto-detection (a Kamstrup sends 8N1; the app starts at 8E1), a
# capture file as the byte source, damaged frames counted while decoding goes on.
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import run_host  # noqa: E402

pytestmark = [pytest.mark.usefixtures("board")]


def _wait(rig, pred, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    st = None
    while time.monotonic() < deadline:
        st = rig.status()
        if pred(st):
            return st
        time.sleep(0.3)
    raise AssertionError("condition not met; last status: %s\n%s" % (json.dumps(st)[:2000], rig.log_tail()))


def test_parity_autodetect_finds_kamstrup_8n1(tmp_path):
    rig = run_host.Rig(str(tmp_path), meter="kamstrup", speed=40, mqtt=False, parity="auto",
                       overrides={"uart.autodetect_trial_s": 2})
    try:
        rig.start()
        st = _wait(rig, lambda s: s["readings"] >= 3)
        assert st["uart"]["parity"] == "N" and st["uart"]["autodetect_locked"] is True
        assert st["uart"]["autodetect_switches"] >= 1
        assert st["decoder"]["frames_ok"] >= 3
        d = json.loads(rig.http("/data.json")[2])
        assert d["meter_manufacturer"] == "Kamstrup"
    finally:
        rig.close()


def test_capture_file_as_uart_source_with_damaged_frames(tmp_path):
    cap = str(tmp_path / "kaifa.bin")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "simulate.py"), "--meter", "kaifa", "--count", "400",
                    "--corrupt-every", "10", "--speed", "0", "--start", "2024-03-01T11:50:00", "--out", cap],
                   check=True, capture_output=True)
    http_port = run_host.free_port()
    cfg = run_host.host_config(http_port, None, "E")
    fw = run_host.start_firmware(str(tmp_path / "flash"), cfg, "file:" + cap, "512K", "E",
                                 {"HAN_UART_SPEED": "0"}, str(tmp_path / "fw.log"))
    try:
        assert run_host.wait_port(http_port, 20, fw)
        deadline = time.monotonic() + 30
        while True:
            st = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/status" % http_port, timeout=10).read())
            if st["decoder"]["frames_ok"] + st["decoder"]["fcs_error"] >= 400 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert st["decoder"]["fcs_error"] == 40  # every 10th frame had a byte flipped
        assert st["decoder"]["frames_ok"] == 360 and st["readings"] == 360
        assert st["messages_per_list"]["3"] == 1  # the 12:00:10 hourly list
        assert st["last_error"] == "fcs_error"
        assert st["task_crashes"] == {}
    finally:
        run_host.stop(fw)
