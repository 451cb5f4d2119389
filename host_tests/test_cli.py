# tools/decode.py: raw files, hex text, stdin, counters on stderr, JSON Lines in the canonical schema.
import json
import os
import subprocess
import sys

from hanvectors import norwegian_frames

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DECODE = os.path.join(ROOT, "tools", "decode.py")
CAPTURES = os.path.join(ROOT, "host_tests", "vectors", "captures")


def run(args, data=None):
    return subprocess.run([sys.executable, DECODE] + args, input=data, capture_output=True, timeout=60)


def test_capture_file_to_json_lines():
    p = run([os.path.join(CAPTURES, "aidon_6525_lists.bin")])
    assert p.returncode == 0
    lines = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert [x["list"] for x in lines] == [1, 2, 3]
    assert lines[2]["active_import_kwh"] == 21882.34  # 0x2163CA = 2188234 x 10 Wh (scaler 1, unit Wh sent)
    assert lines[2]["meter_id"] == "7359992899161110"
    counters = json.loads(p.stderr.decode().strip().splitlines()[-1])
    assert counters["frames_ok"] == 3 and counters["readings"] == 3


def test_exact_decimal_text_is_printed():
    p = run([os.path.join(CAPTURES, "kaifa_ma304t4_lists.bin")])
    text = p.stdout.decode()
    assert '"voltage_l1_v":138.7' in text and '"active_import_kwh":801.652' in text


def test_hex_from_stdin_with_whitespace():
    frame = norwegian_frames()[0].hex()
    spaced = " ".join(frame[i : i + 2] for i in range(0, len(frame), 2)) + "\n"
    p = run(["--hex", "-"], spaced.encode())
    assert p.returncode == 0
    assert len(p.stdout.decode().splitlines()) == 1


def test_messy_stream_counts_errors():
    p = run([os.path.join(CAPTURES, "kamstrup_messy_stream.bin")])
    assert len(p.stdout.decode().splitlines()) == 2
    counters = json.loads(p.stderr.decode().strip().splitlines()[-1])
    assert counters["fcs_error"] == 1 and counters["bytes_skipped"] > 0


def test_bad_hex_is_an_error_not_a_crash():
    p = run(["--hex", "-"], b"7e a0 zz")
    assert p.returncode == 2
    assert b"bad hex" in p.stderr


def test_count_limit():
    p = run(["--count", "2", os.path.join(CAPTURES, "kaifa_ma304t4_lists.bin")])
    assert len(p.stdout.decode().splitlines()) == 2


def test_serial_port_through_a_pty():
    """--serial reads a live port (pyserial) the same way: a pty stands in for the USB adapter."""
    import pty
    import time

    master, slave = pty.openpty()
    port = os.ttyname(slave)
    proc = subprocess.Popen([sys.executable, DECODE, "--serial", port, "--count", "3"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)  # let pyserial open and configure the port
        frames = norwegian_frames()[:3]
        for f in frames:
            for i in range(0, len(f), 16):  # 16-byte pieces, as a 2400-baud line delivers them
                os.write(master, f[i : i + 16])
            time.sleep(0.05)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
        os.close(slave)
    lines = out.decode().splitlines()
    assert len(lines) == 3, err.decode()
    assert json.loads(lines[0])["list"] in (1, 2, 3)


def test_capture_tool_records_and_decode_replays(tmp_path):
    """tools/capture.py on a pty records timestamped hex lines; decode.py replays the file."""
    import pty
    import time

    master, slave = pty.openpty()
    out_file = tmp_path / "meter.hancap"
    capture = os.path.join(ROOT, "tools", "capture.py")
    proc = subprocess.Popen([sys.executable, capture, "--serial", os.ttyname(slave), "--seconds", "4",
                             "-o", str(out_file)], stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)
        for f in norwegian_frames()[:4]:
            os.write(master, f)
            time.sleep(0.1)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
        os.close(slave)
    text = out_file.read_text()
    assert text.startswith("# hanport-capture v1")
    p = run([str(out_file)])
    assert p.returncode == 0
    assert len(p.stdout.decode().splitlines()) == 4


def test_make_run_on_a_busy_http_port_says_so_in_one_line():
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "run_host.py"), "--http-port", str(port)],
                           capture_output=True, text=True, timeout=60)
    finally:
        busy.close()
    out = (p.stdout + p.stderr).strip()
    assert p.returncode == 2, out
    assert out.splitlines() == ["run_host: HTTP port %d is in use by another program; pick another: "
                                "HTTP_PORT=%d make run" % (port, port + 1)], out


def _t210d():
    with open(os.path.join(ROOT, "host_tests", "vectors", "Noschvie__shrdzm.json")) as f:
        return [r for r in json.load(f) if r["id"] == "shrdzm-sagemcom-t210d-steiermark"][0]


def test_t210d_telegrams_with_protocol_glo_and_their_key():
    """The Sagemcom T210-D's bare ciphered APDUs (vector and its values: host_tests/vectors/Noschvie__shrdzm.json,
    derived by hand from the deciphered telegram) are read when asked for, never detected by themselves."""
    rec = _t210d()
    data = (rec["hex"] * 2).encode()
    p = run(["--hex", "--protocol", "glo", "--key", rec["key_hex"], "-"], data)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert len(lines) == 2
    for k, v in rec["derived"].items():
        assert str(lines[0][k]) == str(v) if k in ("meter_time", "list_version") else float(lines[0][k]) == float(v)
    assert rec["key_hex"] not in p.stderr.decode() + p.stdout.decode()
    counters = json.loads(p.stderr.decode().strip().splitlines()[-1])
    assert counters["protocol"] == "glo" and counters["deciphered"] == 2 and counters["p1_telegrams_ok"] == 2
    # a wrong key: no value, counted; auto-detection: not taken for a protocol it knows
    wrong = rec["key_hex"][:-1] + ("0" if rec["key_hex"][-1] != "0" else "1")
    p = run(["--hex", "--protocol", "glo", "--key", wrong, "-"], data)
    assert p.stdout == b"" and json.loads(p.stderr.decode().strip().splitlines()[-1])["wrong_key"] == 2
    p = run(["--hex", "--key", rec["key_hex"], "-"], data)
    assert p.stdout == b""
    assert json.loads(p.stderr.decode().strip().splitlines()[-1]).get("protocol") != "glo"
