# Host stand-in for MicroPython's `ntptime` (ESP32 frozen module): the host clock is already set,
# so settime() only checks that the time looks synced. HAN_SHIM_NTP=fail makes it time out.
import os
import time

host = "pool.ntp.org"
timeout = 1


def time_s():
    return time.time()


def settime():
    if os.getenv("HAN_SHIM_NTP") == "fail":
        raise OSError(110)  # ETIMEDOUT, as the real module raises when no answer comes
