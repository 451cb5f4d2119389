# Host stand-in for the ESP32 `network` module (WLAN only) under the MicroPython unix port.
# The host is always "on the network"; HAN_SHIM_WIFI=fail makes the station never connect.
import os

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_WRONG_PASSWORD = 202
STAT_NO_AP_FOUND = 201
AUTH_OPEN = 0
AUTH_WPA2_PSK = 3


def hostname(name=None):
    if name is None:
        return WLAN._hostname
    WLAN._hostname = name


class WLAN:
    _hostname = "hanreader"
    _ifaces = {}

    def __new__(cls, iface=STA_IF):
        if iface not in cls._ifaces:
            obj = object.__new__(cls)
            obj._iface = iface
            obj._active = False
            obj._connected = False
            obj._ssid = ""
            obj._status = STAT_IDLE
            cls._ifaces[iface] = obj
        return cls._ifaces[iface]

    def __init__(self, iface=STA_IF):
        pass

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        if not on:
            self._connected = False
        print("[hostshim] WLAN %s active=%s" % ("AP" if self._iface == AP_IF else "STA", self._active))

    def connect(self, ssid=None, key=None, **kw):
        self._ssid = ssid or ""
        if os.getenv("HAN_SHIM_WIFI") == "fail":
            self._status = STAT_NO_AP_FOUND
            self._connected = False
        else:
            self._status = STAT_GOT_IP
            self._connected = True

    def disconnect(self):
        self._connected = False
        self._status = STAT_IDLE

    def isconnected(self):
        if self._iface == AP_IF:
            return self._active
        return self._active and self._connected

    def status(self, param=None):
        if param == "rssi":
            return -55
        return self._status

    def ifconfig(self, conf=None):
        if self._iface == AP_IF:
            return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "192.168.4.1")
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")

    def config(self, *args, **kw):
        if args:
            key = args[0]
            if key == "essid" or key == "ssid":
                return self._ssid
            if key == "mac":
                return b"\x24\x0a\xc4\xa1\xb2\xc3"
            if key == "hostname" or key == "dhcp_hostname":
                return WLAN._hostname
            return None
        if "essid" in kw:
            self._ssid = kw["essid"]
        if "ssid" in kw:
            self._ssid = kw["ssid"]
        return None
