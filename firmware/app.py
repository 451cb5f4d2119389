# The device application: config, the decoder and the latest reading in one place, and the asyncio
# tasks around them (UART reader, WiFi, MQTT, HTTP, ticker, watchdog), each supervised.
import asyncio
import gc
import time

import mem
import micropython
import web
from log import log, log_exception, uptime_ms
from micropython import const

from hanport import appjson, render

VERSION = "0.1.0"
_QUIET_GAP_MS = const(120)  # the UART line counts as idle (between meter frames) after this long without bytes
_QUIET_MAX_WAIT_MS = const(4000)
_CRASH_LIMIT = const(5)  # a task that crashes this often within _CRASH_WINDOW_MS makes the app unhealthy
_CRASH_WINDOW_MS = const(60000)
_MIN_FREE_HEAP = const(4096)  # below this after a collection the app is unhealthy (the watchdog resets it)
FRAME_BYTES = 2048  # HDLC: the frame format's 11-bit length field bounds a frame to 2047 bytes
RAW_SLOTS = 4  # raw frames kept for GET /raw (each slot 640 bytes)
STATE_BYTES = 1536  # the latest reading's JSON is made here: the longest of host_tests/vectors is 1000 bytes
# (a Kamstrup list 3); a longer one is made in a block of its own (render.reading_json)


_ACC_TEXT_MS = const(2000)  # the accounting JSON is made again at most this often (or after an hourly list)
_SAVE_WAITS_MAX = const(20)  # ticks (s) a due accounting save waits for large HTTP answers at most
_SAVE_RETRY_S = const(30)  # a save that was not due yet or failed is tried again after this long
# parts of hanport.accounting loaded only while they work (hourly list, outputs, flash): let go after
ACC_PARTS = ("hanport.accounting_hourly", "hanport.accounting_views", "hanport.accounting_json",
             "hanport.accounting_store", "hanport.accounting_capacity", "hanport.accounting_history",
             "hanport.localtime")


class AccountingHook:
    """hanport.accounting (hour/day/month energy, capacity tariff) in the app: its failures are counted
    here and never stop the UART reader; its rarely used parts leave the heap after each use. The
    outputs change with every reading only through the running hour: the rest (accounting_views'
    summary, accounting_json's template) is made once per hourly list or local day, the live values
    fill it in. Its state is set by startup.build (boot-time code: it leaves the heap after boot)."""

    def _failed(self, e):
        self.errors += 1
        self.last_error = repr(e)

    def release(self):
        """Let go of the accounting parts a use loaded (ACC_PARTS)."""
        for name in ACC_PARTS:
            mem.unload(name)

    def update(self, rd, now_ms):
        try:
            if rd.list_number == 3:  # the hourly list's modules (~6 KB) load next: the garbage goes
                self.drop()  # first, and the summary with its JSON (made again after the list) with it
                gc.collect()
            self.acc.update(rd, ticks_ms=now_ms, save=False)  # saved by tick(), a moment later
        except Exception as e:  # another module's bug must not take the reader down
            self._failed(e)
        if rd.list_number == 3:  # (its summary and JSON went before it: drop)
            self.hour_due = True
            self.release()

    def tick(self, now_ms):
        """Once a second: the accounting's clock, and its save when due (an hourly list changed the
        history), with accounting_hourly gone from the heap and no large HTTP answer being sent; else
        a new summary (after an hourly list or on a new day), before an answer needs it."""
        try:
            t = self.acc.tick(now_ms)
            if self.acc.dirty > 1:
                self.save_waits += 1
                if self.save_waits > 0 and (self.save_waits > _SAVE_WAITS_MAX
                                            or not (self.busy is not None and self.busy())):
                    self.save_waits = -_SAVE_RETRY_S  # (not due yet, or the flash failed: not every second)
                    if self.acc.save_due(t):
                        self.save_waits = 0
                    self.release()
            elif self.slow_waits > 0:
                self.slow_waits -= 1
            elif not self.ready() and not (self.busy is not None and self.busy()):
                self.slow_waits = _SAVE_RETRY_S  # (again after this long if it fails)
                self._slow()  # made here, with no answer's modules in the heap beside it
                self.slow_waits = 0
        except Exception as e:
            self._failed(e)

    def _slow(self):
        """The summary (made anew after an hourly list or on a new local day, see ready()) in two
        steps, each with its own modules, never both at once: accounting_views and the parts it uses
        (~6 KB) make the summary and leave, then accounting_json (~4 KB) makes its JSON template."""
        if not self.ready():
            self.slow = None
            try:
                s = self.acc.summary()
                import hanport.accounting_views as views

                nh = self.acc.now_hour()
                until = views.next_day_hour(nh)
                self.counter_names = views.COUNTER_NAMES
                views = None
                self.release()
                import hanport.accounting_json as aj

                self.template = aj.json_template(s)
                self.live_keys = aj.LIVE_KEYS
                self.slow = s
                self.slow_hour = nh
                self.slow_until = until
            finally:
                views = aj = None
                self.release()
        return self.slow

    def drop(self):
        """Let the summary and its JSON go (made again when next asked for): heap for a settings check."""
        self.text = self.slow = self.template = None

    def ready(self):
        """True while json() needs no summary made: one is at hand, made in this local day with no
        hourly list since. Only those change what it holds (the history; today, this month and the
        headroom bases): the running hour's values are filled in live (Accounting.live_json), so a
        new hour needs no new summary (~9 KB of modules for a moment), a new day does."""
        if self.slow is None:
            return False
        nh = self.acc.now_hour()
        if nh is None or self.slow_hour is None:
            return nh is None and self.slow_hour is None
        return self.slow_hour <= nh < self.slow_until

    def prepare(self):
        """A new summary made now if one is due (by a caller with no module of its own loaded); failures
        are counted, and the outputs then leave the accounting out until it is made."""
        if not self.ready():
            try:
                self._slow()
            except Exception as e:
                self._failed(e)

    def json(self, alone=False):
        """The accounting object for /data.json and <base>/accounting (accounting_json.accounting_json)
        as text (ASCII), made at most every _ACC_TEXT_MS; None if the accounting failed (counted) or while
        a new summary is not made yet. The summary (~9 KB of modules for a moment) is made
        only by a caller with no module of its own loaded: `alone`, or while no large work is on."""
        now = time.ticks_ms()
        if self.text is not None and time.ticks_diff(now, self.text_ms) < _ACC_TEXT_MS:
            return self.text
        if not self.ready() and not alone and self.busy is not None and self.busy():
            return self.text  # (a moment older) the ticker or the next /data.json makes it
        try:
            self._slow()
            self.text = self.acc.live_json(*self.template)  # (ASCII: sent and published as it is, no copy)
            self.text_ms = now
        except MemoryError as e:  # the heap short for a moment (the text is one block of ~600 bytes): the
            self._failed(e)  # last one made, a moment older, until the next try (made in this hour and day)
            if not self.ready():
                self.text = None
        except Exception as e:
            self.text = None
            self._failed(e)
        return self.text

    def summary(self):
        """Accounting.summary() now: the summary with the running hour's values (written into the one
        kept: no copy, whose live values nobody reads as of another moment)."""
        s = self._slow()
        v = self.acc.live_values(s["headroom_base_wh"], s["next_step_base_wh"])
        for i in range(len(v)):
            s[self.live_keys[i]] = v[i]
        return s

    def save(self):
        """Write the accounting to flash now (before a planned restart); False if it failed."""
        try:
            return self.acc.save()
        except Exception as e:
            self._failed(e)
            return False
        finally:
            self.release()

    def prometheus(self, out):
        """The accounting's Prometheus lines (hanport.prom): a generator that appends one family at a
        time to out (the caller sends and clears it at each step)."""
        if not self.ready():
            return  # the summary could not be made before the answer (counted): no family, never a stale one
        try:
            s = self.summary()
            from hanport import prom

            yield from prom.accounting_families(out, s, self.acc.counts, self.counter_names)
        except MemoryError:  # (the caller waits for heap and makes them again: promtext.sent_families)
            raise
        except Exception as e:  # counted; the meter's and the app's families are sent all the same
            self._failed(e)
        finally:
            self.release()


class FlashStore:
    """The accounting's hanport.persist.Store (two copies with a CRC on flash), with persist loaded only
    while it reads or writes: between saves the heap holds just the store's small state."""

    def __init__(self, base):
        self.base = base
        self.known = None  # persist.Store.state() after the last load or save

    def _use(self, payload, length, saving):
        from hanport import persist

        st = persist.Store(self.base, known=self.known)
        try:
            return st.save(payload, length) if saving else st.load()
        finally:
            try:
                self.known = st.state()
            finally:  # (also when the heap ran out just now: the module leaves all the same)
                st = persist = None
                mem.unload("hanport.persist")

    def load(self):
        return self._use(None, None, False)

    def save(self, payload, length=None):
        return self._use(payload, length, True)


class App:
    # an update over the network (version.py sets it at boot): [version running, fallback, why the last one
    # was rolled back, its folder in v/, the deadline (ticks_ms) of a version on trial or None]; None: none
    firmware = None

    def __init__(self, config_path="config.json", frame=None, raw=None, state=None):
        """frame, state: preallocated buffers for the framer and the latest reading's JSON (main.py
        makes them first, while the heap is contiguous); raw: one for the raw ring (uart.raw_log).
        The app's parts and state are set up by startup.build (boot-only code, unloaded after)."""
        import startup

        startup.build(self, config_path, frame, raw, state)
        startup = None
        mem.unload("startup")

    def answer_busy(self):
        """True while a large HTTP answer is being sent with the modules it loaded: work that would
        load more (the accounting JSON, discovery) waits or reuses what it has, so they do not add up."""
        return self.turn.locked()

    def _route(self, req):
        return web.route(self, req)

    async def update(self, req, sock, data, size):
        # POST /firmware/update (httpd.Http.stream): update.py, loaded for it only, streams the bundle to flash
        return await __import__("update").route(self, req, sock, data, size)

    def _light(self, path):
        # /data.json is small, unless the accounting's hourly summary is to be made for it (~9 KB of
        # modules at once): then it takes its turn with the large answers, so they do not add up
        return path in web.LIGHT and (self.accounting is None or self.accounting.ready())

    # --- the one place readings land ---
    def on_reading(self, rd):
        now = time.ticks_ms()
        if self.latest.update(rd, now):
            self.mqtt.discovery_due = True
        self.power_log.add(now, rd)
        self.seq += 1
        if self.accounting is not None:
            self.accounting.update(rd, now)  # (its failures are counted in the hook)
        try:
            head = '"seq":%d' % self.seq
            if self.net.time_synced():  # the reader's own clock, once NTP has set it (appjson.state_json)
                head += ',"received":"%s"' % appjson.utc_iso(time.gmtime())
            n = render.reading_json_into(rd, self.state_buf, head)  # no large block per reading
            state = memoryview(self.state_buf)[:n] if n >= 0 else render.reading_json(rd, head).encode()
        except MemoryError:  # heap short for a moment: this state message is lost (counted), reading goes on
            self.state_errors += 1
            return
        if self.unpublished:
            self.superseded += 1
        self.state = state
        self.state_ms = now
        self.unpublished = True
        if self.led is not None:
            self.led.value(not self.cfg["led"]["active_low"])
        self.mqtt_event.set()

    def reading_age_ms(self):
        if self.state is None:
            return None
        return time.ticks_diff(time.ticks_ms(), self.state_ms)

    async def wait_quiet(self):
        """Return in the idle gap after a meter frame, so a blocking call (MQTT connect, NTP) does not
        overlap incoming bytes; gives up waiting after _QUIET_MAX_WAIT_MS (the UART rxbuf holds them)."""
        start = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), self.uart.last_rx_ms) < _QUIET_GAP_MS:
            if time.ticks_diff(time.ticks_ms(), start) > _QUIET_MAX_WAIT_MS:
                return
            await asyncio.sleep_ms(20)

    # --- outputs ---
    def data_json(self):
        """/data.json in pieces (appjson.data_json), made while they are sent: no copy of the state
        message, and the latest values one field at a time."""
        acc = self.accounting.json(True) if self.accounting is not None else None  # (holds the turn if needed)
        return appjson.data_json(self.state, self.reading_age_ms(), acc, self.latest, time.ticks_ms())

    # --- settings ---
    # --- tasks ---
    async def _supervise(self, name, fn):
        """Run a task forever; a crash is logged, counted and the task restarted after a pause."""
        recent = []
        while True:
            try:
                await fn()
                return
            except Exception as e:  # a bug: keep the other tasks going, let the watchdog judge
                try:
                    now = time.ticks_ms()
                    self.crashes[name] = self.crashes.get(name, 0) + 1
                    recent = [t for t in recent if time.ticks_diff(now, t) < _CRASH_WINDOW_MS] + [now]
                    if len(recent) >= _CRASH_LIMIT:
                        self.healthy = False
                        self.unhealthy_reason = "task %s keeps crashing" % name
                    self.crash_log = (self.crash_log + ["%s: %r" % (name, e)])[-5:]
                    log("app", "task %s crashed: %r" % (name, e))
                    log_exception("app", e)
                except MemoryError:  # out of heap while noting it: the task restarts all the same
                    pass
                await asyncio.sleep_ms(1000)

    def _unhandled(self, loop, context):
        # (raising in here would end asyncio.run and with it the app: out of heap, the line is lost)
        try:
            e = context.get("exception")
            log("app", "unhandled in a task: %r" % (e,))
            if e is not None:
                log_exception("app", e)
        except MemoryError:
            pass

    async def _ticker(self):
        """1 s heartbeat: feeds the watchdog while the app is healthy, wakes the MQTT task (keepalive,
        incoming), collects garbage every 10 s."""
        n = 0
        last = time.ticks_ms()
        while True:
            await asyncio.sleep_ms(1000)
            n += 1
            now = time.ticks_ms()
            late = time.ticks_diff(now, last) - 1000  # the loop's longest stall shows as a late tick
            last = now
            if late > self.stall_max_ms:
                self.stall_max_ms = late
            if self.wdt is not None and self.healthy:
                self.wdt.feed()
                self.wdt_feeds += 1
            self.mqtt_event.set()
            uptime_ms()  # keeps the uptime clock across ticks_ms wraps
            self.uart.tick(now)
            if self.accounting is not None:
                self.accounting.tick(now)  # the accounting's clock keeps going across long silences
            if self.firmware and self.firmware[4] is not None and n % 5 == 0:  # an update on trial: healthy
                try:  # yet, or crashing, or late (version.check)?
                    import version

                    version.check(self, now)
                except MemoryError:  # (the heap short for a moment: next time)
                    pass
                version = None
                mem.unload("version")
            if self.led is not None and self.state is not None:
                self.led.value(self.cfg["led"]["active_low"])
            if n % 10 == 0:
                self.collect()
                if self.heap_free_after_gc < _MIN_FREE_HEAP:
                    self.healthy = False
                    self.unhealthy_reason = "free heap %d bytes" % self.heap_free_after_gc

    def collect(self):
        gc.collect()
        self.heap_used_after_gc = gc.mem_alloc()
        self.heap_free_after_gc = gc.mem_free()

    async def run(self):
        _start(self)  # (not here: this coroutine's frame lives on, and would keep the module)
        self.collect()
        log("app", "running; heap in use after boot %d bytes, free %d" % (self.heap_used_after_gc,
                                                                          self.heap_free_after_gc))
        micropython.qstr_info()  # the names interned (never freed): a new qstr pool would take ~8 KB at once
        while True:
            await asyncio.sleep_ms(60000)


def _start(app):
    # boot-time code again (startup.start: logs, the tasks, the HTTP server), let go after; loaded into
    # a collected heap (with the build's garbage in the way its bytecode did not fit below 111 KB)
    gc.collect()
    import startup

    startup.start(app)
    startup = None
    mem.unload("startup")


def main(config_path="config.json", frame=None, raw=None, state=None):
    try:
        asyncio.run(_main(config_path, frame, raw, state))
    except Exception as e:  # a crash at boot: a version on trial goes back (version.py), else as before
        __import__("version").failed(e)
        raise
    finally:
        asyncio.new_event_loop()


async def _main(config_path, frame, raw, state):
    # The app is built inside the event loop, not before it: the loop's frames, which live as long as
    # the app, are then made before the boot's deep calls (settings validation, the decoder, warm_up),
    # never on top of what those left on the C stack. A pointer left there in such a long-lived frame
    # is scanned by every collection (MicroPython scans the stack conservatively) and kept a module
    # the boot had unloaded (~3 KB, config.py) in the heap for good on some builds.
    app = App(config_path, frame, raw, state)
    await app.run()
