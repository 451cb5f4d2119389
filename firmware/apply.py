# A settings change (POST /config with the token, parsed and authorised by settings.py), in steps that
# each have only their own module in the heap: validated (config.py), written (hanport.persist: the old
# or the new file after a power cut), then a restart that saves the accounting first; loaded per change.
import asyncio
import gc

import machine
import mem
from log import log

TEXT = "text/plain; charset=utf-8"


def change(app, changes, from_form):
    """(status, content type, body, extra header lines) of a POST /config that may change settings."""
    if app.accounting is not None:  # its summary and JSON (~2 KB) are made again when next asked for
        app.accounting.drop()
    gc.collect()  # settings.py has just left: its bytecode is free space before the validation loads
    import config

    try:
        problems, text = config.change(app.config_path, changes, from_form)
    finally:
        config = changes = None
        mem.unload("config")
        mem.unload("defaults")
    if problems:
        return 400, TEXT, "not saved:\n" + "\n".join(problems) + "\n", ""
    gc.collect()  # config.py's ~7 KB are free space before persist loads (not left to a failing allocation)
    from hanport import persist

    try:
        persist.write_file(app.config_path, [text.encode()])
    finally:
        persist = text = None
        mem.unload("hanport.persist")
    log("app", "settings saved to %s" % app.config_path)
    restart_soon(app, 2000)
    return 200, TEXT, "saved; restarting in 2 s\n", ""


def restart_soon(app, delay_ms):
    """Restart the board in delay_ms (the answer goes out first), the accounting saved before."""
    asyncio.create_task(_restart(app, delay_ms))


async def _restart(app, delay_ms):
    await asyncio.sleep_ms(delay_ms)
    if app.accounting is not None:  # a planned restart keeps the running hour's history
        app.accounting.save()
    log("app", "restarting")
    machine.reset()
