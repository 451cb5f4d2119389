# Device entry point (after boot.py): the long-lived buffers first, while the heap is whole (never
# compacted), then the app with config.json; an update (version.py) runs from its own folder.
frame = bytearray(2048)
state = bytearray(1536)
p = None
try:
    open("ota-pointer.json").close()
    import version

    p = version.select()
    version = None
except OSError:
    pass
try:
    import app

    app.main(frame=frame, state=state)
except Exception as e:
    if p is None:
        raise
    __import__("version").reset(p, e)
