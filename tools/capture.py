#!/usr/bin/env python3
# Record raw HAN-port bytes from a USB M-Bus adapter with timestamps, for bug reports and replay:
# writes the capture text format that tools/decode.py (and the firmware's GET /raw) share.
"""usage: capture.py --serial /dev/ttyUSB0 [--baud 2400] [--parity E|N] [--seconds N] [-o FILE]

Each line is '<seconds since start> <hex of the bytes read>'; lines starting with '#' are comments.
Replay with: python3 tools/decode.py FILE"""
import argparse
import datetime
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from hanport.rawlog import CAPTURE_HEADER  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serial", required=True, metavar="PORT", help="serial port of the M-Bus adapter")
    ap.add_argument("--baud", type=int, default=2400)
    ap.add_argument("--parity", choices="ENO", default="E", help="E (Aidon, Kaifa) or N (Kamstrup)")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0 = until Ctrl-C)")
    ap.add_argument("-o", "--output", default="-", help="capture file (default: stdout)")
    args = ap.parse_args(argv)

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from decode import open_serial

    port = open_serial(args.serial, args.baud, args.parity)
    out = sys.stdout if args.output == "-" else open(args.output, "w")
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out.write("%s port=%s baud=%d parity=%s started=%s\n" % (CAPTURE_HEADER, args.serial, args.baud,
                                                              args.parity, started))
    t0 = time.monotonic()
    total = 0
    try:
        while not args.seconds or time.monotonic() - t0 < args.seconds:
            data = port.read(256)
            if data:
                total += len(data)
                out.write("%.3f %s\n" % (time.monotonic() - t0, data.hex()))
                out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        port.close()
        if out is not sys.stdout:
            out.close()
    print("capture.py: %d bytes recorded" % total, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
