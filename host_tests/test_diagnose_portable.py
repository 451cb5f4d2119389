# Self-diagnosis and serial auto-detection, fed through a bit-level UART model with the
# meter at its real parity and the reader at a wrong one. Runs on CPython and MicroPython.
from hanvectors import load_records, unhex
from uartmodel import line_bits, receive

from hanport import HanReader
from hanport.diagnose import (
    DIAG_CRC_ERRORS,
    DIAG_NO_BYTES,
    DIAG_NO_FRAMES,
    DIAG_NOT_DECODED,
    DIAG_OK,
    DIAG_STARTING,
    DIAGNOSIS_NAMES,
    LineMonitor,
)
from hanport.serial_detect import SerialAutodetect


def _frame(prefix):
    for r in load_records():
        if r["id"] == prefix:
            return unhex(r["hex"])
    raise KeyError(prefix)


KAMSTRUP = _frame("roarfred-kamstrup228")  # 8N1 meter (Kamstrup HAN-NVE interface description rev 3.1)
AIDON = _frame("robin-6525-3-fc722-ok-2")  # 8E1 meter


def test_uart_model_round_trip():
    for parity in ("N", "E", "O"):
        got, errors = receive(line_bits(AIDON, parity, 12), parity)
        assert got == AIDON and errors == 0
    got, errors = receive(line_bits(AIDON, "E", 12), "E", invert=True)
    assert got != AIDON


def _run(meter_frame, meter_parity, inverted_line, seconds, period_s=10, start=0):
    """Meter sends a frame every period_s; the reader follows SerialAutodetect. Returns the
    detector, the monitor, the readings per second mark and the diagnosis seen per step."""
    det = SerialAutodetect(first=start)
    mon = LineMonitor(window_ms=30000)
    reader = HanReader()
    bytes_in = 0
    seen = []
    readings_at = []
    for t in range(0, seconds, period_s):
        now = t * 1000
        parity, invert = det.setting()
        bits = line_bits(meter_frame, meter_parity, 30)
        if inverted_line:
            bits = bytearray(b ^ 1 for b in bits)
        data, _ = receive(bits, parity, invert)
        bytes_in += len(data)
        n = 0
        for _ in reader.feed(data):
            n += 1
        readings_at.append(n)
        c = reader.counters()
        crc = c["hcs_error"] + c["fcs_error"]
        seen.append(mon.update(now, bytes_in, c["frames_ok"], crc, c["readings"]))
        if det.update(now, c["frames_ok"]):
            reader = HanReader()  # the UART was re-opened: start clean
            bytes_in = 0
            mon = LineMonitor(window_ms=30000)
    return det, mon, readings_at, seen


def test_kamstrup_8n1_found_from_8e1():
    det, mon, readings, seen = _run(KAMSTRUP, "N", False, 200)
    assert det.locked and det.setting() == ("N", False), det.setting()
    assert det.describe() == "2400 8N1"
    assert sum(readings[-5:]) == 5  # every frame decodes once the setting is right
    assert seen[-1] == DIAG_OK
    assert DIAG_NO_FRAMES in seen  # the wrong parity was diagnosed as such before switching


def test_aidon_8e1_kept_at_once():
    det, _, readings, _ = _run(AIDON, "E", False, 60)
    assert det.locked and det.setting() == ("E", False) and det.switches == 0
    assert sum(readings) == 6


def test_inverted_converter_found():
    det, _, readings, seen = _run(AIDON, "E", True, 300)
    assert det.locked and det.setting() == ("E", True), det.setting()
    assert sum(readings[-5:]) == 5 and seen[-1] == DIAG_OK


def test_monitor_no_bytes_then_crc_errors_then_not_decoded():
    mon = LineMonitor(window_ms=30000)
    assert mon.update(0, 0, 0, 0, 0) == DIAG_STARTING
    assert mon.update(10000, 0, 0, 0, 0) == DIAG_STARTING
    assert mon.update(30000, 0, 0, 0, 0) == DIAG_NO_BYTES
    assert mon.update(60000, 5000, 10, 10, 10) == DIAG_CRC_ERRORS
    assert mon.update(90000, 9000, 20, 10, 10) == DIAG_NOT_DECODED
    assert mon.update(95000, 9500, 21, 10, 11) == DIAG_OK  # good news is reported at once
    assert mon.name() == "ok" and DIAGNOSIS_NAMES[mon.code] == "ok"


def test_autodetect_cycles_when_nothing_works():
    det = SerialAutodetect(trial_ms=1000)
    switches = 0
    for t in range(0, 10000, 100):
        if det.update(t, 0):
            switches += 1
    assert switches >= 8 and det.rounds >= 2 and not det.locked
