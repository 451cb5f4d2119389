# Heap helpers for code that runs rarely (settings validation, discovery payloads, the setup page):
# import it when needed, then unload it so its bytecode leaves the heap (a stock ESP32 has ~112 KB).
import sys


def unload(name):
    """Forget module `name` ("config", "hanport.hass"): the next import loads it anew from flash.
    Its bytecode is freed at the next collection once nothing else refers to its functions.
    Allocates nothing (no string is split or made): it runs in clean-up paths, also when the heap
    has just run out; a step that failed there would keep the module's ~7 KB for good (its parent
    package still naming it), and the heap would never recover."""
    m = sys.modules.pop(name, None)
    if m is None or "." not in name:
        return
    for pkg in sys.modules:  # the parent package ("hanport") names its submodule: that name goes too
        if pkg != name and name.startswith(pkg):
            names = sys.modules[pkg].__dict__
            for attr in names:
                if names[attr] is m:
                    del names[attr]
                    return
