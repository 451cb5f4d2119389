# Serial line self-diagnosis from the reader's counters (no I/O here): tells "no bytes" from "bytes
# but no frames" from "CRC errors" from "frames that do not decode". Auto-detection: serial_detect.py.
import time

from hanport.buffers import const

# Times are milliseconds from time.ticks_ms() on MicroPython (they wrap: compared with ticks_diff),
# any millisecond count on CPython.
_ticks_diff = getattr(time, "ticks_diff", None) or (lambda a, b: a - b)

# --- diagnosis codes (index into DIAGNOSIS_NAMES; the firmware's /status explains each: status.HINTS) ---
DIAG_STARTING = 0  # not enough time observed yet
DIAG_OK = 1
DIAG_NO_BYTES = 2
DIAG_NO_FRAMES = 3
DIAG_CRC_ERRORS = 4
DIAG_NOT_DECODED = 5
DIAGNOSIS_NAMES = ("starting", "ok", "no_bytes", "no_frames", "crc_errors", "not_decoded")
_CRC_ERROR_SHARE_PCT = const(10)  # more than this share of frames with HCS/FCS errors is a line problem


class LineMonitor:
    """Diagnoses the serial line over consecutive windows of counter totals.

    update() takes cumulative totals (bytes received, frames with valid checks, frames with HCS/FCS
    errors, decoded readings) and the time; each full window is judged on its own increments, and
    good news (valid, decoded frames) is reported as soon as it is seen."""

    def __init__(self, window_ms=30000):
        self.window_ms = window_ms
        self.since_ms = None  # start of the current window
        self.base = [0, 0, 0, 0]  # totals at the start of the window
        self.code = DIAG_STARTING

    def reset(self, now_ms, bytes_in, frames_ok, crc_errors, readings):
        """Start a new window (also after the UART settings changed)."""
        self.since_ms = now_ms
        b = self.base
        b[0] = bytes_in
        b[1] = frames_ok
        b[2] = crc_errors
        b[3] = readings

    def update(self, now_ms, bytes_in, frames_ok, crc_errors, readings):
        """Returns the diagnosis code (DIAG_*)."""
        if self.since_ms is None:
            self.reset(now_ms, bytes_in, frames_ok, crc_errors, readings)
            return self.code
        b = self.base
        d_ok = frames_ok - b[1]
        d_crc = crc_errors - b[2]
        d_read = readings - b[3]
        crc_high = d_crc * 100 > _CRC_ERROR_SHARE_PCT * (d_ok + d_crc)
        if d_ok > 0 and d_read > 0 and not crc_high:
            self.code = DIAG_OK
        if _ticks_diff(now_ms, self.since_ms) < self.window_ms:
            return self.code
        if bytes_in == b[0]:
            self.code = DIAG_NO_BYTES
        elif d_ok == 0:
            self.code = DIAG_NO_FRAMES
        elif crc_high:
            self.code = DIAG_CRC_ERRORS
        elif d_read == 0:
            self.code = DIAG_NOT_DECODED
        else:
            self.code = DIAG_OK
        self.reset(now_ms, bytes_in, frames_ok, crc_errors, readings)
        return self.code

    def name(self):
        return DIAGNOSIS_NAMES[self.code]
