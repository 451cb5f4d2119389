# The socket wrapper mqtt.py puts around umqtt.simple's socket (mqtt.BoundedSock) and the heap cost of
# mqtt.py, under MicroPython as installed by `make deploy` (the 64-bit PyPI port and the 32-bit ESP32
# stand-in): every read/write bounded by the timeout, partial writes looped until all bytes are out,
# non-blocking reads for check_msg, PINGRESP counted; hanport.hass loaded only while discovery is sent.
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import run_host  # noqa: E402

from hanport import reading  # noqa: E402

INTERPRETERS = ("unix64", "esp32")

SOCK_SCRIPT = r"""
import socket, sys, time
import mqtt

class Owner:
    pongs = 0

def ms(t0):
    return time.ticks_diff(time.ticks_ms(), t0)

def conn(port):
    s = socket.socket()
    s.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    return s

port = int(sys.argv[1])
own = Owner()
w = mqtt.BoundedSock(conn(port), 1000, own)
w.setblocking(False)
print("nb_empty", w.read(1))
w.setblocking(True)
t0 = time.ticks_ms()
try:
    w.read(1)
    print("read_timeout none")
except OSError as e:
    print("read_timeout", e.errno, ms(t0))
w.write(b"GO1")
print("read4", w.read(4))  # the peer sends b"ab", then b"cd" 300 ms later
w.write(b"GO2XYZ", 3)  # length argument, as umqtt's write(buf, n)
time.sleep_ms(300)
w.setblocking(False)
print("pingresp", w.read(1), own.pongs, w.rx)
w.setblocking(True)
data = bytes(range(256)) * 256  # 64 KB to a peer with a small receive window, reading slowly
t0 = time.ticks_ms()
print("big_write", w.write(data), ms(t0))
try:
    for i in range(500):  # the peer no longer reads: the kernel buffers fill, then a write times out
        t0 = time.ticks_ms()
        w.write(data)
    print("write_timeout none")
except OSError as e:
    print("write_timeout", e.errno, ms(t0))
e = mqtt.BoundedSock(conn(port), 1000, own)  # the peer closes this one at once
t0 = time.ticks_ms()
print("eof", e.read(1), ms(t0))
print("done")
"""

HEAP_SCRIPT = r"""
import gc, sys
import log, select, socket, time, random, json, asyncio, mem
import net  # (resident in the app before mqtt.py: app.py, startup.py)
from hanport import appjson, reading
from umqtt import simple
gc.collect()
a0 = gc.mem_alloc()
import mqtt
gc.collect()
print("import", gc.mem_alloc() - a0, "hanport.hass" in sys.modules)

class L:
    mask = (1 << %(n_numeric)d) - 1  # (reading.N_NUMERIC: the build folds it into the code that uses it)
    manufacturer = "Aidon"
    meter_type = "6525"
    meter_id = "7359992890941742"

class App:
    latest = L()
    version = "t"
    accounting = None
    superseded = 0

class C:
    n = 0
    def publish(self, topic, msg, retain=False):
        C.n += 1

m = {"enabled": True, "host": "broker", "port": 1883, "user": "", "password": "", "tls": False,
     "client_id": "", "node_id": "", "base_topic": "han", "keepalive_s": 60, "timeout_s": 2,
     "backoff_max_s": 60, "discovery": True, "discovery_prefix": "homeassistant", "expire_after_s": 120,
     "accounting_interval_s": 60}
q = mqtt.Mqtt(App(), {"name": "x", "mqtt": m}, "han_x")
q.client = C()
q._send_discovery()  # the first one may grow tables that stay (sys.modules, qstr pool)
gc.collect()
b0 = gc.mem_alloc()
q._send_discovery()
gc.collect()
print("discovery", C.n, "hanport.hass" in sys.modules, gc.mem_alloc() - b0)

# out of heap while building the messages: nothing sent, the connection stays, retried later
import micropython
q.discovery_due = False
r = None  # a new global while the heap is locked would need an allocation
micropython.heap_lock()
try:
    q._send_discovery()
    r = "kept"
except MemoryError:
    r = "raised"
micropython.heap_unlock()
print("oom_building", r, q.discovery_due, time.ticks_diff(q.disc_ms, time.ticks_ms()) > 1000,
      "hanport.hass" in sys.modules, q.last_error.replace(" ", "_"))

# out of heap inside publish (part of a message may be on the wire): the connection has to go
class Broken:
    def publish(self, topic, msg, retain=False):
        raise MemoryError
q.client = Broken()
try:
    q._send_discovery()
    r = "kept"
except MemoryError:
    r = "raised"
print("oom_sending", r, "hanport.hass" in sys.modules)
"""


def interpreter(which):
    if which == "unix64":
        return run_host.MICROPYTHON
    binary = run_host.standin_binary()
    if binary is None:
        pytest.skip("no 32-bit ESP32 stand-in (HANPORT_MICROPYTHON32 or ../shared/tools/esp32like/"
                    "micropython-esp32stock)")
    return binary


def run_mp(tmp_path, which, script, args=(), timeout_s=60):
    interp = interpreter(which)
    flash = str(tmp_path / "flash")
    os.makedirs(flash, exist_ok=True)
    run_host.install_like_deploy(flash, interp)
    path = os.path.join(str(tmp_path), "script.py")
    with open(path, "w") as f:
        f.write(script)
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([".frozen", flash, os.path.join(flash, "lib"),
                                                        run_host.build_shims()]))
    return subprocess.Popen([interp, "-X", "heapsize=256K", path] + list(args), cwd=flash, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Peer:
    """The far end for SOCK_SCRIPT: a small receive window, scripted answers."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted sockets
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(2)
        self.srv.settimeout(30)
        self.port = self.srv.getsockname()[1]
        self.got = bytearray()
        self.errors = []
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _expect(self, c, what):
        buf = b""
        while len(buf) < len(what):
            chunk = c.recv(len(what) - len(buf))
            if not chunk:
                raise EOFError(what)
            buf += chunk
        if buf != what:
            raise AssertionError((what, buf))

    def _run(self):
        try:
            c, _ = self.srv.accept()
            c.settimeout(30)
            self._expect(c, b"GO1")
            c.sendall(b"ab")
            time.sleep(0.3)
            c.sendall(b"cd")
            self._expect(c, b"GO2")
            c.sendall(b"\xd0")
            want = 64 * 1024
            while len(self.got) < want:  # slowly: the writer has to wait and write the rest
                chunk = c.recv(min(8192, want - len(self.got)))
                if not chunk:
                    break
                self.got += chunk
                time.sleep(0.002)
            c2, _ = self.srv.accept()
            c2.close()
            self.hold = c  # no more reading: the writer must give up after its timeout
        except Exception as e:  # reported by the test
            self.errors.append(repr(e))


@pytest.mark.parametrize("which", INTERPRETERS)
def test_socket_wrapper_bounds_every_call_and_loops_partial_writes(tmp_path, which):
    peer = Peer()
    p = run_mp(tmp_path, which, SOCK_SCRIPT, (str(peer.port),))
    try:
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
        peer.srv.close()
    peer.t.join(10)
    assert not peer.errors, (peer.errors, out)
    rows = {}
    for line in out.splitlines():
        k, _, v = line.partition(" ")
        rows[k] = v
    assert "done" in rows, out
    assert rows["nb_empty"] == "None", out  # check_msg's read returns at once
    errno, took = rows["read_timeout"].split()
    assert errno == "110" and 900 <= int(took) < 1600, out  # umqtt's "blocking" read: bounded
    assert rows["read4"] == "b'abcd'", out  # a short read is completed within the bound
    assert rows["pingresp"] == "b'\\xd0' 1 2", out  # counted as a PINGRESP, and as received bytes
    n, took = rows["big_write"].split()
    assert n == str(64 * 1024), out
    assert bytes(peer.got) == bytes(range(256)) * 256  # every byte, in order
    errno, took = rows["write_timeout"].split()
    assert errno == "110" and 900 <= int(took) < 1600, out
    got, took = rows["eof"].split()
    assert got == "b''" and int(took) < 900, out


@pytest.mark.parametrize("which", INTERPRETERS)
def test_hass_is_resident_only_while_discovery_is_sent(tmp_path, which):
    p = run_mp(tmp_path, which, HEAP_SCRIPT % {"n_numeric": reading.N_NUMERIC})
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0, out
    rows = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    size, hass = rows["import"].split()
    assert hass == "False", out  # importing mqtt does not load hanport.hass
    n, hass, kept = rows["discovery"].split()
    assert int(n) == 2 * 14 and hass == "False", out  # every field's config sent, hass unloaded again
    assert int(kept) < 256, out  # nothing of hass stays in the heap
    assert rows["oom_building"] == "kept True True False discovery:_out_of_memory", out
    assert rows["oom_sending"] == "raised False", out
    if which == "esp32":
        # mqtt.py's own resident cost on a 32-bit board (~5-6 KB); hanport.hass would add ~10 KB
        assert int(size) < 7 * 1024, out
    print(which, "mqtt.py resident after import: %s bytes; kept after discovery: %s bytes" % (size, kept))
