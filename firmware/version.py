# The flash side of updates over the network (update.py installs them): the pointer ota-pointer.json, main.py's
# choice of the version at boot (a version on trial that fails to start goes back to the fallback) and the
# end of a trial (the app's health check). Loaded for these only.
# Pointer: [current folder in v/, fallback folder, boots of a trial, why the last one was rolled back,
# current version, fallback version, seconds a version on trial has to become healthy]; "" is the files at
# the root (make deploy); current != fallback is a trial.
import json
import os
import sys
import time

import machine
from micropython import const

_TRIAL_BOOTS = const(3)  # boots of a version not yet healthy before the fallback runs instead
# (few new names: every name a module interns stays in RAM for good, update.py's header says why)


def _probe(n):
    # flash step n done: a test stand-in may cut the power here (tools/hostshim/machine.py)
    hook = getattr(machine, "flash_step_hook", None)
    if hook is not None:
        hook(n)


def _read():
    """The pointer (the header above); the root install's when there is none."""
    try:
        with open("ota-pointer.json") as f:
            p = json.loads(f.read())
        if isinstance(p[0], str) and isinstance(p[1], str) and len(p) == 7:
            return p
    except (OSError, ValueError, IndexError, TypeError):
        pass
    return ["", "", 0, "", "", "", 300]


def _write(p, n=0):
    """The pointer replaced by one rename (atomic on LittleFS): the old or the new one after a power cut;
    n: the flash step between the two (_probe)."""
    with open("ota-pointer.json.tmp", "w") as f:
        f.write(json.dumps(p))
    if n:
        _probe(n)
    os.rename("ota-pointer.json.tmp", "ota-pointer.json")


def check(app, now):
    """A version on trial (app.App._ticker, every 5 s): healthy once a reading came, HTTP listens and
    MQTT is connected (when set): it becomes the fallback. Crashing
    (app.healthy False), or not healthy by app.firmware[4] (the bundle's healthy_within_s): the fallback runs
    again after a restart, the reason kept for /status. Else nothing yet."""
    m = app.mqtt
    ok = app.state is not None and app.http.server is not None and m.state in ("connected", "disabled")
    if app.healthy and not ok and time.ticks_diff(now, app.firmware[4]) < 0:
        return
    app.firmware[4] = None
    p = _read()
    if p[0] == p[1]:
        return
    if ok and app.healthy:
        p[1] = p[0]
        p[5] = p[4]
        p[2] = 0
        _write(p, 8)
        app.firmware[1] = p[4] or "root install"
        from log import log

        log("update", "version %s is healthy: it is the fallback now" % app.firmware[0])
        return  # (the older one leaves the flash with the next update: update.py)
    if not app.healthy:
        why = app.unhealthy_reason
    else:
        why = "not healthy within %d s (%s; http %s; mqtt %s)" % (p[6],
            "a reading came" if app.state is not None else "no reading yet",
            "up" if app.http.server is not None else "down", app.mqtt.state)
    p[3] = "%s rolled back: %s" % (p[4], why)
    p[0] = p[1]
    p[4] = p[5]
    p[2] = 0
    _write(p, 10)
    app.firmware[2] = p[3]
    from log import log

    log("update", p[3])
    from apply import restart_soon

    restart_soon(app, 500)


def reset(p, why):
    """The version on trial failed (why: text or an exception): the fallback (healthy once) runs from
    the next boot on; the board restarts now."""
    p[3] = "%s rolled back at boot: %s" % (p[4], why if isinstance(why, str) else repr(why)[:120])
    p[0] = p[1]
    p[4] = p[5]
    p[2] = 0
    _write(p, 10)
    machine.reset()


def select():
    """The version to run, its folder v/<folder> put first on sys.path. current != fallback is a trial:
    its boots are counted, and its pointer returned; else None."""
    p = _read()
    d = p[0]
    if d == p[1]:
        p = None
    else:
        p[2] += 1
        if p[2] > _TRIAL_BOOTS:
            reset(p, "not healthy after %d boots" % _TRIAL_BOOTS)
        _write(p)
    if d:
        d = "/".join(("v", d))  # (names the app interns anyway: v/, /lib would be new ones)
        sys.path[:0] = (d, "/".join((d, "lib")))
    return p


def failed(e):
    """app.main failed at boot with exception e: a version on trial goes back (the board restarts)."""
    p = _read()
    if p[0] != p[1]:
        reset(p, e)


def boot():
    """At boot (main.py): the version to run; with an update installed the app is imported from its
    folder here (an error importing a version on trial goes back at once) and shown (app.App.firmware)."""
    sys.modules.pop("version", None)  # (main.py drops it too: this module leaves the heap)
    trial = select()
    p = _read()
    if p[0] or p[1] or p[3]:
        try:
            import app
        except Exception as e:
            if trial is not None:
                failed(e)
            raise
        app.App.firmware = [p[4] or "root install", p[5] or "root install", p[3] or None, p[0],
                            time.ticks_add(time.ticks_ms(), p[6] * 1000) if trial is not None else None]


if "app" not in sys.modules:  # main.py imports this module first, at boot (the app later, for a moment)
    boot()
