# Host stand-in for the ESP32 `network` module (WLAN only) under the MicroPython unix port: the host
# is always "on the network"; HAN_SHIM_WIFI=fail makes the station never connect. Kept small: on a
# board this module is C and costs no heap, here it is bytecode in the heap being measured.
import os

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201
AUTH_OPEN = 0
AUTH_WPA2_PSK = 3
_name = ["hanreader"]
_ifaces = {}


def _nameserver():
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 1 and parts[0] == "nameserver" and parts[1].count(".") == 3:
                    return parts[1]
    except OSError:
        pass
    return "127.0.0.1"


def hostname(name=None):
    if name is None:
        return _name[0]
    _name[0] = name


def WLAN(iface=STA_IF):  # noqa: N802 (the module's own name): one object per interface, like the port
    if iface not in _ifaces:
        _ifaces[iface] = _Wlan(iface)
    return _ifaces[iface]


class _Wlan:
    def __init__(self, iface):
        self.iface = iface
        self.on = False
        self.up = False
        self.ssid = ""
        self.st = STAT_IDLE

    def active(self, on=None):
        if on is None:
            return self.on
        self.on = bool(on)
        self.up = self.up and self.on
        print("[hostshim] WLAN %s active=%s" % ("AP" if self.iface == AP_IF else "STA", self.on))

    def connect(self, ssid=None, key=None, **kw):
        self.ssid = ssid or ""
        self.up = os.getenv("HAN_SHIM_WIFI") != "fail"
        self.st = STAT_GOT_IP if self.up else STAT_NO_AP_FOUND

    def disconnect(self):
        self.up = False
        self.st = STAT_IDLE

    def isconnected(self):
        return self.on and (self.up or self.iface == AP_IF)

    def status(self, param=None):
        return -55 if param == "rssi" else self.st

    def ifconfig(self, conf=None):
        """(ip, mask, gateway, DNS server): the DNS server is the host's own (its first IPv4
        nameserver), as a board's comes from DHCP."""
        ip = "192.168.4.1" if self.iface == AP_IF else "127.0.0.1"
        return (ip, "255.255.255.0", ip, _nameserver())

    def config(self, *args, **kw):
        if args:
            return self.ssid if args[0] in ("essid", "ssid") else None
        self.ssid = kw.get("essid", kw.get("ssid", self.ssid))
