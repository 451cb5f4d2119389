# Updates a running reader over the network (`make ota HOST=<ip> TOKEN=<admin token>`): the `make mpy` tree
# as one bundle (firmware/update.py's format), sent to POST /firmware/update with the admin token. Stdlib only.
"""Usage: python tools/ota.py --host 192.168.1.50 --token <admin token> [--port 80] [--version V]
       python tools/ota.py --out bundle.bin      (the bundle as a file: the settings page uploads it)

The bundle: a JSON header line {"format": "hanport-ota", "layout": "hanport-mpy6", "version", "count"
(files), "bytes" (their total size), "sha256", "healthy_within_s" (optional)}, then for each file a line
"<sha256 hex> <size> <path>" and its bytes. "sha256" is the manifest's: of the line "<version>" and every
file line, each with its newline.
"""

import argparse
import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICE_DIR = os.path.join(ROOT, "build", "device")
FORMAT = "hanport-ota"
# the app's files at the top, the library under lib/ (as `make mpy` lays them out), in bytecode mpy v6
# (mpy-cross 1.23+): firmware/update.py takes "hanport-mpy<the version its MicroPython loads>"
LAYOUT = "hanport-mpy6"
NOT_SENT = ("main.py", "boot.py", "version.mpy")  # the loader at the flash's root: `make deploy` only


def default_version():
    """`git describe` of this tree (e.g. 0.1.0-12-gabc1234-dirty) in the characters a version name may
    use, else the library's version."""
    try:
        out = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty", "--tags"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    if not out:
        sys.path.insert(0, os.path.join(ROOT, "lib"))
        out = __import__("hanport").__version__
    return re.sub(r"[^A-Za-z0-9._+-]", "_", out)[:40]


def bundle_files(device_dir):
    """(path on the device, path here) of every file of the tree, sorted; dot files and the loader left out."""
    out = []
    for dirpath, dirnames, names in os.walk(device_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = os.path.relpath(dirpath, device_dir)
        for n in sorted(names):
            if n.startswith(".") or (rel == "." and n in NOT_SENT):
                continue
            out.append((n if rel == "." else rel.replace(os.sep, "/") + "/" + n, os.path.join(dirpath, n)))
    return sorted(out)


def make_bundle(files, version, layout=LAYOUT, healthy_within_s=None):
    """The bundle's bytes for files [(path on the device, bytes)]; healthy_within_s: how long the version
    may take after its first boot to be healthy (the reader's default: 300 s)."""
    lines = []
    for path, data in files:
        lines.append(("%s %d %s\n" % (hashlib.sha256(data).hexdigest(), len(data), path)).encode())
    manifest = hashlib.sha256(version.encode() + b"\n" + b"".join(lines)).hexdigest()
    head = {"format": FORMAT, "layout": layout, "version": version, "count": len(files),
            "bytes": sum(len(d) for _, d in files), "sha256": manifest}
    if healthy_within_s is not None:
        head["healthy_within_s"] = healthy_within_s
    out = [json.dumps(head, separators=(",", ":")).encode() + b"\n"]
    for line, (_, data) in zip(lines, files, strict=True):
        out += [line, data]
    return b"".join(out)


def bundle_from_tree(device_dir, version, healthy_within_s=None):
    files = []
    for path, src in bundle_files(device_dir):
        with open(src, "rb") as f:
            files.append((path, f.read()))
    return make_bundle(files, version, healthy_within_s=healthy_within_s)


def send(host, token, bundle, port=80, timeout_s=60.0):
    """(HTTP status, answer text) of POST /firmware/update with the bundle."""
    c = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        c.putrequest("POST", "/firmware/update")
        c.putheader("Authorization", "Bearer " + token)
        c.putheader("Content-Type", "application/octet-stream")
        c.putheader("Content-Length", str(len(bundle)))
        c.endheaders()
        view = memoryview(bundle)
        try:
            for i in range(0, len(view), 4096):
                c.send(view[i : i + 4096])
        except OSError:  # the reader answered early (wrong token, a refused header) and closed: read why
            pass
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def send_retrying(host, token, bundle, port=80, tries=5, pause_s=2.0):
    """send(), again after pause_s while the reader answers 503 (busy, or its heap short for a moment:
    nothing was written then)."""
    for i in range(tries):
        status, text = send(host, token, bundle, port)
        if status != 503 or i == tries - 1:
            return status, text
        time.sleep(pause_s)


def main(argv=None):
    ap = argparse.ArgumentParser(description="send the `make mpy` tree to a running reader", epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", help="the reader's address (IP or name)")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--token", default=os.environ.get("HAN_TOKEN", ""), help="the admin token (http.token)")
    ap.add_argument("--version", default=None, help="version name (default: git describe)")
    ap.add_argument("--build", default=DEVICE_DIR, help="the tree to send (make mpy: build/device)")
    ap.add_argument("--out", default=None, help="write the bundle to this file instead of sending it")
    ap.add_argument("--healthy-within", type=int, default=None, metavar="S",
                    help="seconds the new version has to become healthy after it starts (5..3600; default 300)")
    args = ap.parse_args(argv)
    if not os.path.isfile(os.path.join(args.build, "app.mpy")):
        print("ota: no %s/app.mpy: run make mpy first" % args.build)
        return 2
    version = args.version or default_version()
    bundle = bundle_from_tree(args.build, version, args.healthy_within)
    print("ota: version %s, %d files, %d bytes" % (version, len(bundle_files(args.build)), len(bundle)))
    if args.out:
        with open(args.out, "wb") as f:
            f.write(bundle)
        print("ota: wrote %s (upload it in the settings page)" % args.out)
        return 0
    if not args.host or not args.token:
        print("ota: --host and --token (the admin token) are needed to send it")
        return 2
    try:
        status, text = send_retrying(args.host, args.token, bundle, args.port)
    except OSError as e:
        print("ota: could not send to %s:%d: %s" % (args.host, args.port, e))
        return 1
    print("ota: %d %s" % (status, text.strip()))
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
