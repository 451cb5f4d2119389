# The settings at boot and on the host (config.py is the schema and the validation): config.json read
# and merged, its validation cache written (config.json.ok), secrets masked or listed; loaded at a boot
# that finds config.json changed (startup.py) and by tools/device.py, never while a change is validated.
import json

from config import CACHE_SUFFIX, MASK, SCHEMA, _set, copy_tree, get, merge


def load(path="config.json"):
    """(config, user dict, problems, found). A missing file is a first boot, not a problem."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        cfg, _ = merge({})
        return cfg, {}, [], False
    try:
        user = json.loads(text)
    except ValueError:
        cfg, _ = merge({})
        return cfg, {}, ["config.json: not valid JSON (defaults used)"], True
    cfg, problems = merge(user)
    if not isinstance(user, dict):
        user = {}
    return cfg, user, problems, True


def _write(path, text):
    # old or new content after a power cut at any step (startup.settings runs persist.recover first)
    from hanport import persist

    persist.write_file(path, [text.encode()])


def secret_keys():
    return [key for key in SCHEMA if SCHEMA[key][0] == "secret"]


def write_cache(path, text, cfg, problems):
    """<path>.ok: the config.json text this validation saw, the merged settings, the problems and the
    secret keys. A boot that finds config.json unchanged takes them as they are (startup.py) and
    never loads this module; any difference (an edit, a torn write) means a full validation."""
    doc = {"source": text, "config": cfg, "problems": problems, "secret_keys": secret_keys()}
    try:
        _write(path + CACHE_SUFFIX, json.dumps(doc))
    except OSError:
        pass  # only a cache: the next boot validates again


def boot(path):
    """(config, problems, found, secret keys) for the app's start, with the cache written."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        text = None
    cfg, _, problems, found = load(path)
    write_cache(path, text, cfg, problems)
    return cfg, problems, found, secret_keys()


def masked(cfg):
    """Deep copy with every secret replaced by MASK (empty secrets stay empty: "not set")."""
    out = copy_tree(cfg)
    for key in SCHEMA:
        if SCHEMA[key][0] == "secret":
            try:
                v = get(out, key)
            except (KeyError, TypeError):
                continue
            if v:
                _set(out, key, MASK)
    return out


def secrets(cfg):
    """The secret values in use (non-empty), so log lines can be scrubbed of them."""
    out = []
    for key in SCHEMA:
        if SCHEMA[key][0] == "secret":
            v = get(cfg, key)
            if v:
                out.append(v)
    return out
