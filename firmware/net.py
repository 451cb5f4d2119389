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
_DNS_TIMEOUT_MS = const(5000)  # a name look-up gives up after this long (the caller backs off)


def is_ipv4(host):
    """True for a numeric IPv4 address ("192.168.1.5"): getaddrinfo takes it without a look-up."""
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p.isdigit() or int(p) > 255:
            return False
    return True


async def resolve(n, host, port):
    """(socket address, numeric IPv4 text) of host for Net n. A name is looked up by dns.py over UDP at
    n.dns_server(), the event loop running on (MicroPython's getaddrinfo would hold it for as long as the
    resolver takes); callers keep the result until a failure. Raises OSError."""
    ip = host
    if not is_ipv4(host):
        import dns

        try:
            ip = await dns.lookup(host, n.dns_server(), _DNS_TIMEOUT_MS)
        finally:
            dns = None
            mem.unload("dns")
    return socket.getaddrinfo(ip, port)[0][-1], ip


class Net:
    def __init__(self, app, cfg):
        import startup  # (the state is set up there: boot-time code, so its bytecode leaves the heap after boot)

        startup.net_state(self, app, cfg)

    @property
    def connected(self):
        return self.state == "up"

    @property
    def setup_mode(self):
        """Unconfigured device serving its setup access point."""
        return not self.wcfg["ssid"]

    def dns_server(self):
        """Socket address of the DNS server: wifi.dns ("ip" or "ip:port"), else the one DHCP gave."""
        host, _, port = (self.wcfg["dns"] or self.sta.ifconfig()[3]).partition(":")
        if not is_ipv4(host):
            raise OSError(22)  # EINVAL: wifi.dns is checked by config.py; a network without DNS
        return socket.getaddrinfo(host, int(port or 53))[0][-1]

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
        import net_ap_ntp

        await net_ap_ntp.sync_time(self)
        net_ap_ntp = None
        mem.unload("net_ap_ntp")
