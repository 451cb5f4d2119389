# Serial line self-diagnosis and UART auto-detection from the reader's counters (no I/O here):
# tells "no bytes" from "bytes but no frames" from "CRC errors", and walks 8E1/8N1 x inversion.
import time

from hanport.buffers import const

# Times are milliseconds from time.ticks_ms() on MicroPython (they wrap: compared with ticks_diff),
# any millisecond count on CPython.
_ticks_diff = getattr(time, "ticks_diff", None) or (lambda a, b: a - b)

# UART settings to try, in order: (parity, invert RX). Aidon and Kaifa send 8E1, Kamstrup 8N1;
# some M-Bus converter boards invert the signal (parity: NEK OBIS List Information sheets; inversion:
# docs/han-notes.md §rx-inversion).
LINE_SETTINGS = (("E", False), ("N", False), ("E", True), ("N", True))

# --- diagnosis codes (index into DIAGNOSIS_NAMES / DIAGNOSIS_HINTS) ---
DIAG_STARTING = 0  # not enough time observed yet
DIAG_OK = 1
DIAG_NO_BYTES = 2
DIAG_NO_FRAMES = 3
DIAG_CRC_ERRORS = 4
DIAG_NOT_DECODED = 5
DIAGNOSIS_NAMES = ("starting", "ok", "no_bytes", "no_frames", "crc_errors", "not_decoded")
DIAGNOSIS_HINTS = (
    "waiting for data",
    "valid frames are arriving",
    "no bytes at all: the grid company has not opened the HAN port yet, or the wiring is wrong "
    "(RJ45 pin 1 data, pin 2 ground, converter output to the RX pin)",
    "bytes but no valid frames: wrong parity (Aidon/Kaifa 8E1, Kamstrup 8N1), baud rate (2400) "
    "or RX inversion",
    "frames with CRC errors: electrical noise or a weak supply (the meter's HAN port cannot power "
    "an ESP32 with WiFi on Kamstrup)",
    "valid frames that do not decode: an unknown or encrypted list (see /raw and report it)",
)

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

    def hint(self):
        return DIAGNOSIS_HINTS[self.code]


class SerialAutodetect:
    """Tries each UART setting for trial_ms until one yields valid frames, then keeps it.

    update(now_ms, frames_ok) returns True when the caller must re-open the UART with .setting().
    Once a setting has produced a valid frame it is kept for good (.locked)."""

    def __init__(self, settings=LINE_SETTINGS, first=0, trial_ms=25000):
        self.settings = settings
        self.index = first
        self.trial_ms = trial_ms  # > 2 list intervals: Kamstrup sends every 10 s (Kamstrup HAN-NVE description)
        self.locked = False
        self.trial_start_ms = None
        self.frames_at_start = 0
        self.switches = 0  # how many times the setting was changed
        self.rounds = 0  # full passes over every setting without success

    def setting(self):
        """(parity 'E'|'N', invert_rx bool) to use now."""
        return self.settings[self.index]

    def update(self, now_ms, frames_ok):
        if self.locked:
            return False
        if self.trial_start_ms is None:
            self.trial_start_ms = now_ms
            self.frames_at_start = frames_ok
            return False
        if frames_ok > self.frames_at_start:
            self.locked = True
            return False
        if _ticks_diff(now_ms, self.trial_start_ms) < self.trial_ms:
            return False
        self.index += 1
        if self.index >= len(self.settings):
            self.index = 0
            self.rounds += 1
        self.switches += 1
        self.trial_start_ms = now_ms
        self.frames_at_start = frames_ok
        return True

    def describe(self):
        parity, invert = self.setting()
        return "2400 8%s1%s" % (parity, " inverted" if invert else "")
