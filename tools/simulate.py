# Meter simulator: real-format Aidon, Kaifa and Kamstrup HAN frames (lists 1/2/3 at the meters' own
# intervals, docs/han-notes.md §list-timing), or an Austrian AM550's ciphered push list (meter `wn`), from a
# plausible household load; or a capture replay, or a serial bridge.
"""Usage examples:
  simulate.py --meter aidon --tcp 127.0.0.1:7700            # serve frames on a socket (make run)
  simulate.py --meter kamstrup --speed 60 --tcp 127.0.0.1:7700  # a minute of meter time per second
  simulate.py --meter kaifa --count 500 --out capture.bin    # write a capture file, no waiting
  simulate.py --meter wn --key 000102030405060708090a0b0c0d0e0f --tcp 127.0.0.1:7700  # Wiener Netze, ciphered
  simulate.py --replay capture.bin --tcp 127.0.0.1:7700      # replay a capture at the line rate
  simulate.py --serial /dev/ttyUSB0 --parity E --tcp 127.0.0.1:7700  # bridge a real M-Bus adapter

The firmware's host UART shim connects to the --tcp address (HAN_UART=tcp:HOST:PORT).
Frames are HDLC type 3 with correct HCS/FCS (CRC-16/X.25 from hanport.crc), the meters' own address
bytes, APDU header and A-XDR layouts as in published captures (host_tests/vectors).
"""

import argparse
import datetime
import json
import math
import os
import random
import select
import signal
import socket
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "lib"))

from hanport.crc import crc16_x25  # noqa: E402

try:
    from zoneinfo import ZoneInfo

    OSLO = ZoneInfo("Europe/Oslo")
except Exception:  # no tz database: fixed CET
    OSLO = datetime.timezone(datetime.timedelta(hours=1))

LINE_BYTES_PER_S = 240  # 2400 baud, 10 bits per byte (8E1 has 11: close enough for pacing)

# --- A-XDR encoding (IEC 62056-6-2 data types) ---


def u32(v):
    return b"\x06" + (v & 0xFFFFFFFF).to_bytes(4, "big")


def i16(v):
    return b"\x10" + (v & 0xFFFF).to_bytes(2, "big")


def u16(v):
    return b"\x12" + (v & 0xFFFF).to_bytes(2, "big")


def octets(b):
    return b"\x09" + bytes((len(b),)) + b


def visible(s):
    b = s.encode()
    return b"\x0a" + bytes((len(b),)) + b


def obis(a, b, c, d, e, f=255):
    return b"\x09\x06" + bytes((a, b, c, d, e, f))


def struct(n):
    return b"\x02" + bytes((n,))


def array(n):
    return b"\x01" + bytes((n,))


def scaler_unit(scaler, unit):
    return b"\x02\x02\x0f" + (scaler & 0xFF).to_bytes(1, "big") + b"\x16" + bytes((unit,))


def cosem_datetime(dt, deviation=0x8000, status=0x00):
    """12-byte COSEM date-time of a local datetime (hundredths unspecified)."""
    return (dt.year.to_bytes(2, "big") + bytes((dt.month, dt.day, dt.isoweekday(), dt.hour, dt.minute,
                                                 dt.second, 0xFF)) + deviation.to_bytes(2, "big") + bytes((status,)))


# --- HDLC frame type 3 (IEC 62056-46) ---


def hdlc_frame(info, dst=b"\x41", src=b"\x08\x83", control=0x13):
    """7E A0LL dst src control HCS info FCS 7E, with CRC-16/X.25 sent low byte first."""
    length = 2 + len(dst) + len(src) + 1 + 2 + len(info) + 2
    head = bytearray((0xA0 | (length >> 8), length & 0xFF)) + dst + src + bytes((control,))
    hcs = crc16_x25(head, 0, len(head))
    body = head + hcs.to_bytes(2, "little") + info
    fcs = crc16_x25(body, 0, len(body))
    return b"\x7e" + bytes(body) + fcs.to_bytes(2, "little") + b"\x7e"


LLC = b"\xe6\xe7\x00"

# --- the household ---


class House:
    """Plausible Norwegian household load (electric heating, water heater, cooking peaks), with an
    optional solar plant that exports at midday. Deterministic for a seed."""

    def __init__(self, seed=1, phases=3, solar_kw=0.0):
        self.rng = random.Random(seed)
        self.phases = phases
        self.solar_kw = solar_kw
        self.heater_phase = self.rng.random() * 7200
        self.events = []  # (start_s, end_s, watts)

    def power_w(self, t, local):
        """Net active power at epoch second t (positive = import)."""
        h = local.hour + local.minute / 60.0
        base = 450 + 250 * math.cos((h - 3) / 24 * 2 * math.pi + math.pi)  # night low, day higher
        base += 900 * math.exp(-((h - 7.5) ** 2) / 1.5) + 1400 * math.exp(-((h - 18) ** 2) / 3.0)
        if local.month in (11, 12, 1, 2, 3):
            base += 1500  # electric heating season
        if (t + self.heater_phase) % 7200 < 1500:
            base += 2000  # water heater cycling
        if self.rng.random() < 0.002:
            self.events.append((t, t + self.rng.randint(120, 900), self.rng.choice((1800, 2200, 3000))))
        self.events = [e for e in self.events if e[1] > t]
        base += sum(e[2] for e in self.events)
        base *= 1 + self.rng.gauss(0, 0.02)
        if self.solar_kw and 6 <= h <= 20:
            base -= self.solar_kw * 1000 * max(0.0, math.sin((h - 6) / 14 * math.pi)) ** 1.5
        return int(base)

    def voltage_v(self):
        return 230 + self.rng.gauss(0, 1.5)


# Iskraemeco AM550 on the Wiener Netze customer interface (lib/hanport/meters_eu.py): a push every second
# (push setup as the Gurux forum quotes Wiener Netze), ciphered with security 0x20 (encryption, no tag) as
# the published captures (host_tests/vectors/rddl-network__EnergyAgent.json) under system title ISK + 5 bytes
WN_SYSTEM_TITLE = b"ISKit\x00\x00\x17"
WN_INTERVAL_S = 1.0


class Meter:
    """One meter: yields (sim datetime, list number, frame bytes) at the meter's intervals."""

    KINDS = ("aidon", "kaifa", "kamstrup", "wn")

    def __init__(self, kind, phases=3, seed=1, start=None, solar_kw=0.0, meter_id=None, key=None, interval_s=None):
        if kind not in self.KINDS:
            raise ValueError("meter kind must be one of %s" % ", ".join(self.KINDS))
        self.kind = kind
        self.phases = phases
        self.house = House(seed, phases, solar_kw)
        if start is None:
            start = datetime.datetime.now(OSLO).replace(microsecond=0)
        elif start.tzinfo is None:
            start = start.replace(tzinfo=OSLO)
        self.t = start.timestamp()
        ids = {"aidon": "7359992890000017", "kaifa": "6970631400000018", "kamstrup": "5706567000000019",
               "wn": ""}  # (the Wiener Netze list carries no meter number)
        self.meter_id = meter_id or ids[kind]
        self.type = {"aidon": "6525" if phases == 3 else "6515",
                     "kaifa": "MA304H3E" if phases == 3 else "MA105H2E",
                     "kamstrup": "6841121BN243101040" if phases == 3 else "6861111BN242101040", "wn": "AM550"}[kind]
        self.key = bytes.fromhex(key) if isinstance(key, str) else key
        rng = random.Random(seed + 1)
        self.e_import_wh = rng.randint(5_000_000, 40_000_000)
        self.e_export_wh = 0 if not solar_kw else rng.randint(100_000, 2_000_000)
        self.r_import_varh = rng.randint(100_000, 900_000)
        self.r_export_varh = rng.randint(500_000, 3_000_000)
        self.interval_s = interval_s or {"aidon": 2.5, "kaifa": 2.0, "kamstrup": 10.0, "wn": WN_INTERVAL_S}[kind]
        self.list2_every = {"aidon": 4, "kaifa": 5, "kamstrup": 1, "wn": 1}[kind]
        # when the hourly list comes after the full hour; a push meter's first push of the hour stands for it
        self.hour_offset_s = {"aidon": 10, "kaifa": 10, "kamstrup": 5, "wn": 0}[kind]
        self.tick = 0
        self.messages_sent = 0

    # --- values ---
    def _values(self, local):
        p = self.house.power_w(self.t, local)
        imp, exp = (p, 0) if p >= 0 else (0, -p)
        q_imp = int(abs(p) * 0.05)
        q_exp = int(abs(p) * 0.12) + 40
        volts = [self.house.voltage_v() for _ in range(3)]
        if self.phases == 3:
            # IT network: line voltages; current per phase from P = sqrt(3) U I cos(phi)
            i_tot = abs(p) / (math.sqrt(3) * volts[0] * 0.97)
            split = (1.15, 0.8, 1.05)
            amps = [i_tot * s for s in split]
        else:
            amps = [abs(p) / (volts[0] * 0.97), 0.0, 0.0]
        return imp, exp, q_imp, q_exp, amps, volts

    def _integrate(self, dt_s, imp, exp, q_imp, q_exp):
        self.e_import_wh += imp * dt_s / 3600.0
        self.e_export_wh += exp * dt_s / 3600.0
        self.r_import_varh += q_imp * dt_s / 3600.0
        self.r_export_varh += q_exp * dt_s / 3600.0

    # --- lists ---
    def _aidon(self, lst, local, v):
        imp, exp, q_imp, q_exp, amps, volts = v
        p_item = struct(3) + obis(1, 0, 1, 7, 0) + u32(imp) + scaler_unit(0, 27)
        if lst == 1:
            return b"\x00" + array(1) + p_item
        items = [
            struct(2) + obis(1, 1, 0, 2, 129) + visible("AIDON_V0001"),
            struct(2) + obis(0, 0, 96, 1, 0) + visible(self.meter_id),
            struct(2) + obis(0, 0, 96, 1, 7) + visible(self.type),
            p_item,
            struct(3) + obis(1, 0, 2, 7, 0) + u32(exp) + scaler_unit(0, 27),
            struct(3) + obis(1, 0, 3, 7, 0) + u32(q_imp) + scaler_unit(0, 29),
            struct(3) + obis(1, 0, 4, 7, 0) + u32(q_exp) + scaler_unit(0, 29),
            struct(3) + obis(1, 0, 31, 7, 0) + i16(round(amps[0] * 10)) + scaler_unit(-1, 33),
        ]
        if self.phases == 3:  # Aidon 6525 sends no IL2 (docs/han-notes.md §unmeasured-phases)
            items.append(struct(3) + obis(1, 0, 71, 7, 0) + i16(round(amps[2] * 10)) + scaler_unit(-1, 33))
        items.append(struct(3) + obis(1, 0, 32, 7, 0) + u16(round(volts[0] * 10)) + scaler_unit(-1, 35))
        if self.phases == 3:
            items.append(struct(3) + obis(1, 0, 52, 7, 0) + u16(round(volts[1] * 10)) + scaler_unit(-1, 35))
            items.append(struct(3) + obis(1, 0, 72, 7, 0) + u16(round(volts[2] * 10)) + scaler_unit(-1, 35))
        if lst == 3:
            items.append(struct(2) + obis(0, 0, 1, 0, 0) + octets(cosem_datetime(local)))
            for c, val, unit in ((1, self.e_import_wh, 30), (2, self.e_export_wh, 30), (3, self.r_import_varh, 32),
                                 (4, self.r_export_varh, 32)):
                items.append(struct(3) + obis(1, 0, c, 8, 0) + u32(int(val) // 10) + scaler_unit(1, unit))
        return b"\x00" + array(len(items)) + b"".join(items)

    def _kaifa(self, lst, local, v):
        imp, exp, q_imp, q_exp, amps, volts = v
        head = b"\x09\x0c" + cosem_datetime(local)
        if lst == 1:
            return head + struct(1) + u32(imp)
        items = [octets(b"KFM_001"), octets(self.meter_id.encode()), octets(self.type.encode()),
                 u32(imp), u32(exp), u32(q_imp), u32(q_exp)]
        if self.phases == 3:
            items += [u32(round(a * 1000)) for a in amps] + [u32(round(u * 10)) for u in volts]
        else:
            items += [u32(round(amps[0] * 1000)), u32(round(volts[0] * 10))]
        if lst == 3:
            items += [octets(cosem_datetime(local)), u32(int(self.e_import_wh)), u32(int(self.e_export_wh)),
                      u32(int(self.r_import_varh)), u32(int(self.r_export_varh))]
        return head + struct(len(items)) + b"".join(items)

    def _kamstrup(self, lst, local, v):
        imp, exp, q_imp, q_exp, amps, volts = v
        head = b"\x0c" + cosem_datetime(local)
        items = [visible("Kamstrup_V0001"), obis(1, 1, 0, 0, 5), visible(self.meter_id), obis(1, 1, 96, 1, 1),
                 visible(self.type)]
        for c, val in ((1, imp), (2, exp), (3, q_imp), (4, q_exp)):
            items += [obis(1, 1, c, 7, 0), u32(val)]
        if self.phases == 3:
            for c, a in ((31, amps[0]), (51, amps[1]), (71, amps[2])):
                items += [obis(1, 1, c, 7, 0), u32(round(a * 100))]
            for c, u in ((32, volts[0]), (52, volts[1]), (72, volts[2])):
                items += [obis(1, 1, c, 7, 0), u16(round(u))]
        else:  # single phase: null-data where the missing phases would be (published capture)
            items += [obis(1, 1, 31, 7, 0), u32(round(amps[0] * 100)), b"\x00", b"\x00", b"\x00", b"\x00",
                      obis(1, 1, 32, 7, 0), u16(round(volts[0])), b"\x00", b"\x00", b"\x00", b"\x00"]
        if lst == 3:
            items += [obis(0, 1, 1, 0, 0), octets(cosem_datetime(local))]
            for c, val in ((1, self.e_import_wh), (2, self.e_export_wh), (3, self.r_import_varh),
                           (4, self.r_export_varh)):
                items += [obis(1, 1, c, 8, 0), u32(int(val) // 10)]
        return head + struct(len(items)) + b"".join(items)

    def _wiener_netze(self, local, v):
        """Structure of 9: the meter clock, +A -A +R -R (Wh, varh), +P -P +Q -Q (W, var)."""
        imp, exp, q_imp, q_exp, _amps, _volts = v
        clock = cosem_datetime(local, status=0x80 if local.dst() else 0x00)
        values = (int(self.e_import_wh), int(self.e_export_wh), int(self.r_import_varh), int(self.r_export_varh),
                  imp, exp, q_imp, q_exp)
        return clock, struct(9) + octets(clock) + b"".join(u32(x) for x in values)

    def frame(self, lst, local, values):
        if self.kind == "wn":
            clock, body = self._wiener_netze(local, values)
            apdu = b"\x0f" + (self.messages_sent + 1).to_bytes(4, "big") + b"\x0c" + clock + body
            if self.key:
                from hanport.wire_build import encrypt_apdu

                apdu = encrypt_apdu(apdu, self.key, WN_SYSTEM_TITLE, self.messages_sent + 1, security=0x20)
            return hdlc_frame(LLC + apdu, b"\xcf", b"\x02\x23", 0x13)
        if self.kind == "aidon":
            apdu = b"\x0f\x40\x00\x00\x00" + self._aidon(lst, local, values)
            return hdlc_frame(LLC + apdu, b"\x41", b"\x08\x83", 0x13)
        if self.kind == "kaifa":
            apdu = b"\x0f\x40\x00\x00\x00" + self._kaifa(lst, local, values)
            return hdlc_frame(LLC + apdu, b"\x01", b"\x02\x01", 0x10)
        apdu = b"\x0f\x00\x00\x00\x00" + self._kamstrup(lst, local, values)
        return hdlc_frame(LLC + apdu, b"\x2b", b"\x21", 0x13)

    def next_message(self):
        """Advance one interval: (local datetime, list number, frame bytes, interval seconds)."""
        prev = self.t
        self.t += self.interval_s
        local = datetime.datetime.fromtimestamp(int(self.t), OSLO)
        mark = (int(self.t) // 3600) * 3600 + self.hour_offset_s
        values = self._values(local)
        self._integrate(self.interval_s, values[0], values[1], values[2], values[3])
        if prev < mark <= self.t:
            lst = 3
        elif self.kind == "kamstrup" or self.tick % self.list2_every == 0:
            lst = 2
        else:
            lst = 1
        self.tick += 1
        self.messages_sent += 1
        return local, lst, self.frame(lst, local, values), self.interval_s


# --- outputs ---


class TcpOut:
    """Listens; one client at a time (the newest wins). Bytes sent while nobody listens are lost,
    like a meter talking to an unplugged reader."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((host, int(port)))
        self.srv.listen(2)
        self.client = None
        self.clients = 0

    def _accept(self, wait_s=0.0):
        """Take the newest pending connection that is still open (port probes connect and leave)."""
        while True:
            r, _, _ = select.select([self.srv], [], [], wait_s)
            if not r:
                return
            c, _ = self.srv.accept()
            if _closed(c):
                c.close()
                wait_s = 0.0 if self.client is not None else wait_s
                continue
            if self.client is not None:
                self.client.close()
            self.client = c
            self.clients += 1
            print("simulate: client %d connected" % self.clients, file=sys.stderr, flush=True)
            wait_s = 0.0

    def wait_client(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while self.client is None and time.monotonic() < deadline:
            self._accept(max(0.0, deadline - time.monotonic()))
        return self.client is not None

    def write(self, data):
        self._accept()
        if self.client is None:
            return False
        try:
            self.client.sendall(data)
            return True
        except OSError as e:
            print("simulate: client lost (%s)" % e, file=sys.stderr, flush=True)
            self.client.close()
            self.client = None
            return False

    def close(self):
        if self.client:
            self.client.close()
        self.srv.close()


def _closed(sock):
    """True when the peer has already closed (or reset) a just-accepted connection."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


class FileOut:
    def __init__(self, path):
        self.f = open(path, "wb")

    def write(self, data):
        self.f.write(data)
        return True

    def wait_client(self, timeout_s):
        return True

    def close(self):
        self.f.close()


def paced_write(out, data, speed, pace):
    """Send bytes at the line rate (x speed), in small chunks, like a UART would deliver them."""
    if not pace or speed <= 0:
        return out.write(data)
    chunk = 24
    per_chunk_s = chunk / LINE_BYTES_PER_S / speed
    ok = True
    for i in range(0, len(data), chunk):
        ok = out.write(data[i : i + chunk]) and ok
        if i + chunk < len(data):
            time.sleep(per_chunk_s)
    return ok


def run_meter(args, out, log):
    start = datetime.datetime.fromisoformat(args.start) if args.start else None
    meter = Meter(args.meter, args.phases, args.seed, start, args.solar_kw, key=args.key, interval_s=args.interval)
    rng = random.Random(args.seed + 7)
    n = 0
    t_next = time.monotonic()
    deadline = time.monotonic() + args.duration if args.duration else None
    while args.count <= 0 or n < args.count:
        local, lst, frame, interval = meter.next_message()
        if args.corrupt_every and (n + 1) % args.corrupt_every == 0:
            b = bytearray(frame)
            b[len(b) // 2] ^= 0x5A
            frame = bytes(b)
        if args.garbage and rng.random() < args.garbage:
            frame = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40))) + frame
        if args.speed > 0:
            delay = t_next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t_next += interval / args.speed
        sent = paced_write(out, frame, args.speed, args.pace)
        n += 1
        if log:
            log.write(json.dumps({"n": n, "t": time.time(), "sent": sent, "list": lst,
                                  "meter_time": local.strftime("%Y-%m-%dT%H:%M:%S"), "hex": frame.hex()}) + "\n")
            log.flush()
        if deadline and time.monotonic() > deadline:
            break
    return n


def run_replay(args, out):
    with open(args.replay, "rb") as f:
        data = f.read()
    while True:
        rate = LINE_BYTES_PER_S * (args.speed if args.speed > 0 else 1e9)
        for i in range(0, len(data), 64):
            out.write(data[i : i + 64])
            time.sleep(64 / rate)
        if not args.loop:
            return


def run_serial(args, out):
    import serial

    parity = {"E": serial.PARITY_EVEN, "N": serial.PARITY_NONE}[args.parity]
    port = serial.Serial(args.serial, 2400, bytesize=8, parity=parity, stopbits=1, timeout=0.1)
    while True:
        data = port.read(256)
        if data:
            out.write(data)


def main(argv=None):
    ap = argparse.ArgumentParser(description="HAN meter simulator", epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meter", default="aidon", choices=Meter.KINDS)
    ap.add_argument("--phases", type=int, default=3, choices=(1, 3))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--key", help="meter wn: cipher its pushes with this AES-128 key (32 hex digits), as the real ones")
    ap.add_argument("--interval", type=float, default=0,
                    help="seconds of meter time between messages (default: the meter's own; wn pushes every 1 s)")
    ap.add_argument("--start", help="meter local start time, ISO (default: now, Europe/Oslo)")
    ap.add_argument("--speed", type=float, default=1.0,
                    help="meter seconds per wall second (1 = real time; 0 = no waiting at all)")
    ap.add_argument("--no-pace", dest="pace", action="store_false",
                    help="send each frame at once instead of at the 2400 baud line rate")
    ap.add_argument("--count", type=int, default=0, help="stop after N messages (0 = run forever)")
    ap.add_argument("--duration", type=float, default=0, help="stop after S wall seconds")
    ap.add_argument("--solar-kw", type=float, default=0.0, help="a solar plant that exports at midday")
    ap.add_argument("--corrupt-every", type=int, default=0, help="flip a byte in every Nth frame (FCS error)")
    ap.add_argument("--garbage", type=float, default=0.0, help="probability of line noise before a frame")
    ap.add_argument("--tcp", help="HOST:PORT to listen on for the firmware's UART shim")
    ap.add_argument("--out", help="write the bytes to this file instead (a capture)")
    ap.add_argument("--log", help="append one JSON line per message sent (for tests)")
    ap.add_argument("--replay", help="stream this capture file instead of simulating")
    ap.add_argument("--loop", action="store_true", help="with --replay: start over at the end")
    ap.add_argument("--serial", help="bridge a real serial port (M-Bus adapter) instead of simulating")
    ap.add_argument("--parity", default="E", choices=("E", "N"), help="with --serial: 8E1 or 8N1")
    ap.add_argument("--wait-client", type=float, default=0,
                    help="with --tcp: wait up to S seconds for the first client before sending")
    args = ap.parse_args(argv)
    if not args.tcp and not args.out:
        ap.error("give --tcp HOST:PORT or --out FILE")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    out = TcpOut(args.tcp) if args.tcp else FileOut(args.out)
    log = open(args.log, "a") if args.log else None
    try:
        if args.wait_client:
            out.wait_client(args.wait_client)
        if args.replay:
            run_replay(args, out)
        elif args.serial:
            run_serial(args, out)
        else:
            n = run_meter(args, out, log)
            if args.out:
                print("simulate: %d %s messages -> %s" % (n, args.meter, args.out))
    except KeyboardInterrupt:
        pass
    finally:
        out.close()
        if log:
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
