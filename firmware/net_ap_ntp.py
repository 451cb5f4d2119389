# The WiFi supervisor's rarely run parts (net.py loads them for each use and unloads them after):
# a station connection attempt with its backoff, the setup access point and the NTP clock sync.
import asyncio
import random
import time

import network
from log import log
from net import resolve


async def connect(n):
    """One station connection attempt of net.Net `n` (the station is down): wait up to
    wifi.connect_timeout_s; on failure the setup access point after ap.fallback_after_s down, then
    the backoff (doubling up to wifi.backoff_max_s, with jitter)."""
    ssid = n.wcfg["ssid"]
    if n.state == "up":
        n.state = "down"
        n.down_ms = time.ticks_ms()
        log("wifi", "connection lost")
    n.state = "connecting"
    try:
        n.sta.connect(ssid, n.wcfg["password"])
    except OSError as e:
        n.last_error = "connect: %r" % (e,)
    deadline = time.ticks_add(time.ticks_ms(), n.wcfg["connect_timeout_s"] * 1000)
    while not n.sta.isconnected() and time.ticks_diff(deadline, time.ticks_ms()) > 0:
        await asyncio.sleep_ms(250)
    if n.sta.isconnected():
        return
    n.state = "down"
    n.failures += 1
    n.last_error = "no connection to '%s' (status %s)" % (ssid, n.sta.status())
    log("wifi", n.last_error + "; retry in %d ms" % n.backoff_ms)
    fb = n.acfg["fallback_after_s"]
    if fb and time.ticks_diff(time.ticks_ms(), n.down_ms) > fb * 1000:
        start_ap(n, "WiFi unreachable for %d s" % fb)
    try:
        n.sta.disconnect()
    except OSError:
        pass
    await asyncio.sleep_ms(n.backoff_ms + random.getrandbits(8) * n.backoff_ms // 1024)
    n.backoff_ms = min(n.backoff_ms * 2, n.wcfg["backoff_max_s"] * 1000)


def start_ap(n, reason):
    """Bring up the setup access point of net.Net `n`, always with WPA2: ap.password, or when that is
    empty the device's own (ap_password(), printed here: read it off the serial log)."""
    if n.ap.active():
        return
    n.ap_reason = reason
    try:
        n.ap.active(True)
        pw = n.acfg["password"] or ap_password()
        try:
            n.ap.config(essid=n.acfg["ssid"], password=pw, authmode=network.AUTH_WPA2_PSK)
        except (TypeError, ValueError):  # older ports name it `key`
            n.ap.config(essid=n.acfg["ssid"], key=pw, authmode=network.AUTH_WPA2_PSK)
        log("wifi", "setup access point '%s' up at %s (%s), password %s" % (
            n.acfg["ssid"], n.ap.ifconfig()[0], reason, "from ap.password" if n.acfg["password"] else pw))
    except OSError as e:
        n.last_error = "ap: %r" % (e,)
        log("wifi", "cannot start the access point: %r" % (e,))


def ap_password():
    """The setup access point's password when ap.password is empty: "han-" and the last 4 bytes of the
    chip's unique id (its MAC) in hex, e.g. han-2c3d4e5f (docs/deploy.md)."""
    import machine

    return "han-" + "".join("%02x" % b for b in machine.unique_id()[-4:])


async def sync_time(n):
    """Set the clock from NTP. ntp.host is resolved once (net.resolve: the event loop runs on) and the
    address kept: ntptime would look the name up at every sync with the blocking getaddrinfo. After a
    failure it is looked up again at the next try (a minute later). settime() itself blocks up to its
    timeout (1 s): it runs in the meter's idle gap."""
    try:
        import ntptime
    except ImportError:
        n.ncfg["enabled"] = False
        return
    try:
        if n.ntp_ip is None:
            n.ntp_ip = (await resolve(n, n.ncfg["host"], 123))[1]
        await n.app.wait_quiet()
        ntptime.host = n.ntp_ip
        ntptime.settime()
        n.ntp_synced = True
        n.ntp_syncs += 1
        n.ntp_next_ms = time.ticks_add(time.ticks_ms(), n.ncfg["interval_s"] * 1000)
    except (OSError, OverflowError, IndexError, ValueError) as e:
        n.ntp_ip = None
        n.ntp_failures += 1
        n.last_error = "ntp: %r" % (e,)
        n.ntp_next_ms = time.ticks_add(time.ticks_ms(), 60000)
