# Device entry point (runs after boot.py): the long-lived buffers first, while the heap is empty and
# contiguous (MicroPython never compacts it), then the app (app.py) with /config.json; an update over the
# network runs from v/<version>/ and goes back to the fallback if it fails to start (otaboot.py).
frame = bytearray(2048)  # HDLC frame buffer: the 11-bit length field bounds a frame (app.FRAME_BYTES)
state = bytearray(1536)  # the latest reading as JSON (MQTT state message, /data.json): app.STATE_BYTES
import otaboot  # noqa: E402

p = otaboot.select()  # the pointer of a version on trial, else None
otaboot = None
try:
    import app

    app.main(frame=frame, state=state)
except Exception as e:  # an import error or a crash at boot: a version on trial goes back
    if p is None:
        raise
    import otaboot

    otaboot.reset(p, e)
