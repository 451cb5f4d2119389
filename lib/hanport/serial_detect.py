# UART auto-detection (no I/O here): walks 8E1/8N1 x RX inversion until a setting yields a frame
# that checks out. The firmware loads it only while the setting is unknown (uart.parity "auto").
import time

_ticks_diff = getattr(time, "ticks_diff", None) or (lambda a, b: a - b)  # ticks_ms wrap on MicroPython

# UART settings to try, in order: (parity, invert RX). Aidon and Kaifa send 8E1, Kamstrup 8N1;
# some M-Bus converter boards invert the signal (parity: NEK OBIS List Information sheets; inversion:
# docs/han-notes.md §rx-inversion).
LINE_SETTINGS = (("E", False), ("N", False), ("E", True), ("N", True))


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
