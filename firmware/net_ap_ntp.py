# The WiFi supervisor's rarely run parts (net.py loads them for each use and unloads them after):
# the setup access point and the NTP clock sync.
import time

import network
from log import log


def start_ap(n, reason):
    """Bring up the setup access point of net.Net `n` (open, or WPA2 with ap.password)."""
    if n.ap.active():
        return
    n.ap_reason = reason
    try:
        n.ap.active(True)
        pw = n.acfg["password"]
        if pw:
            try:
                n.ap.config(essid=n.acfg["ssid"], password=pw, authmode=network.AUTH_WPA2_PSK)
            except (TypeError, ValueError):  # older ports name it `key`
                n.ap.config(essid=n.acfg["ssid"], key=pw, authmode=network.AUTH_WPA2_PSK)
        else:
            n.ap.config(essid=n.acfg["ssid"], authmode=network.AUTH_OPEN)
        log("wifi", "setup access point '%s' up at %s (%s)" % (n.acfg["ssid"], n.ap.ifconfig()[0], reason))
    except OSError as e:
        n.last_error = "ap: %r" % (e,)
        log("wifi", "cannot start the access point: %r" % (e,))


def sync_time(n):
    """Set the clock from NTP (ntptime, blocking up to its timeout: Net calls it between meter frames)."""
    try:
        import ntptime
    except ImportError:
        n.ncfg["enabled"] = False
        return
    ntptime.host = n.ncfg["host"]
    try:
        ntptime.settime()
        n.ntp_synced = True
        n.ntp_syncs += 1
        n.ntp_next_ms = time.ticks_add(time.ticks_ms(), n.ncfg["interval_s"] * 1000)
    except (OSError, OverflowError, IndexError) as e:
        n.ntp_failures += 1
        n.last_error = "ntp: %r" % (e,)
        n.ntp_next_ms = time.ticks_add(time.ticks_ms(), 60000)
