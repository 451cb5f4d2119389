# The heap-lock proofs on the 32-bit stand-in for an ESP32 (small ints end at 2**30 there): the decoder
# (mp_heap_check.py) and the accounting's per-reading update (mp_accounting_heap_check.py, also 64-bit).
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import run_host  # noqa: E402

MICROPYTHON64 = os.path.join(os.path.dirname(sys.executable), "micropython")
HEAP = "512K"


def _run(binary, script, heap=HEAP):
    env = dict(os.environ, MICROPYPATH=":".join(os.path.join(ROOT, d) for d in ("lib", "host_tests", "firmware")))
    return subprocess.run([binary, "-X", "heapsize=" + heap, os.path.join(ROOT, "host_tests", script)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def _standin():
    b = run_host.standin_binary()
    if b is None:
        pytest.skip("no 32-bit stand-in: %s does not exist; set HANPORT_MICROPYTHON32 to a 32-bit MicroPython "
                    "unix port (../shared/tools/esp32like/README.md)"
                    % (os.environ.get("HANPORT_MICROPYTHON32") or run_host.STANDIN_DEFAULT))
    return b


def test_decoder_allocates_nothing_on_32bit():
    p = _run(_standin(), "mp_heap_check.py")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "heap_locked=ok" in p.stdout and "bytes_allocated_per_frame=0" in p.stdout, p.stdout
    # Aidon, Kaifa and Kamstrup never load meters_eu.py; the Austrian lists decode without allocating too
    assert "meters_eu_after_norwegian=False" in p.stdout and "eu_heap_locked=ok" in p.stdout, p.stdout


def _fields(stdout):
    line = [x for x in stdout.splitlines() if "heap_locked=" in x][-1]
    return dict(kv.split("=", 1) for kv in line.split())


def test_accounting_update_allocates_nothing_on_32bit():
    p = _run(_standin(), "mp_accounting_heap_check.py")
    assert p.returncode == 0, p.stdout + p.stderr
    f = _fields(p.stdout)
    assert f["heap_locked"] == "ok"
    assert f["ticks_period_mask"] == str(2**30 - 1)  # a 32-bit build: ticks and small ints end at 2**30
    assert f["list3_bytes_per_update"] == "0" and f["list12_bytes_per_update"] == "0", p.stdout


@pytest.mark.skipif(not os.path.exists(MICROPYTHON64), reason="no .venv/bin/micropython (make venv)")
def test_accounting_update_allocates_nothing_on_64bit():
    p = _run(MICROPYTHON64, "mp_accounting_heap_check.py", heap="4M")
    assert p.returncode == 0, p.stdout + p.stderr
    f = _fields(p.stdout)
    assert f["heap_locked"] == "ok" and f["list3_bytes_per_update"] == "0", p.stdout


@pytest.mark.parametrize("board", ["esp32", "unix64"])
def test_unloading_a_module_allocates_nothing(board):
    """mem.unload runs in clean-up paths, also just after the heap ran out: a MemoryError there left a
    7 KB module named by its package for good (a 10-minute soak at 112 KB never recovered from it)."""
    if board == "unix64" and not os.path.exists(MICROPYTHON64):
        pytest.skip("no .venv/bin/micropython (make venv)")
    p = _run(_standin() if board == "esp32" else MICROPYTHON64, "mp_unload_check.py")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "unload=ok" in p.stdout, p.stdout


def test_an_answer_whose_head_fails_still_unloads_its_modules():
    """The heap short until an answer's deadline after its body was begun (its modules loaded, the first
    piece made): the body's generator is closed all the same, so web._with_modules unloads them. It
    was not (send() failed before its try), and a generator is not finalised when collected: the
    modules stayed in sys.modules for good, ~2-8 KB each time, and 112 KB soaks collapsed. And the heap
    short only for a moment while a body goes out: the piece waits, the answer is whole."""
    mp_path = ":".join([".frozen"] + [os.path.join(ROOT, d) for d in ("lib", "host_tests", "firmware")])  # (asyncio)
    script = os.path.join(ROOT, "host_tests", "mp_httpd_close_check.py")
    env = dict(os.environ, MICROPYPATH=mp_path)
    p = subprocess.run([_standin(), "-X", "heapsize=" + HEAP, script], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    for path in ("/light", "/large"):  # a light answer (/data.json) and one that takes its turn
        assert "path=%s raised=True closed=True" % path in p.stdout, p.stdout
    # the heap short for a moment while a body is sent: the piece in hand waits and goes, the answer is
    # whole (it was cut: "answer on / cut short: MemoryError(... allocating 16 bytes)" in a 112 KB soak)
    assert "whole=True cut=0 heap_waits=2" in p.stdout, p.stdout
    # a body that fails after its head went out: counted, and the log names that answer's path (it named
    # the latest request's, a light one served meanwhile)
    assert "answer on /broken cut short: ValueError('a bug in the page'" in p.stdout and "cut=1" in p.stdout, p.stdout
