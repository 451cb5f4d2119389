# hanport: decoder for the HAN port of Norwegian smart electricity meters (Aidon, Kaifa, Kamstrup).
# Portable: the same code runs on CPython and MicroPython. See README "Library API".

__version__ = "0.1.0"
__all__ = ("HanReader", "decode_frame", "decode_apdu", "__version__")


def __getattr__(name):
    # The decoder loads on first use, so importing one output module (hanport.prom, hanport.render)
    # does not pull the whole decoder into RAM on a board.
    if name in ("HanReader", "decode_frame", "decode_apdu"):
        from hanport import reader

        return getattr(reader, name)
    # MicroPython asks here before importing a submodule (`from hanport import render`)
    import sys

    # (a submodule that is not installed raises ImportError there, as `from hanport import x` does in CPython)
    if sys.implementation.name == "micropython" and name[:1] != "_":
        __import__("hanport." + name)
        return sys.modules["hanport." + name]
    raise AttributeError(name)
