#!/usr/bin/env python3
# Decode HAN-port bytes (capture file, stdin, hex text or a live serial port) to JSON Lines,
# one canonical reading per valid frame; layer counters as a summary on stderr.
"""usage: decode.py [--hex] [--key HEX [--auth-key HEX]] [--protocol auto|hdlc|mbus|p1|glo] [FILE|-]
       decode.py --serial /dev/ttyUSB0 [--baud 2400] [--parity E|N] [--count N]
       decode.py --accounting [--hex] FILE   (final energy-accounting state as one JSON object)

Prints one JSON object per valid frame or P1 telegram (README "Reading schema"); counters go to
stderr. HDLC frames, M-Bus long frames and P1 telegrams are told apart by themselves (docs/protocols.md);
--key/--auth-key decrypt and authenticate ciphered DLMS APDUs (the keys are never printed). The Sagemcom
T210-D's P1 port (Luxembourg's Smarty, Energienetze Steiermark) sends its telegrams in bare ciphered APDUs:
give --protocol glo with its key.
FILE may be raw bytes, hex text (--hex), or a capture text file from tools/capture.py or the
firmware's GET /raw (recognised by its '# hanport-capture' first line)."""
import argparse
import binascii
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

from hanport.autodetect import GLO, PROTOCOLS, AutoReader  # noqa: E402
from hanport.rawlog import CAPTURE_HEADER  # noqa: E402
from hanport.render import reading_json  # noqa: E402

CHUNK_BYTES = 4096


def hex_to_bytes(text):
    """Hex text to bytes; whitespace, ':' and '0x' prefixes ignored. Raises ValueError if not hex."""
    cleaned = "".join(text.split()).replace(":", "").replace("0x", "").replace("0X", "")
    if len(cleaned) % 2:
        raise ValueError("odd number of hex digits")
    return binascii.unhexlify(cleaned)


def capture_to_bytes(text):
    """Bytes of a capture text file: '<seconds> <hex>' lines, '#' starts a comment."""
    out = bytearray()
    for line in text.splitlines():
        line = line.split("#", 1)[0].split()
        if len(line) >= 2:
            out.extend(hex_to_bytes(line[1]))
    return bytes(out)


def open_serial(port, baud, parity):
    """A pyserial port set up for the HAN M-Bus adapter (8 data bits, 1 stop bit)."""
    import serial  # pyserial, only needed for live ports

    parities = {"E": serial.PARITY_EVEN, "N": serial.PARITY_NONE, "O": serial.PARITY_ODD}
    return serial.Serial(port, baudrate=baud, bytesize=8, parity=parities[parity], stopbits=1, timeout=1)


def chunks_from(args):
    """Yield byte chunks from the selected source."""
    if args.serial:
        port = open_serial(args.serial, args.baud, args.parity)
        try:
            while True:
                data = port.read(256)
                if data:
                    yield data
        finally:
            port.close()
        return
    stream = sys.stdin.buffer if args.file in (None, "-") else open(args.file, "rb")
    try:
        if args.hex:
            yield hex_to_bytes(stream.read().decode("ascii", "replace"))
            return
        head = stream.read(len(CAPTURE_HEADER))
        if head == CAPTURE_HEADER.encode():
            yield capture_to_bytes((head + stream.read()).decode("ascii", "replace"))
            return
        yield head
        while True:
            data = stream.read(CHUNK_BYTES)
            if not data:
                return
            yield data
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", help="capture file with raw bytes (default: stdin, '-')")
    ap.add_argument("--hex", action="store_true", help="input is hex text (whitespace ignored)")
    ap.add_argument("--serial", metavar="PORT", help="read a live serial port (pyserial)")
    ap.add_argument("--baud", type=int, default=2400, help="serial baud rate (default 2400)")
    ap.add_argument("--parity", choices="ENO", default="E", help="E (Aidon, Kaifa) or N (Kamstrup)")
    ap.add_argument("--count", type=int, default=0, help="stop after N readings (0 = no limit)")
    ap.add_argument("--accounting", action="store_true",
                    help="replay through the energy accounting (docs/accounting.md); print its final state")
    ap.add_argument("--key", metavar="HEX", help="AES-128 encryption key of ciphered meters (32 hex digits)")
    ap.add_argument("--auth-key", metavar="HEX", help="AES-128 authentication key (32 hex digits)")
    ap.add_argument("--protocol", choices=("auto",) + PROTOCOLS + (GLO,), default="auto",
                    help="hdlc, mbus, p1, or auto (default): detected from the bytes; glo (never detected): "
                         "telegrams in bare ciphered APDUs, the Sagemcom T210-D")
    args = ap.parse_args(argv)

    try:
        reader = AutoReader(None if args.protocol == "auto" else args.protocol, args.key, args.auth_key)
    except ValueError as e:
        print("decode.py: %s" % e, file=sys.stderr)
        return 2
    acc = None
    if args.accounting:
        from hanport.accounting import Accounting
        from hanport.accounting_report import state_json

        acc = Accounting()  # no store: nothing is written; time from the meter clock
    out = sys.stdout
    readings = 0
    try:
        for chunk in chunks_from(args):
            pos = 0
            end = len(chunk)
            while pos < end and not (args.count and readings >= args.count):
                pos = reader.push(chunk, pos, end)
                if reader.has_reading:
                    if acc is not None:
                        acc.update(reader.reading)
                    else:
                        out.write(reading_json(reader.reading) + "\n")
                    readings += 1
            if args.count and readings >= args.count:
                break
    except ValueError as e:
        print("decode.py: bad hex input: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    if reader.flush() and not (args.count and readings >= args.count):  # a P1 telegram cut after "!"
        if acc is not None:
            acc.update(reader.reading)
        else:
            out.write(reading_json(reader.reading) + "\n")
        readings += 1
    if acc is not None:
        out.write(state_json(acc) + "\n")
    out.flush()
    if reader.protocol is not None:  # the parser that found the frames: its counters, unprefixed
        counters = reader.readers[reader.protocol].counters()
        counters["protocol"] = reader.protocol
    else:
        counters = reader.counters()
    if reader.last_error:
        counters["last_error"] = reader.last_error
    print(json.dumps(counters), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
