# Device entry point (runs after boot.py): the long-lived buffers first, while the heap is empty and
# contiguous (MicroPython never compacts it), then the app (app.py) with /config.json.
import os

frame = bytearray(2048)  # HDLC frame buffer: the 11-bit length field bounds a frame (app.FRAME_BYTES)
state = bytearray(1536)  # the latest reading as JSON (MQTT state message, /data.json): app.STATE_BYTES
if "ota-pointer.json" in os.listdir():  # an update over the network runs from its own folder (version.py)
    __import__("version")  # (no exception raised or caught here: this frame lives as long as the app)
import app  # noqa: E402

app.main(frame=frame, state=state)
