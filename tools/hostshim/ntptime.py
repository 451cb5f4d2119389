# Host stand-in for MicroPython's `ntptime` (ESP32 frozen module): the host clock is already set,
# so settime() only resolves the host and checks that the time looks synced. HAN_SHIM_NTP=fail makes it time out.
import os
import socket
import time

host = "pool.ntp.org"
timeout = 1


def time_s():
    return time.time()


def settime():
    socket.getaddrinfo(host, 123)  # as the real module does at every call (OSError if it does not resolve)
    if os.getenv("HAN_SHIM_NTP") == "fail":
        raise OSError(110)  # ETIMEDOUT, as the real module raises when no answer comes
