# Run under MicroPython (test_heaplock_32bit.py): an answer whose head cannot be made (the heap short
# until its deadline) still closes its body's generator, so the modules that answer loaded are unloaded
# (web._with_modules). Prints "path=... raised=<True|False> closed=<True|False>". Then a body whose
# pieces find the heap short for a moment: they wait and the body is sent whole, not cut ("whole=...").
# Last, a body that fails after its head: the log names its path, not the latest request's.
import asyncio
import time

import httpd

state = {"closed": False}


def _body():
    try:
        yield "first piece\n"
        yield "second piece\n"
    finally:
        state["closed"] = True  # (web._with_modules unloads the answer's modules here)


def _route(req):
    return 200, httpd.TEXT, _body(), ""


class Sock:
    """A client that sent one GET and reads whatever comes."""

    def __init__(self, data):
        self.data = data
        self.out = bytearray()

    def readinto(self, buf):
        if not self.data:
            return None
        n = len(self.data)
        buf[:n] = self.data
        self.data = b""
        return n

    def write(self, view, off=0, n=None):  # (a MicroPython stream's write(buf[, off, len]))
        view = memoryview(view)[off:] if n is None else memoryview(view)[off : off + n]
        self.out += bytes(view)
        return len(view)


def _short_heap(*args):
    raise MemoryError("memory allocation failed")


async def main():
    cfg = {"enabled": True, "bind": "127.0.0.1", "port": 0, "timeout_s": 1, "max_clients": 3}
    h = httpd.Http(cfg, _route, lambda path: ("GET", "HEAD"), light=lambda path: path == "/light")
    for path in ("/light", "/large"):
        state["closed"] = False
        sock = Sock(b"GET %s HTTP/1.0\r\n\r\n" % path.encode())
        task = [time.ticks_ms(), None, False]
        h.waiting.append(task)
        head = httpd._head
        httpd._head = _short_heap  # every head fails, until the answer's deadline
        try:
            await h._serve(sock, task)
            raised = False
        except MemoryError:
            raised = True
        finally:
            httpd._head = head
        print("path=%s raised=%s closed=%s" % (path, raised, state["closed"]))


class _OnceShort:
    """memoryview as httpd uses it, whose 2nd and 4th calls find no heap (another answer held it a
    moment): the 1st piece's first try (the head went out), then the 2nd piece's."""

    def __init__(self):
        self.calls = 0

    def __call__(self, piece):
        self.calls += 1
        if self.calls in (2, 4):
            raise MemoryError("memory allocation failed, allocating 16 bytes")
        return memoryview(piece)


async def short_for_a_moment():
    cfg = {"enabled": True, "bind": "127.0.0.1", "port": 0, "timeout_s": 2, "max_clients": 3}
    h = httpd.Http(cfg, _route, lambda path: ("GET", "HEAD"), light=lambda path: True)
    sock = Sock(b"GET /light HTTP/1.0\r\n\r\n")
    task = [time.ticks_ms(), None, False]
    h.waiting.append(task)
    httpd.memoryview = _OnceShort()
    try:
        await h._serve(sock, task)
    finally:
        del httpd.memoryview
    whole = bytes(sock.out).endswith(b"\r\n\r\nfirst piece\nsecond piece\n")
    print("whole=%s cut=%d heap_waits=%d" % (whole, h.cut, h.heap_waits))


def _breaking_body(h):
    yield "first piece\n"
    h.last_path = "/data.json"  # another request came meanwhile (a light one, served beside this answer)
    raise ValueError("a bug in the page")


async def cut_short_names_its_path():
    cfg = {"enabled": True, "bind": "127.0.0.1", "port": 0, "timeout_s": 2, "max_clients": 3}
    h = httpd.Http(cfg, lambda req: (200, httpd.TEXT, _breaking_body(h), ""), lambda path: ("GET", "HEAD"),
                   light=lambda path: True)
    sock = Sock(b"GET /broken HTTP/1.0\r\n\r\n")
    task = [time.ticks_ms(), None, False]
    h.waiting.append(task)
    await h._serve(sock, task)
    print("cut=%d last_error=%s" % (h.cut, h.last_error))


asyncio.run(main())
asyncio.run(short_for_a_moment())
asyncio.run(cut_short_names_its_path())
