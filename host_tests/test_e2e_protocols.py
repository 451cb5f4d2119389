# The firmware with meter.protocol = p1 or mbus (the other protocols on the device): a DSMR telegram capture and
# the encrypted Austrian M-Bus sample fed as the UART; /data.json must equal the library's decoding.
import json
import os
import sys
import time
import urllib.request

import pytest
from hanvectors import load_records, unhex
from test_mbus_portable import EVN, EVN_KEY

from hanport import HanReader, mbus
from hanport.p1 import P1Reader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import run_host  # noqa: E402

pytestmark = [pytest.mark.usefixtures("board")]


def _telegram(vid):
    with open(os.path.join(ROOT, "host_tests", "vectors", "ndokter__dsmr_parser.json")) as f:
        return [r for r in json.load(f) if r["id"] == vid][0]["text"].encode()


def _expected(reader, data):
    got = None
    for rd in reader.feed(data):
        got = rd.as_dict()
    return got


def _run(tmp_path, data, parity, overrides, wait_for):
    cap = str(tmp_path / "capture.bin")
    with open(cap, "wb") as f:
        f.write(data)
    http_port = run_host.free_port()
    cfg = run_host.host_config(http_port, None, parity, overrides=overrides)
    fw = run_host.start_firmware(str(tmp_path / "flash"), cfg, "file:" + cap, "512K", parity,
                                 {"HAN_UART_SPEED": "0"}, str(tmp_path / "fw.log"))
    try:
        assert run_host.wait_port(http_port, 20, fw)
        deadline = time.monotonic() + 30
        while True:
            st = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/status" % http_port, timeout=10).read())
            if st["readings"] >= wait_for or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        body = urllib.request.urlopen("http://127.0.0.1:%d/data.json" % http_port, timeout=10).read()
        return st, json.loads(body)
    finally:
        run_host.stop(fw)


def _core(d):
    return {k: v for k, v in d.items() if k not in ("age_ms", "seq", "received", "accounting", "latest")}


def test_p1_telegrams_through_the_firmware(tmp_path):
    telegram = _telegram("dsmr-parser-v5")
    want = _expected(P1Reader(), telegram * 2)
    assert want and "active_import_kwh" in want
    st, got = _run(tmp_path, telegram * 3, "N", {"meter.protocol": "p1", "uart.baud": 115200}, 3)
    assert st["readings"] == 3 and st["task_crashes"] == {}, st
    assert st["uart"]["rxbuf"] == 8192  # sized from the baud rate (uart.rx_buffer_bytes)
    assert _core(got) == want


def test_encrypted_mbus_through_the_firmware(tmp_path):
    data = unhex("".join(EVN.split()))
    want = _expected(HanReader(2048, EVN_KEY, None, mbus.MbusReader(2048)), data)
    assert want and "active_import_kwh" in want
    st, got = _run(tmp_path, data * 3, "E", {"meter.protocol": "mbus", "meter.key": EVN_KEY}, 3)
    assert st["readings"] == 3 and st["task_crashes"] == {}, st
    assert _core(got) == want
    assert EVN_KEY not in json.dumps(st) and EVN_KEY.lower() not in json.dumps(st)


def test_ciphered_p1_telegrams_of_a_t210d_through_the_firmware(tmp_path):
    # meter.protocol p1 with meter.key: the Sagemcom T210-D's bare ciphered APDUs (Luxembourg, Energienetze
    # Steiermark), its published sample (host_tests/vectors/Noschvie__shrdzm.json)
    from hanport.glo import GloReader

    with open(os.path.join(ROOT, "host_tests", "vectors", "Noschvie__shrdzm.json")) as f:
        rec = [r for r in json.load(f) if r["id"] == "shrdzm-sagemcom-t210d-steiermark"][0]
    data = unhex(rec["hex"])
    want = _expected(HanReader(1024, rec["key_hex"], framer=GloReader(1024)), data)
    assert want and want["active_import_kwh"] == 14159.934
    st, got = _run(tmp_path, data * 3, "N", {"meter.protocol": "p1", "uart.baud": 115200,
                                              "meter.key": rec["key_hex"]}, 3)
    assert st["readings"] == 3 and st["task_crashes"] == {} and st["config_problems"] == [], st
    assert _core(got) == want
    assert rec["key_hex"] not in json.dumps(st) and rec["key_hex"].lower() not in json.dumps(st)


def _aidon_frame():
    for r in load_records():
        if r["id"] == "robin-6525-3-fc722-ok-2":  # a real Aidon frame (host_tests/vectors)
            return unhex(r["hex"])
    raise KeyError("robin-6525-3-fc722-ok-2")


@pytest.mark.parametrize("protocol", ["p1", "hdlc"])
def test_no_uart_byte_lost_at_line_rate_while_dns_and_broker_are_out(tmp_path, protocol, board):
    # the UART fed at its line rate (115200 baud P1: telegrams back to back, harsher than any meter;
    # 2400 baud HDLC), the host UART losing what its driver buffer (uart.rxbuf, sized from the baud
    # rate) cannot hold, while the broker's name does not resolve (a DNS server that never answers):
    # every message decodes, no byte is lost, no call holds the event loop for a second
    if protocol == "p1":
        unit = _telegram("dsmr-parser-v5")
        baud, parity, count, overrides = 115200, "N", 120, {"meter.protocol": "p1", "uart.baud": 115200}
    else:
        unit = _aidon_frame()
        baud, parity, count, overrides = 2400, "E", 12, {"uart.parity": "E"}
    cap = str(tmp_path / "capture.bin")
    with open(cap, "wb") as f:
        f.write(unit * count)
    dns = run_host.DnsServer(silent=True)
    http_port = run_host.free_port()
    overrides = dict(overrides, **{"mqtt.host": "broker.example", "wifi.dns": dns.address, "ntp.host": "ntp.example",
                                   "mqtt.backoff_max_s": 5})
    cfg = run_host.host_config(http_port, 1883, parity, overrides=overrides)
    fw = run_host.start_firmware(str(tmp_path / "flash"), cfg, "file:" + cap, run_host.RIG_DEFAULTS["heap"],
                                 parity, {"HAN_UART_SPEED": "1"}, str(tmp_path / "fw.log"),
                                 run_host.RIG_DEFAULTS["interpreter"])
    seconds = len(unit) * count * 10 / baud
    try:
        assert run_host.wait_port(http_port, 20, fw)
        deadline = time.monotonic() + seconds + 20
        while True:
            st = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/status" % http_port, timeout=10).read())
            done = st["readings"] >= count and st["mqtt"]["connect_failures"] >= 1  # (the first attempt
            if done or time.monotonic() > deadline:  # waits for DNS to time out: it may end after the frames)
                break
            time.sleep(0.5)
        with open(str(tmp_path / "fw.log"), "rb") as f:
            log = f.read().decode("utf-8", "replace")
        assert "overflow" not in log, log[-2000:]
        assert st["readings"] == count, (st["readings"], count, log[-2000:])
        assert st["mqtt"]["connect_failures"] >= 1 and st["mqtt"]["connects"] == 0, st["mqtt"]
        assert st["loop_stall_max_ms"] < 1000 and st["task_crashes"] == {}, st["loop_stall_max_ms"]
    finally:
        run_host.stop(fw)
        dns.close()
