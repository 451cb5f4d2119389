# MicroPython only: where this interpreter's qstr pools end. Names (qstrs) are interned for good in pools that
# double: the one after ~1270 names takes ~8 KB of heap at once, which a 112 KB board has not got to spare.
import gc

import micropython


def main():
    holder = type("Holder", (), {})()
    for i in range(4000):
        gc.collect()
        before = gc.mem_free()
        setattr(holder, "zq%d" % i, 1)  # (a name made at run time: interned by setattr)
        if before - gc.mem_free() > 6144:  # the large pool: the host reads where it began from this line
            micropython.qstr_info()
            return
    print("no large qstr pool within 4000 names")


main()
