# Heap helpers for code that runs rarely (settings validation, discovery payloads, the setup page):
# import it when needed, then unload it so its bytecode leaves the heap (a stock ESP32 has ~112 KB).
import sys


def unload(name):
    """Forget module `name` ("config", "hanport.hass"): the next import loads it anew from flash.
    Its bytecode is freed at the next collection once nothing else refers to its functions."""
    sys.modules.pop(name, None)
    pkg, _, leaf = name.rpartition(".")
    parent = sys.modules.get(pkg) if pkg else None
    if parent is not None:
        try:
            delattr(parent, leaf)
        except (AttributeError, KeyError, TypeError):
            pass
