# The boot half of updates over the network (ota.py installs them): main.py asks which version runs, and
# a version on trial that fails to start goes back to the fallback here. Loaded at boot only.
# ota-pointer.json: [current folder in v/, fallback folder, boots, why, current version, fallback version];
# "" is the files at the root (make deploy).
import json
import os
import sys

import machine
from micropython import const

_TRIAL_BOOTS = const(3)  # boots of a version not yet healthy before the fallback runs instead
# (few new names: every name a module interns stays in RAM for good, ota.py's header says why)


def _write(p):
    # the pointer replaced in one rename: the old or the new one after a power cut
    with open("ota-pointer.json.tmp", "w") as f:
        f.write(json.dumps(p))
    os.rename("ota-pointer.json.tmp", "ota-pointer.json")


def reset(p, why):
    """The version on trial failed (why: text or an exception): the fallback (healthy once) runs from
    the next boot on; the board restarts now."""
    p[3] = "%s rolled back at boot: %s" % (p[4], why if isinstance(why, str) else repr(why)[:120])
    p[0] = p[1]
    p[4] = p[5]
    p[2] = 0
    _write(p)
    machine.reset()


def select():
    """The version to run, its folder v/<version> put first on sys.path. current != fallback is a
    trial: its boots are counted, and its pointer returned (main.py hands it to reset() if the app
    fails to start); else None."""
    sys.modules.pop("otaboot", None)  # (main.py drops its name too: this module leaves the heap)
    try:
        with open("ota-pointer.json") as f:
            p = json.loads(f.read())
        d = p[0]
        trial = d != p[1]
    except (OSError, ValueError, IndexError, TypeError):
        return None  # no update installed: the files at the root run
    if trial:
        p[2] += 1
        if p[2] > _TRIAL_BOOTS:
            reset(p, "not healthy after %d boots" % _TRIAL_BOOTS)
        _write(p)
    if d:
        sys.path[:0] = ("v/" + d, "v/" + d + "/lib")
    return p if trial else None
