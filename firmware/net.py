# WiFi supervisor: station with reconnect and capped backoff, the setup access point (first boot,
# or as a fallback while the station cannot connect), and NTP time sync once the station is up.
import asyncio
import random
import time

import mem
import network
from log import log
from micropython import const

_SYNCED_YEAR = const(2024)  # a clock before this year has not been set


class Net:
    def __init__(self, app, cfg):
        self.app = app
        self.wcfg = cfg["wifi"]
        self.acfg = cfg["ap"]
        self.ncfg = cfg["ntp"]
        self.sta = network.WLAN(network.STA_IF)
        self.ap = network.WLAN(network.AP_IF)
        self.state = "down"
        self.ap_reason = None
        self.connects = 0
        self.failures = 0
        self.last_error = None
        self.ip = None
        self.ntp_synced = False
        self.ntp_syncs = 0
        self.ntp_failures = 0
        self.ntp_next_ms = time.ticks_ms()

    @property
    def connected(self):
        return self.state == "up"

    @property
    def setup_mode(self):
        """Unconfigured device serving its setup access point."""
        return not self.wcfg["ssid"]

    def time_synced(self):
        return self.ntp_synced or time.gmtime()[0] >= _SYNCED_YEAR

    def start_ap(self, reason):
        import net_ap_ntp

        net_ap_ntp.start_ap(self, reason)
        mem.unload("net_ap_ntp")

    def stop_ap(self):
        if self.ap.active():
            self.ap.active(False)
            self.ap_reason = None
            log("wifi", "setup access point off")

    async def run(self):
        if self.setup_mode:
            self.state = "setup"
            self.start_ap("no WiFi configured")
            while True:
                await asyncio.sleep_ms(5000)
        ssid = self.wcfg["ssid"]
        self.sta.active(True)
        try:
            network.hostname(self.wcfg["hostname"])
        except (AttributeError, ValueError, OSError):
            pass
        down_since = time.ticks_ms()
        up_since = None
        backoff_ms = 1000
        while True:
            if self.sta.isconnected():
                if self.state != "up":
                    self.state = "up"
                    self.connects += 1
                    self.ip = self.sta.ifconfig()[0]
                    up_since = time.ticks_ms()
                    backoff_ms = 1000
                    log("wifi", "connected to '%s' as %s" % (ssid, self.ip))
                if self.ap_reason and time.ticks_diff(time.ticks_ms(), up_since) > 30000:
                    self.stop_ap()
                await self._ntp()
                await asyncio.sleep_ms(1000)
                continue
            if self.state == "up":
                self.state = "down"
                down_since = time.ticks_ms()
                log("wifi", "connection lost")
            self.state = "connecting"
            try:
                self.sta.connect(ssid, self.wcfg["password"])
            except OSError as e:
                self.last_error = "connect: %r" % (e,)
            deadline = time.ticks_add(time.ticks_ms(), self.wcfg["connect_timeout_s"] * 1000)
            while not self.sta.isconnected() and time.ticks_diff(deadline, time.ticks_ms()) > 0:
                await asyncio.sleep_ms(250)
            if self.sta.isconnected():
                continue
            self.state = "down"
            self.failures += 1
            self.last_error = "no connection to '%s' (status %s)" % (ssid, self.sta.status())
            log("wifi", self.last_error + "; retry in %d ms" % backoff_ms)
            fb = self.acfg["fallback_after_s"]
            if fb and time.ticks_diff(time.ticks_ms(), down_since) > fb * 1000:
                self.start_ap("WiFi unreachable for %d s" % fb)
            try:
                self.sta.disconnect()
            except OSError:
                pass
            await asyncio.sleep_ms(backoff_ms + random.getrandbits(8) * backoff_ms // 1024)
            backoff_ms = min(backoff_ms * 2, self.wcfg["backoff_max_s"] * 1000)

    async def _ntp(self):
        if not self.ncfg["enabled"] or time.ticks_diff(time.ticks_ms(), self.ntp_next_ms) < 0:
            return
        await self.app.wait_quiet()  # settime() blocks up to its timeout: do it between meter frames
        import net_ap_ntp

        net_ap_ntp.sync_time(self)
        mem.unload("net_ap_ntp")
