# hanport: decoder for the HAN port of Norwegian smart electricity meters (Aidon, Kaifa, Kamstrup).
# Portable: the same code runs on CPython and MicroPython. See README "Library API".
from hanport.reader import HanReader, decode_apdu, decode_frame

__version__ = "0.1.0"
__all__ = ("HanReader", "decode_frame", "decode_apdu", "__version__")
