# firmware/log.py under the MicroPython unix port: every line, tracebacks included, goes out with the
# secrets masked (a task crash or a failing HTTP connection must not print a password).
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")

SCRIPT = """
import asyncio
import log

log.set_secrets(["hunter2-wifi", "", "mqtt-pass-77"])
log.log("mqtt", "connect as user with mqtt-pass-77 failed")
try:
    raise ValueError("wrong key hunter2-wifi for 'home'")
except ValueError as e:
    log.log_exception("app", e)


def handler(loop, context):  # as app.App._unhandled does
    log.log_exception("app", context["exception"])


async def fails():
    raise OSError("broker said: mqtt-pass-77 rejected")


async def main():
    asyncio.get_event_loop().set_exception_handler(handler)
    asyncio.create_task(fails())
    await asyncio.sleep_ms(20)

asyncio.run(main())
"""


def test_secrets_are_masked_in_log_lines_and_tracebacks():
    env = dict(os.environ, MICROPYPATH=".frozen:" + os.path.join(ROOT, "firmware"))
    p = subprocess.run([MICROPYTHON, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "hunter2-wifi" not in out and "mqtt-pass-77" not in out, out
    assert out.count("********") == 3, out
    assert "ValueError: wrong key ******** for 'home'" in out, out
    assert "Traceback (most recent call last):" in out and "OSError: broker said" in out, out
