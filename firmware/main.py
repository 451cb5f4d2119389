# Device entry point (runs after boot.py): start the HAN reader app with /config.json.
# Everything lives in app.py; keep this file to the few lines MicroPython runs at boot.
import app

app.main()
