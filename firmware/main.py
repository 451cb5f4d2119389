# Device entry point (runs after boot.py): the long-lived buffers first, while the heap is empty and
# contiguous (MicroPython never compacts it), then the app (app.py) with /config.json.
frame = bytearray(2048)  # HDLC frame buffer: the 11-bit length field bounds a frame (app.FRAME_BYTES)
raw = bytearray(2560)  # raw frame ring for GET /raw (app.RAW_SLOTS x rawlog slot of 640 bytes)
state = bytearray(2048)  # the latest reading as JSON (MQTT state message, /data.json): app.STATE_BYTES
import app  # noqa: E402

app.main(frame=frame, raw=raw, state=state)
