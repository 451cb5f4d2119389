# Imported by the portable tests of firmware/ modules that have no device imports (config.py, dash.py):
# puts firmware/ on the import path, on CPython and under MicroPython (mp_runner runs from the repo root).
import sys

try:
    import os

    FIRMWARE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "firmware")
except AttributeError:  # MicroPython: no os.path
    FIRMWARE = "firmware"
if FIRMWARE not in sys.path:
    sys.path.append(FIRMWARE)
