# GET /status's last members (the settings with their secrets masked, the accounting) and GET /config,
# loaded per request (web.py) after status.py has left: the two never share the heap.
import json

from hanport.accounting import C_GAPS, C_REPEATS
from hanport.jsonstream import Raw, json_stream

JSON = "application/json"


def tail(app):
    """The rest of /status after status.head: JSON text pieces, the object closed."""
    return json_stream(_pairs, ",", "}", app)  # (made again if the heap runs short meanwhile)


def _pairs(app):
    yield "config", Raw(json_stream(_config_sections, arg=app))
    if app.accounting is not None:
        yield "accounting", accounting(app.accounting)


def _config_sections(app):
    """(section, its settings with the secrets masked) one at a time."""
    for k in app.cfg:
        yield k, masked(app, k)


def masked(app, section):
    """Settings section (a top-level key of the config) with every secret in it replaced by "********"
    (empty ones stay empty: not set)."""
    v = app.cfg[section]
    if not isinstance(v, dict):
        return "********" if section in app.secret_keys and v else v
    out = dict(v)
    for key in app.secret_keys:
        s, _, name = key.rpartition(".")
        if s == section and out.get(name):
            out[name] = "********"
    return out


def route(app, req):
    """GET /config (web.py): {"config": the settings with the secrets masked, "problems": [...]},
    section by section as it is sent."""
    if req.method == "HEAD":
        return 200, JSON, iter(()), ""
    return 200, JSON, json_stream((("config", Raw(json_stream(_config_sections, arg=app))),
                                   ("problems", app.config_problems))), ""


def accounting(hook):
    """The accounting object of /data.json (its cache: no output module loaded for this answer) with
    the hook's error count and the hourly lists' repeats, gaps and rejects, as JSON text pieces."""
    acc = hook.acc
    tail = '"hook_errors":%d,"hook_last_error":%s,"repeats":%d,"gaps":%d,"rejects":%d}' % (
        hook.errors, json.dumps(hook.last_error), acc.counts[C_REPEATS], acc.counts[C_GAPS], acc.rejects())
    text = hook.json()
    if text is None:
        return Raw(("{", tail))
    return Raw((memoryview(text)[:-1], ",", tail))

