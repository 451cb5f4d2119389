# Console log for the device app: one line per event with the uptime; secrets scrubbed from every
# line (config.secrets()), so a password can never reach the serial console or a captured log.
import time

_T0 = time.ticks_ms()
_secrets = []
MASK = "********"


def set_secrets(values):
    """Values that must never be printed (WiFi/MQTT passwords, the HTTP token)."""
    del _secrets[:]
    for v in values:
        if v:
            _secrets.append(v)


def uptime_ms():
    return time.ticks_diff(time.ticks_ms(), _T0)


def scrub(text):
    for s in _secrets:
        if s in text:
            text = text.replace(s, MASK)
    return text


def log(component, msg):
    t = uptime_ms()
    print("%7d.%03d %-5s %s" % (t // 1000, t % 1000, component, scrub(msg)))
