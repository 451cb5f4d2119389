# Runs the plain test_* functions of a portable test module under MicroPython (no pytest there).
# usage: MICROPYPATH=lib:host_tests micropython host_tests/mp_runner.py test_decoder_portable
import sys


def main():
    name = sys.argv[1]
    module = __import__(name)
    passed = 0
    failed = 0
    for attr in sorted(dir(module)):
        if not attr.startswith("test_"):
            continue
        fn = getattr(module, attr)
        if not callable(fn):
            continue
        try:
            fn()
            passed += 1
            print("PASS", attr)
        except Exception as e:  # report every failure, keep going
            failed += 1
            print("FAIL", attr, repr(e))
            sys.print_exception(e) if hasattr(sys, "print_exception") else None
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


main()
