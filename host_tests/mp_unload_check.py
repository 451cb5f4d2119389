# Run under MicroPython (test_heaplock_32bit.py): firmware/mem.unload with the heap locked, as in a
# clean-up path right after the heap ran out. Prints "unload=ok" when the module left sys.modules and
# its package, allocating nothing.
import sys

import mem
import micropython

import hanport
import hanport.crc


def check():
    micropython.heap_lock()
    try:
        mem.unload("hanport.crc")
        mem.unload("hanport.not_loaded")  # (a part that is not loaded: nothing to do)
        mem.unload("mem_not_loaded")
    except MemoryError:
        micropython.heap_unlock()
        return "allocates"
    micropython.heap_unlock()
    if "hanport.crc" in sys.modules or "crc" in hanport.__dict__:
        return "still_loaded"
    return "ok"


print("unload=" + check())
