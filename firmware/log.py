# Console log for the device app: one line per event with the uptime; secrets scrubbed from every
# line (config.secrets()), so a password can never reach the serial console or a captured log.
import time

_last_ticks = time.ticks_ms()
_up_ms = 0
_secrets = []
MASK = "********"


def set_secrets(values):
    """Values that must never be printed (WiFi/MQTT passwords, the HTTP token)."""
    del _secrets[:]
    for v in values:
        if v:
            _secrets.append(v)


def uptime_ms():
    """Milliseconds since boot. ticks_ms() wraps (2^30 ms on an ESP32) and ticks_diff is only valid
    within half of that, so the difference is accumulated; the app's 1 s ticker keeps it current."""
    global _last_ticks, _up_ms
    now = time.ticks_ms()
    _up_ms += time.ticks_diff(now, _last_ticks)
    _last_ticks = now
    return _up_ms


def scrub(text):
    for s in _secrets:
        if s in text:
            text = text.replace(s, MASK)
    return text


def log(component, msg):
    t = uptime_ms()
    print("%7d.%03d %-5s %s" % (t // 1000, t % 1000, component, scrub(msg)))


def log_exception(component, e):
    """The traceback of e, line by line through scrub() like every other line (sys.print_exception
    straight to the console would print a secret held in an exception's message)."""
    import io
    import sys

    buf = io.StringIO()
    sys.print_exception(e, buf)
    for line in buf.getvalue().split("\n"):
        if line:
            log(component, line)
