# Heap benchmark on the 32-bit ESP32 stand-in (printed, never asserted): the smallest heap at which the
# device load passes, installed as `make deploy` installs it and frozen into the image; RAM per module.
"""Usage: python tools/bench_heap.py [--seconds 90] [--meters aidon,kamstrup] [--jobs N]
                                    [--skip-frozen] [--skip-soak] [--skip-modules]

1. A snapshot of the firmware (firmware/, lib/hanport/, tools/device.py copied to build/bench-heap/),
   so that every figure of one run is of the same code while others edit the tree; `device.py mpy`
   and `device.py manifest` run inside the snapshot. The repo's manifest.py is checked too.
2. The stand-in with the app frozen in (build-frozen.sh with the snapshot's manifest.py), cached in
   build/bench-heap by a hash of the manifest, the frozen sources and the stand-in's source.
3. Per meter (steps of different meters side by side, --jobs), per install (deploy: .mpy files on
   flash; frozen: main.py alone on flash): tools/soak.py's load at a heap of 112K first, then the
   smallest passing heap on the 8 KB grid by bisection. --seconds is the length of each step (a long
   soak: --seconds 600).
4. RAM per module: each firmware and hanport module imported after gc.collect() in the order the app
   imports them (traced from a boot under the load), its heap delta and the qstr pool before/after.
Exit status 0 unless a tool itself breaks (a firmware that fails is a figure, not an error).
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS)
import device  # noqa: E402
import run_host  # noqa: E402
import soak  # noqa: E402

ROOT = run_host.ROOT
BENCH_DIR = os.path.join(run_host.BUILD, "bench-heap")
BUILD_FROZEN_SCRIPT = run_host.BUILD_FROZEN_SCRIPT
MICROPYTHON_SOURCE = run_host.MICROPYTHON_SOURCE
PLAIN_ESP32_KB = 112
MODULE_HEAP = "512K"  # the per-module import runs: room enough that no collection happens by need
TRACE_SECONDS = 75  # the import trace: boot, then the load long enough for an hourly list at 60x
TRACE_EXTRA_PATHS = ("/setup", "/config", "/raw")  # pages outside the soak load, fetched once
KEEP_FROZEN_BUILDS = 3

print_lock = threading.Lock()


def say(text=""):
    with print_lock:
        print(text, flush=True)


def elapsed(seconds):
    return "%dm%02ds" % (seconds // 60, seconds % 60)


# --- the firmware snapshot


def source_files():
    """(path in the repo, path in the snapshot) of what the snapshot holds: the device files,
    the host-only hanport modules (device.py skips them itself) and the device helper with its folding step."""
    files = [(src, os.path.relpath(src, ROOT)) for src, _ in device.device_files()]
    for name in device.HOST_ONLY:
        path = os.path.join(ROOT, "lib", "hanport", name)
        if os.path.exists(path):
            files.append((path, os.path.relpath(path, ROOT)))
    for name in device.WWW:  # the dashboard page (make mpy gzips it)
        path = os.path.join(ROOT, "firmware", "www", name)
        files.append((path, os.path.relpath(path, ROOT)))
    for name in ("device.py", "constfold.py"):  # the device helper and its build step
        files.append((os.path.join(TOOLS, name), os.path.join("tools", name)))
    return sorted(files, key=lambda f: f[1])


def digest_of(files):
    h = hashlib.sha256()
    for path, rel in files:
        h.update(rel.encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
        h.update(b"\0")
    return h.hexdigest()


class Snapshot:
    """The firmware as it was when the bench started: sources, .mpy tree, manifest.py."""

    def __init__(self):
        for _ in range(5):  # a file written while being copied: copy again
            files = source_files()
            before = digest_of(files)
            self.ident = before[:12]
            self.dir = os.path.join(BENCH_DIR, "snapshot-" + self.ident)
            self.src = os.path.join(self.dir, "src")
            if not os.path.exists(os.path.join(self.dir, ".complete")):
                shutil.rmtree(self.dir, ignore_errors=True)
                for path, rel in files:
                    os.makedirs(os.path.dirname(os.path.join(self.src, rel)), exist_ok=True)
                    shutil.copyfile(path, os.path.join(self.src, rel))
                copied = [(os.path.join(self.src, rel), rel) for _, rel in files]
                if digest_of(copied) != before:
                    continue
                self._build()
                open(os.path.join(self.dir, ".complete"), "w").close()
            break
        else:
            raise RuntimeError("the firmware sources kept changing while being copied")
        self.device_dir = os.path.join(self.dir, "device")
        self.manifest = os.path.join(self.src, "manifest.py")
        self.files = files

    def _build(self):
        helper = os.path.join(self.src, "tools", "device.py")
        for cmd in (["mpy", "--quiet", "--build", os.path.join(self.dir, "device")], ["manifest"]):
            p = subprocess.run([sys.executable, helper] + cmd, capture_output=True, text=True, cwd=self.src,
                               env=dict(os.environ, DRY_RUN=""))
            if p.returncode:
                raise RuntimeError("device.py %s in the snapshot failed:\n%s%s" % (cmd[0], p.stdout, p.stderr))

    def module_names(self):
        """Import names of the firmware and hanport modules the snapshot installs."""
        names = []
        for dirpath, _, files in os.walk(self.device_dir):
            for n in files:
                if n.endswith(".mpy"):
                    rel = os.path.relpath(os.path.join(dirpath, n), self.device_dir)[:-4]
                    rel = rel[len("lib/"):] if rel.startswith("lib/") else rel
                    names.append(rel.replace("/", ".").replace(".__init__", ""))
        return sorted(names)

    def describe(self):
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "firmware", "lib"], capture_output=True,
                               text=True, cwd=ROOT)
        return "git %s%s, sources %s (%s)" % (head.stdout.strip() or "?", " + uncommitted changes"
                                              if dirty.stdout.strip() else "", self.ident,
                                              os.path.relpath(self.dir, ROOT))


def use_snapshot(snapshot):
    """Every install of this process (run_host.install_like_deploy and the frozen install) copies
    from the snapshot's .mpy tree instead of rebuilding build/device from the working tree."""
    run_host.build_device = lambda: snapshot.device_dir


# --- manifest.py


def manifest_lists(text, root):
    """(firmware module files, hanport files) that a manifest freezes, with the component manifests
    (manifests/<name>/manifest.py under root) that it requires from its add_library("hanport", ...)."""
    firmware = set(re.findall(r'module\("([^"]+)",\s*base_path="firmware"\)', text))
    texts = [text] + [open(os.path.join(root, "manifests", name, "manifest.py")).read()
                      for name in re.findall(r'require\("([^"]+)",\s*library="hanport"\)', text)
                      if os.path.exists(os.path.join(root, "manifests", name, "manifest.py"))]
    hanport = set()
    for t in texts:
        for package in re.finditer(r'package\("hanport",\s*files=\(([^)]*)\)', t):
            hanport |= set(re.findall(r'"([^"]+)"', package.group(1)))
    return firmware, hanport


def manifest_problems(text, root):
    """What a manifest misses (or names that do not exist) against the sources under root."""
    firmware_dir = os.path.join(root, "firmware")
    hanport_dir = os.path.join(root, "lib", "hanport")
    firmware, hanport = manifest_lists(text, root)
    want_fw = {n for n in os.listdir(firmware_dir) if n.endswith(".py") and n not in device.SOURCE_ONLY}
    want_hp = {n for n in os.listdir(hanport_dir) if n.endswith(".py") and n not in device.HOST_ONLY}
    problems = []
    for label, listed, wanted, folder in (("firmware", firmware, want_fw, "firmware/"),
                                          ("hanport", hanport, want_hp, "lib/hanport/")):
        missing = sorted(wanted - listed)
        absent = sorted(listed - {n for n in os.listdir(firmware_dir if label == "firmware" else hanport_dir)})
        if missing:
            problems.append("does not freeze %s" % ", ".join(folder + n for n in missing))
        if absent:
            problems.append("names files that do not exist: %s" % ", ".join(folder + n for n in absent))
    host_only_listed = sorted(hanport & set(device.HOST_ONLY))
    if host_only_listed:
        problems.append("freezes host-only %s" % ", ".join(host_only_listed))
    if not re.search(r'require\("umqtt\.simple"\)', text):
        problems.append("does not require umqtt.simple")
    return problems


def check_repo_manifest(snapshot):
    """Lines about the repo's manifest.py: stale against `device.py manifest`, and its coverage."""
    lines = []
    path = os.path.join(ROOT, "manifest.py")
    if not os.path.exists(path):
        return ["manifest.py missing at the repo root (make manifest writes it)"]
    with open(path) as f:
        repo_text = f.read()
    with open(snapshot.manifest) as f:
        generated = f.read()
    if repo_text != generated:
        lines.append("manifest.py is stale (differs from what `tools/device.py manifest` writes now); the frozen "
                     "build uses the regenerated one; run `make manifest`")
    problems = manifest_problems(repo_text, ROOT)
    lines += ["manifest.py " + p for p in problems]
    generated_problems = manifest_problems(generated, snapshot.src)
    lines += ["device.py manifest (regenerated) " + p + ": tools/device.py must fix this"
              for p in generated_problems]
    return lines


# --- the stand-in with the app frozen in


def frozen_build_key(snapshot):
    h = hashlib.sha256()
    for path in (snapshot.manifest, BUILD_FROZEN_SCRIPT, MICROPYTHON_SOURCE) + tuple(shim_sources()):
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    h.update(digest_of([(os.path.join(snapshot.src, rel), rel) for _, rel in snapshot.files]).encode())
    return h.hexdigest()[:12]


def shim_sources():
    return [os.path.join(run_host.SHIM_SRC, n) for n in sorted(os.listdir(run_host.SHIM_SRC)) if n.endswith(".py")]


def frozen_standin(snapshot):
    """(path of the stand-in with the app frozen in, None) or (None, why it cannot be had)."""
    for needed in (BUILD_FROZEN_SCRIPT, MICROPYTHON_SOURCE):
        if not os.path.exists(needed):
            return None, "%s absent" % needed
    binary = os.path.join(BENCH_DIR, "standin-frozen-" + frozen_build_key(snapshot))
    if os.path.exists(binary):
        say("frozen stand-in: cached %s" % os.path.relpath(binary, ROOT))
        return binary, None
    # the snapshot's manifest.py (the app) and the host shims (a board's image has machine and network)
    manifest = os.path.join(BENCH_DIR, "frozen-manifest.py")
    with open(manifest, "w") as f:
        f.write("include(%r)\n" % snapshot.manifest)
        for path in shim_sources():
            f.write("module(%r, base_path=%r)\n" % (os.path.basename(path), run_host.SHIM_SRC))
    t0 = time.monotonic()
    why = run_host.build_frozen_standin(manifest, binary, os.path.join(BENCH_DIR, "frozen-build.log"), say=say)
    if why:
        return None, why
    say("frozen stand-in: built %s in %s" % (os.path.relpath(binary, ROOT), elapsed(time.monotonic() - t0)))
    old = sorted((p for p in os.listdir(BENCH_DIR) if p.startswith("standin-frozen-") and not p.endswith(".tmp")),
                 key=lambda p: os.path.getmtime(os.path.join(BENCH_DIR, p)))
    for name in old[:-KEEP_FROZEN_BUILDS]:
        os.remove(os.path.join(BENCH_DIR, name))
    if not run_host.has_frozen_app(binary):
        return None, "%s was built but does not list the app among its frozen modules" % binary
    return binary, None


# --- RAM per module

# Prints "BENCH-IMPORT name" as each module's first import completes (so after the modules it imports
# itself), then runs BODY: main.py (the app's boot), or imports of a list of names.
IMPORT_TRACER = """\
import builtins
import sys
_import = builtins.__import__
_seen = set(sys.modules)


def _traced_import(name, globals=None, locals=None, fromlist=None, level=0):
    module = _import(name, globals, locals, fromlist, level)
    if level or not isinstance(name, str):
        return module  # relative (asyncio's lazy parts): not the app's modules
    parts = name.split(".")
    names = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    if isinstance(fromlist, (tuple, list)):
        for leaf in fromlist:
            names.append(name + "." + leaf)
    for n in names:
        if n not in _seen and n in sys.modules:
            _seen.add(n)
            print("BENCH-IMPORT", n)
    return module


builtins.__import__ = _traced_import
%s
"""
RUN_MAIN = 'exec(open("main.py").read(), {"__name__": "__main__"})'
IMPORT_LIST = """\
for _name in %r:
    try:
        __import__(_name)
    except Exception as e:
        print("BENCH-IMPORT-FAILED", _name, repr(e))
"""

MODULE_MEASURER = """\
import gc
import micropython
NAMES = %r
gc.collect()
print("BENCH-START", gc.mem_alloc())
micropython.qstr_info()
for name in NAMES:
    gc.collect()
    before = gc.mem_alloc()
    problem = ""
    try:
        __import__(name)
    except Exception as e:
        problem = repr(e)
    gc.collect()
    after = gc.mem_alloc()
    print("BENCH-MODULE", name, before, after, problem)
    micropython.qstr_info()
"""

QSTR_LINE = re.compile(r"qstr pool: n_pool=(\d+), n_qstr=(\d+), n_str_data_bytes=(\d+), n_total_bytes=(\d+)")


def firmware_env(uart_source):
    """The environment of a run in the flash folder: sys.path as run_host.start_firmware sets it."""
    return dict(os.environ, MICROPYPATH=os.pathsep.join(["", ".frozen", "lib", run_host.build_shims()]),
                HAN_UART=uart_source, HAN_LINE_PARITY="E")


def flash_command(interpreter, script):
    """argv running script (a file in the flash folder) as run_host.start_firmware runs main.py."""
    return [interpreter, "-X", "heapsize=" + MODULE_HEAP, "-c", "exec(open(%r).read())" % script]


def trace_import_order(standin, workdir):
    """Module names (firmware and others) in the order the app first imports them, each after the
    modules it imports itself: a boot of the deploy install under the soak load, with the hourly list."""
    shutil.rmtree(workdir, ignore_errors=True)
    rig = run_host.Rig(workdir, meter="aidon", speed=60, heap=MODULE_HEAP, interpreter=standin)
    flash = os.path.join(workdir, "flash")
    os.makedirs(flash)
    with open(os.path.join(flash, "config.json"), "w") as f:
        json.dump(rig.cfg, f)
    run_host.install_like_deploy(flash, standin)
    with open(os.path.join(flash, "bench_import_trace.py"), "w") as f:
        f.write(IMPORT_TRACER % RUN_MAIN)
    run_host.fetch_umqtt()
    proc = load = None
    try:
        rig.start_broker()
        rig.sim = run_host.start_simulator(rig.sim_port, "aidon", 60, (), rig.sim_log,
                                           os.path.join(workdir, "simulator.log"))
        with soak.one_start_at_a_time():
            with open(rig.fw_log, "wb") as log:
                proc = subprocess.Popen(flash_command(standin, "bench_import_trace.py"),
                                        cwd=flash, env=firmware_env("tcp:127.0.0.1:%d" % rig.sim_port),
                                        stdout=log, stderr=subprocess.STDOUT)
            run_host.wait_port(rig.http_port, 30, proc)
        load = soak.Load(rig, clients=1)
        load.start()
        for path in TRACE_EXTRA_PATHS:
            try:
                rig.http(path)
            except OSError:
                pass
        deadline = time.monotonic() + TRACE_SECONDS
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
    finally:
        if load is not None:
            load.finish()
        run_host.stop(proc)
        rig.close()
    order = []
    for line in rig.log_tail(10 ** 7).splitlines():
        if line.startswith("BENCH-IMPORT "):
            order.append(line.split()[1])
    return order, rig.log_tail(1500)


def dependency_order(standin, flash, first, rest):
    """The modules of rest, each after those it imports: a run that imports first (already ordered)
    and then rest, traced. Names whose import fails keep their place at the end."""
    with open(os.path.join(flash, "bench_import_order.py"), "w") as f:
        f.write(IMPORT_TRACER % (IMPORT_LIST % (list(first) + list(rest),)))
    p = subprocess.run(flash_command(standin, "bench_import_order.py"), cwd=flash,
                       env=firmware_env("tcp:127.0.0.1:9"), capture_output=True, text=True, timeout=120)
    seen = set(first)
    order = []
    for line in p.stdout.splitlines():
        if line.startswith("BENCH-IMPORT "):
            name = line.split()[1]
            if name not in seen:
                seen.add(name)
                order.append(name)
    return order + [n for n in rest if n not in seen]


def measure_modules(interpreter, flash, names):
    """[(name, heap delta, qstr (count, bytes) before, after, problem)] of importing names in order."""
    with open(os.path.join(flash, "bench_module_ram.py"), "w") as f:
        f.write(MODULE_MEASURER % (names,))
    p = subprocess.run(flash_command(interpreter, "bench_module_ram.py"), cwd=flash,
                       env=firmware_env("tcp:127.0.0.1:9"), capture_output=True, text=True, timeout=120)
    rows = []
    qstr = None
    pending = None
    for line in p.stdout.splitlines():
        m = QSTR_LINE.match(line)
        if m:
            now = (int(m.group(2)), int(m.group(4)))
            if pending is not None:
                rows.append(pending[:2] + (qstr, now) + pending[2:])
                pending = None
            qstr = now
        elif line.startswith("BENCH-MODULE "):
            parts = line.split(" ", 4)
            pending = (parts[1], int(parts[3]) - int(parts[2]), parts[4] if len(parts) > 4 else "")
    if len(rows) != len(names):
        raise RuntimeError("module measurement under %s stopped after %d of %d modules:\n%s" % (
            interpreter, len(rows), len(names), (p.stdout + p.stderr)[-1500:]))
    return rows


def module_ram(snapshot, standin, frozen_binary):
    """The per-module figures for the deploy install and (when built) the frozen one."""
    ours = set(snapshot.module_names())
    traced, log_tail = trace_import_order(standin, os.path.join(BENCH_DIR, "runs", "import-trace"))
    order = [n for n in traced if n in ours]
    if not order:
        say("import trace: no module recorded; the boot log ends:\n" + log_tail)
    untraced = sorted(ours - set(order))
    flash = tempfile.mkdtemp(prefix="modules-deploy-", dir=BENCH_DIR)
    run_host.install_like_deploy(flash, standin)
    # the image's and the shims' modules are imported too, where the app imports them, so that each
    # firmware module's delta is its own (they are listed apart); modules the trace did not see come
    # last, each after the modules it imports
    names = traced + dependency_order(standin, flash, traced, untraced)
    result = {"order": order, "untraced": untraced, "ours": ours, "deploy": None, "frozen": None}
    result["deploy"] = measure_modules(standin, flash, names)
    shutil.rmtree(flash, ignore_errors=True)
    if frozen_binary:
        flash = tempfile.mkdtemp(prefix="modules-frozen-", dir=BENCH_DIR)
        run_host.install_like_frozen_deploy(flash, frozen_binary)
        result["frozen"] = measure_modules(frozen_binary, flash, names)
        shutil.rmtree(flash, ignore_errors=True)
    return result


def module_kind(name, ours):
    if name in ours:
        return ""
    if os.path.exists(os.path.join(run_host.SHIM_SRC, name.split(".")[0] + ".py")):
        return "host shim (a C module on a board)"
    return "not the app's (the image or MicroPython)"


def print_module_table(ram):
    deploy = ram["deploy"]
    frozen = {r[0]: r for r in ram["frozen"] or ()}
    say("\n== RAM per module (32-bit stand-in, import delta after gc.collect(); qstr pool: count/bytes)")
    say("%-3s %-28s %10s %21s %10s %17s  %s" % ("#", "module", ".mpy RAM", "qstr pool before->after",
                                               "frozen", "frozen qstr pool", "note"))
    totals = {"firmware": [0, 0], "hanport": [0, 0]}
    for i, (name, delta, qstr_before, qstr_after, problem) in enumerate(deploy, 1):
        fz = frozen.get(name)
        note = module_kind(name, ram["ours"])
        if not note:
            group = "hanport" if name.startswith("hanport") else "firmware"
            totals[group][0] += delta
            totals[group][1] += fz[1] if fz else 0
            if name not in ram["order"]:
                note = "not imported by the app in the trace"
        problem = problem or (fz[4] if fz else "")
        if problem:
            note = (note + "; " if note else "") + "import failed: " + problem
        say("%-3d %-28s %10d %10s->%-10s %10s %17s  %s" % (
            i, name, delta, "%d/%d" % qstr_before, "%d/%d" % qstr_after,
            fz[1] if fz else "-", "%d->%d" % (fz[2][0], fz[3][0]) if fz else "-", note))
    for group, (mpy, fz) in totals.items():
        say("    %-28s %10d %21s %10s" % ("all " + group + " modules", mpy, "", fz if frozen else "-"))
    return totals


# --- the soaks


def describe_step(r, wall_s):
    text = "[%s %s %s] %s in %s" % (r["meter"], r["install"], r["heap"], "pass" if r["ok"] else "FAIL",
                                    elapsed(wall_s))
    text += ": free after boot %s, lowest free after gc %s, %s HTTP answers, %s MQTT states" % (
        r.get("heap_free_after_boot"), r.get("lowest_free_after_gc"), r.get("http_answers", 0),
        r.get("mqtt_states", 0))
    for why in r["why"]:
        text += "\n      why: " + why.replace("\n", "\n           ")
    if not r["ok"]:
        text += "\n      logs: " + os.path.relpath(r["workdir"], ROOT)
    return text


def soak_meter(meter, installs, args):
    """The heap searches of one meter, one install after the other: {install: (kb or None, [results])}."""
    out = {}
    for install, interpreter in installs:
        def run_step(kb, install=install, interpreter=interpreter):
            workdir = os.path.join(BENCH_DIR, "runs", "%s-%s-%dK" % (meter, install, kb))
            shutil.rmtree(workdir, ignore_errors=True)
            t0 = time.monotonic()
            r = soak.soak(meter, "%dK" % kb, args.seconds, interpreter, workdir=workdir,
                          frozen_app=install == "frozen")
            say(describe_step(r, time.monotonic() - t0))
            return r

        out[install] = soak.bisect_smallest_heap(run_step, args.first_kb, args.floor_kb, args.ceiling_kb)
    return out


# --- the report


def kb_text(n):
    return "-" if n is None else "%.1f KB" % (n / 1024)


def steps_text(results):
    return " ".join("%s%s" % (r["heap"], "+" if r["ok"] else "x") for r in results)


def at_heap(results, kb):
    for r in results:
        if r["heap"] == "%dK" % kb:
            return r
    return None


def print_summary(meters, searches, module_totals, notes, args, wall_s, snapshot_text):
    say("\n== summary: %s; %s s per step; wall time %s" % (snapshot_text, int(args.seconds), elapsed(wall_s)))
    rows = [("what", meters)]
    for install, label in (("deploy", ".mpy files (make deploy, stock image)"), ("frozen", "app frozen in")):
        if not any(install in searches.get(m, {}) for m in meters):
            continue
        rows.append(("smallest passing heap, " + label, [
            _smallest_text(searches.get(m, {}).get(install)) for m in meters]))
        rows.append(("  heaps tried (+ pass, x fail)", [
            steps_text(searches[m][install][1]) if install in searches.get(m, {}) else "-" for m in meters]))
        for key, what in (("heap_free_after_boot", "free after boot"), ("lowest_free_after_gc",
                                                                        "lowest free after gc")):
            cells = []
            for m in meters:
                r = at_heap(searches.get(m, {}).get(install, (None, []))[1], PLAIN_ESP32_KB)
                if r is not None and r.get(key) is None:
                    cells.append("no figure" if key == "heap_free_after_boot" else "no /status answer")
                else:
                    cells.append("-" if r is None else kb_text(r.get(key)))
            rows.append(("  %s at %dK" % (what, PLAIN_ESP32_KB), cells))
    if module_totals:
        for group, (mpy, frozen) in module_totals.items():
            rows.append(("RAM of all %s modules: .mpy / frozen" % group,
                         ["%s / %s" % (kb_text(mpy), kb_text(frozen) if frozen else "-")]
                         + [""] * (len(meters) - 1)))
    width = max(len(r[0]) for r in rows) + 2
    cell = max(18, max(len(c) for _, cells in rows for c in cells) + 2)
    for what, cells in rows:
        say(what.ljust(width) + "".join(c.ljust(cell) for c in cells))
    for m in meters:
        for install, (kb, results) in searches.get(m, {}).items():
            failed = [r for r in results if not r["ok"]]
            below = [r for r in failed if kb is None or int(r["heap"][:-1]) < kb]
            if below:
                r = max(below, key=lambda r: int(r["heap"][:-1]))  # the failure nearest the boundary
                say("why %s %s fails at %s: %s" % (m, install, r["heap"], " / ".join(
                    " | ".join(line.strip() for line in why.splitlines())[:220] for why in r["why"])))
    for note in notes:
        say("note: " + note)
    python = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(ROOT) else sys.executable
    say("command: cd %s && %s" % (shlex.quote(ROOT), shlex.join([python, "tools/bench_heap.py"] + sys.argv[1:])))


def _smallest_text(search):
    if search is None:
        return "-"
    kb, results = search
    if kb is None:
        return "none up to %s" % (results[-1]["heap"] if results else "?")
    return "%d KB" % kb


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=90, help="length of each soak step (issue figure: 600)")
    ap.add_argument("--meters", default="aidon,kamstrup", help="comma-separated simulator meters")
    ap.add_argument("--jobs", type=int, default=0, help="meters soaked side by side (default: one per core, "
                                                       "at most one per meter)")
    ap.add_argument("--first-kb", type=int, default=PLAIN_ESP32_KB, help="first heap tried")
    ap.add_argument("--floor-kb", type=int, default=16, help="smallest heap the search considers")
    ap.add_argument("--ceiling-kb", type=int, default=512, help="largest heap the search tries")
    ap.add_argument("--skip-frozen", action="store_true", help="no frozen build, deploy install only")
    ap.add_argument("--skip-soak", action="store_true", help="no heap search")
    ap.add_argument("--skip-modules", action="store_true", help="no per-module RAM")
    args = ap.parse_args(argv)
    t_start = time.monotonic()
    meters = [m.strip() for m in args.meters.split(",") if m.strip()]
    notes = []
    os.makedirs(BENCH_DIR, exist_ok=True)

    standin = run_host.standin_binary()
    if standin is None:
        say("bench_heap: skipped, no 32-bit stand-in (%s; or set HANPORT_MICROPYTHON32)" % run_host.STANDIN_DEFAULT)
        return 0
    run_host.fetch_umqtt()
    run_host.build_shims()  # once, before steps run side by side
    snapshot = Snapshot()
    use_snapshot(snapshot)
    snapshot_text = snapshot.describe()
    say("bench_heap: firmware snapshot %s" % snapshot_text)
    say("stand-in: %s" % standin)
    for line in check_repo_manifest(snapshot):
        say("MANIFEST: " + line)
        notes.append(line)

    frozen_binary = None
    if args.skip_frozen:
        say("frozen install: skipped (--skip-frozen)")
    else:
        frozen_binary, why = frozen_standin(snapshot)
        if frozen_binary is None:
            line = "frozen install skipped: " + why
            say(line)
            notes.append(line.splitlines()[0])
    installs = [("deploy", standin)] + ([("frozen", frozen_binary)] if frozen_binary else [])

    if not args.skip_soak and run_host.mosquitto_binary() is None:
        line = "soak skipped: no mosquitto here (make mosquitto installs it)"
        say(line)
        notes.append(line)
        args.skip_soak = True
    jobs = args.jobs or max(1, min(len(meters), os.cpu_count() or 1))
    searches = {}
    module_totals = None
    broken = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        module_job = None if args.skip_modules else pool.submit(module_ram, snapshot, standin, frozen_binary)
        if not args.skip_soak:
            say("soak: %s, installs %s, %d s per step, %d meter(s) side by side" % (
                ", ".join(meters), ", ".join(i for i, _ in installs), args.seconds, jobs))
            meter_pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
            meter_jobs = {m: meter_pool.submit(soak_meter, m, installs, args) for m in meters}
            for m, job in meter_jobs.items():
                try:
                    searches[m] = job.result()
                except Exception as e:  # the tooling broke, not the firmware
                    broken.append("soak %s: %r" % (m, e))
                    say("soak %s broke: %r" % (m, e))
            meter_pool.shutdown()
        if module_job is not None:
            try:
                ram = module_job.result()
                if ram["untraced"]:
                    notes.append("not imported by the app during the import trace (measured last): "
                                 + ", ".join(ram["untraced"]))
                module_totals = print_module_table(ram)
            except Exception as e:
                broken.append("RAM per module: %r" % e)
                say("RAM per module broke: %r" % e)
    record = os.path.join(BENCH_DIR, "last-run.json")
    with open(record, "w") as f:  # every step's soak() result, for a closer look
        json.dump({"argv": sys.argv, "snapshot": snapshot_text, "searches": searches, "notes": notes + broken},
                  f, indent=1, default=str)
    say("\nevery step's figures: %s" % os.path.relpath(record, ROOT))
    print_summary(meters, searches, module_totals, notes + broken, args, time.monotonic() - t_start,
                  snapshot_text)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
