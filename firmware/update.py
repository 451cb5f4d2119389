# Updates over the network, loaded only while they work: POST /firmware/update streams a bundle to flash
# (every file's SHA-256 checked), installs it in v/<a, b or c> beside the running one, switches by one pointer write.
#
# Bundle (tools/ota.py builds it): a JSON header line {"format": "hanport-ota", "layout": "hanport-mpy6",
# "version", "count" (files), "bytes" (their total size), "sha256" (of the manifest: the line "<version>"
# and every file line, each with its newline), "healthy_within_s" (optional, 300)}, then per file a line
# "<sha256 hex> <size> <path>" and its bytes. The pointer ota-pointer.json: version.py. A version lives in
# v/a, v/b or v/c (short: a module's path stays in RAM).
# Names here are mostly ones the app interns anyway (Raw, reject, _probe, ...): each new name stays in RAM
# for good, and MicroPython's next qstr pool, due after ~38 more names, takes ~7.7 KB in one block.
import asyncio
import gc
import json
import os
import sys
import time
from binascii import hexlify
from hashlib import sha256

import mem
from log import log
from micropython import const

_RESERVE_BYTES = const(65536)  # flash left free beside an update (settings, the accounting's two copies)
_BUF_BYTES = const(384)  # the one buffer a bundle goes through (a line of it fits: _LINE_MAX)
_LINE_MAX = const(300)
_MAX_FILES = const(400)
_POLL_MS = const(10)  # a body read looks for bytes this often
TEXT = "text/plain; charset=utf-8"
# "root install": what /status calls the files make deploy put at the root; "v/.incoming": a bundle is
# written there, renamed to v/<version> once every file is checked


def _probe(n):
    # flash step n done: a test stand-in may cut the power here (tools/hostshim/machine.py); as version.py's
    hook = getattr(__import__("machine"), "flash_step_hook", None)
    if hook is not None:
        hook(n)


def _read():
    # the pointer (version.py's header); the root install's when there is none (as version.py reads it:
    # not imported from there, its 1.7 KB of heap beside this module's ~6 KB)
    try:
        with open("ota-pointer.json") as f:
            p = json.loads(f.read())
        if isinstance(p[0], str) and isinstance(p[1], str) and len(p) == 7:
            return p
    except (OSError, ValueError, IndexError, TypeError):
        pass
    return ["", "", 0, "", "", "", 300]


def _write(p, n=0):
    # the pointer replaced by one rename: the old or the new one after a power cut (flash step n between)
    with open("ota-pointer.json.tmp", "w") as f:
        f.write(json.dumps(p))
    if n:
        _probe(n)
    os.rename("ota-pointer.json.tmp", "ota-pointer.json")


def _exists(path):
    # True when a folder is at path
    try:
        return os.stat(path)[0] & 0x4000 != 0
    except OSError:
        return False


def _remove_if_there(path):
    """A file, or a folder with everything in it; nothing when it is not there. (One name at a time: a
    list of a folder's ~40 entries would take ~3 KB of heap.)"""
    if not _exists(path):
        try:
            os.remove(path)
        except OSError:
            pass
        return
    while True:
        name = None
        for entry in os.ilistdir(path):
            name = entry[0]
            break
        if name is None:
            break
        _remove_if_there("/".join((path, name)))
    os.rmdir(path)


def _drop(p, n=0):
    """Versions in v/ other than the pointer's current and fallback removed (flash use stays bounded)."""
    try:
        names = [e[0] for e in os.ilistdir("v")]
    except OSError:
        return
    for name in names:
        if name not in (p[0], p[1]):
            _remove_if_there("/".join(("v", name)))
            if n:
                _probe(n)


class Raw:
    """The raw request body (`size`: its bytes still to come; `data`: those that came with the head)
    read from the socket through one buffer, as lines and pieces; a read waits at most timeout_ms."""

    def __init__(self, sock, data, size, timeout_ms):
        self.sock = sock
        self.data = data
        self.size = size
        self.timeout_ms = timeout_ms
        self.error = None  # (status, text) once a read failed: the client closed early or went silent
        self.buf = bytearray(_BUF_BYTES)
        self.b = memoryview(self.buf)
        self.start = self.end = 0  # the bytes read and not yet taken: buf[start:end]

    async def _load(self):
        # more of the body after buf[start:end] (moved to the front); False at its end, or cut (self.error)
        n = self.end - self.start
        if self.start:
            self.buf[:n] = bytes(self.b[self.start : self.end])
            self.start, self.end = 0, n
        room = min(len(self.buf) - n, self.size)
        if room <= 0:
            return False
        if self.data:  # (the bytes that came with the head first)
            room = min(room, len(self.data))
            self.buf[n : n + room] = self.data[:room]
            self.data = self.data[room:]
        else:
            deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms)
            view = self.b[n : n + room]
            while True:
                room = self.sock.readinto(view)
                if room is not None:
                    break
                if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                    self.error = (408, "the upload timed out")
                    return False
                await asyncio.sleep_ms(_POLL_MS)
            if not room:
                self.error = (400, "the upload was cut short")
                return False
        self.size -= room
        self.end += room
        return True

    async def line(self):
        """The next line without its newline (bytes); None when cut, too long or at the end."""
        while True:
            i = self.buf.find(b"\n", self.start, self.end)
            if i >= 0:
                out = bytes(self.b[self.start : i])
                self.start = i + 1
                return out
            if self.end - self.start >= _LINE_MAX or not await self._load():
                return None

    async def read(self, n):
        """A memoryview of up to n bytes (valid until the next call); None when cut."""
        if self.start == self.end and not await self._load():
            return None
        n = min(n, self.end - self.start)
        out = self.b[self.start : self.start + n]
        self.start += n
        return out


def reject(name, n):
    # True unless name (a version or a path part) is 1..n of these characters, not hidden, and not the
    # loader's version.mpy (make deploy's)
    if not 0 < len(name) <= n or name[0] == "." or name == "version.mpy":
        return True
    for ch in name:
        if ch not in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+":
            return True
    return False


async def route(app, req, sock, data, size):
    """(status, content type, text, extra headers) of POST /firmware/update (app.App.update): the admin
    token first (401 before a byte of the body is read), then the bundle to flash; any failure leaves
    everything as it was. This module and those it loads leave the heap when it ends."""
    try:
        return await _route(app, req, sock, data, size)
    finally:
        for name in ("update", "auth", "apply"):
            mem.unload(name)


async def _route(app, req, sock, data, size):
    from auth import bearer, same

    token = app.cfg["http"]["token"]
    if not token or not same(bearer(req), token):
        return 401, TEXT, "updates need the admin token (Authorization: Bearer <http.token>)\n", \
            'WWW-Authenticate: Bearer realm="han"\r\n'
    timeout_ms = app.cfg["http"]["timeout_s"] * 1000
    deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
    while app.turn.locked():  # one upload or large answer at a time (httpd.Http.turn)
        if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
            return 503, TEXT, "busy: try again\n", "Retry-After: 1\r\n"
        await asyncio.sleep_ms(_POLL_MS)
    await app.turn.acquire()
    try:
        if app.accounting is not None:  # its summary and JSON (~2 KB) are made again when next asked for
            app.accounting.drop()
        gc.collect()
        rd = None
        while rd is None:  # (the heap short for a moment, MQTT connecting: nothing is read or written yet)
            try:
                rd = Raw(sock, data, size, timeout_ms)
            except MemoryError:
                if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                    raise
                gc.collect()
                await asyncio.sleep_ms(100)
        code, text = await build(app, rd)
    except OSError as e:  # the flash failed (full, worn): nothing switched
        code, text = 500, "flash error: %r" % (e,)
    except MemoryError:
        code, text = 503, "out of heap: try again"
    except Exception as e:  # a malformed bundle (text that is not UTF-8, a number that is not one)
        code, text = 400, "malformed bundle: %r" % (e,)
    finally:
        app.turn.release()
    if code != 200:
        _remove_if_there("v/.incoming")
        log("update", "refused: %s" % text)
        return code, TEXT, "update refused, nothing changed: %s\n" % text, ""
    from apply import restart_soon

    restart_soon(app, 1000)
    return 200, TEXT, text + "; restarting\n", ""


async def build(app, rd):
    """(status, text): the bundle read, checked and installed in v/<version>, the pointer switched.
    Flash steps (power cut tests): 1 folder made, 2 in the first file, 3 all files, 4 renamed to
    v/<a, b or c>, 5 pointer written aside, 6 pointer switched, 7 old versions removed. (In small
    functions: each one's bytecode is one block of heap when update.py loads.)"""
    line = await rd.line()
    if line is None:
        return rd.error or (400, "no bundle header")
    got = _header(line)
    line = None
    if len(got) == 2:
        return got
    version, count, size, manifest, healthy_s = got
    p = _read()
    got = _start(p, version, size)
    if got is not None:
        return got
    whole = sha256(version.encode() + b"\n")  # the manifest: this line and the files' lines
    left = size
    for i in range(count):
        line = await rd.line()
        if line is None:
            return rd.error or (400, "file line %d missing" % (i + 1))
        whole.update(line + b"\n")
        got = await _record(rd, line, left, i)
        if len(got) == 2:
            return got
        left -= got[0]
    if left or rd.start != rd.end or rd.size:
        return 400, "the bundle's size does not match its header"
    if hexlify(whole.digest()).decode() != manifest:
        return 400, "the manifest's SHA-256 does not match the header"
    _probe(3)
    return _set(p, version, healthy_s)


def _header(line):
    # (version, count, size, manifest hash, healthy_within_s) of a bundle header line that suits this
    # reader, else (status, why)
    try:
        doc = json.loads(line)
    except ValueError:
        return 400, "the bundle header is not JSON"
    mpy = sys.implementation._mpy & 0xFF  # (the bytecode version this MicroPython loads)
    if not isinstance(doc, dict) or doc.get("format") != "hanport-ota":
        return 400, "not an update bundle (format hanport-ota expected)"
    if doc.get("layout") != "hanport-mpy%d" % mpy:
        return 400, "the bundle is for layout %s; this reader takes hanport-mpy%d" % (doc.get("layout"), mpy)
    version, count, size, manifest = doc.get("version"), doc.get("count"), doc.get("bytes"), doc.get("sha256")
    healthy_s = doc.get("healthy_within_s", 300)
    if not isinstance(healthy_s, int) or not 5 <= healthy_s <= 3600:
        return 400, "healthy_within_s: 5..3600 seconds"
    if not isinstance(version, str) or reject(version, 40) or version == "root install":
        return 400, "bad version name (1..40 letters, digits, . _ - +)"
    if not isinstance(count, int) or not 0 < count <= _MAX_FILES or not isinstance(size, int) or size < 0:
        return 400, "bad file count or size"
    if not isinstance(manifest, str) or len(manifest) != 64:
        return 400, "no manifest hash"
    return version, count, size, manifest, healthy_s


def _start(p, version, size):
    # None once the empty folder for the bundle is made, else (status, why): nothing written then
    if version in (p[4], p[5]):
        return 409, "version %s is installed already (running %s)" % (version, p[4] or "root install")
    st = os.statvfs(".")
    free = st[0] * st[4]
    if size + _RESERVE_BYTES > free:
        return 413, "the bundle needs %d bytes of flash, %d are free (%d kept free)" % (size, free, _RESERVE_BYTES)
    _remove_if_there("v/.incoming")  # (a cut earlier upload's, a power cut's)
    if not _exists("v"):
        os.mkdir("v")
    os.mkdir("v/.incoming")
    _probe(1)
    return None


async def _record(rd, line, size, i):
    # file line i ("<sha256> <size> <path>") and its bytes to flash: (size,), or (status, why)
    parts = line.decode().split(" ", 2)
    if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit():
        return 400, "bad file line %d" % (i + 1)
    n = int(parts[1])
    d = _parts(parts[2]) if n <= size else None
    if d is None:
        return 400, "file line %d: bad size or path" % (i + 1)
    h = sha256()
    with open(d, "wb") as f:
        while n:
            piece = await rd.read(n)
            if piece is None:
                return rd.error
            h.update(piece)
            f.write(piece)
            n -= len(piece)
            if i == 0:
                _probe(2)  # (a power cut in the middle of a file)
    if hexlify(h.digest()).decode() != parts[0]:
        return 400, "file %s: its SHA-256 does not match the manifest" % parts[2]
    return (int(parts[1]),)


def _parts(path):
    # the place of a bundle's file in the incoming folder, its folders made; None for a bad path
    names = path.split("/")
    if len(names) > 4:
        return None
    d = "v/.incoming"
    for i in range(len(names)):
        if reject(names[i], 64):
            return None
        d += "/" + names[i]
        if i < len(names) - 1 and not _exists(d):
            os.mkdir(d)
    return d


def _set(p, version, healthy_s):
    # the checked bundle becomes v/<a, b or c> and the version to run (on trial); the others leave
    fallback = 1 if p[0] != p[1] else 0  # (a version on trial never becomes the fallback)
    d = "a" if "a" not in (p[0], p[1]) else "b" if "b" not in (p[0], p[1]) else "c"  # (neither of those)
    path = "/".join(("v", d))
    _remove_if_there(path)  # (an earlier install that never became current: stale)
    os.rename("v/.incoming", path)
    _probe(4)
    p = [d, p[fallback], 0, "", version, p[4 + fallback], healthy_s]
    fallback = p[5]
    _write(p, 5)
    _probe(6)
    try:  # (switched: whatever fails now, the new version runs after the restart; a folder left is
        _drop(p, 7)  # removed with the next update)
        log("update", "version %s installed (fallback %s)" % (version, fallback or "root install"))
    except Exception:
        pass
    return 200, "version %s installed, fallback %s" % (version, fallback or "root install")
