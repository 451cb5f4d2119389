# WiFi supervisor: station with reconnect and capped backoff, the setup access point (first boot,
# or as a fallback while the station cannot connect), and NTP time sync once the station is up.
import asyncio
import socket
import time

import mem
import network
from log import log
from micropython import const

_SYNCED_YEAR = const(2024)  # a clock before this year has not been set


def resolve(host, port):
    """(socket address, numeric IPv4 text) of host: one blocking DNS look-up (MicroPython has no other),
    so callers do it once, in the UART's quiet gap, and keep the result until a failure."""
    ais = socket.getaddrinfo(host, port)
    sa = ais[0][-1]
    for ai in ais:  # the sockets here are IPv4 (socket.socket() defaults)
        if ai[0] == socket.AF_INET:
            sa = ai[-1]
            break
    if isinstance(sa, tuple):  # ESP32: ("192.168.1.5", 1883)
        ip = sa[0]
    elif len(sa) == 16 and sa[0] == 2:  # unix port: a struct sockaddr_in
        ip = "%d.%d.%d.%d" % (sa[4], sa[5], sa[6], sa[7])
    else:
        ip = host
    return sa, ip


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
        self.ntp_ip = None  # ntp.host resolved (numeric), kept until a sync fails
        self.down_ms = self.up_ms = time.ticks_ms()  # when the station last went down / came up
        self.backoff_ms = 1000  # before the next attempt after a failed one (doubles up to backoff_max_s)

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
        self.sta.active(True)
        try:
            network.hostname(self.wcfg["hostname"])
        except (AttributeError, ValueError, OSError):
            pass
        while True:
            if self.sta.isconnected():
                if self.state != "up":
                    self.state = "up"
                    self.connects += 1
                    self.ip = self.sta.ifconfig()[0]
                    self.up_ms = time.ticks_ms()
                    self.backoff_ms = 1000
                    log("wifi", "connected to '%s' as %s" % (self.wcfg["ssid"], self.ip))
                if self.ap_reason and time.ticks_diff(time.ticks_ms(), self.up_ms) > 30000:
                    self.stop_ap()
                await self._ntp()
                await asyncio.sleep_ms(1000)
                continue
            import net_ap_ntp  # (rarely run: loaded for a connection attempt, let go after)

            await net_ap_ntp.connect(self)
            net_ap_ntp = None
            mem.unload("net_ap_ntp")

    async def _ntp(self):
        if not self.ncfg["enabled"] or time.ticks_diff(time.ticks_ms(), self.ntp_next_ms) < 0:
            return
        await self.app.wait_quiet()  # settime() blocks up to its timeout: do it between meter frames
        import net_ap_ntp

        net_ap_ntp.sync_time(self)
        mem.unload("net_ap_ntp")
