# End to end with both umqtt.simple versions the firmware meets: PyPI's 1.3.4 (the 64-bit PyPI
# interpreter, build/umqtt) and the 1.8.0 a stock ESP32 image freezes (the 32-bit stand-in, the app
# installed as `make deploy` installs it). Keepalive with states every 2.5 s (no drops, pings answered),
# TLS, a broker that accepts TCP but never answers (the event loop stays free), broker restart.
import json
import os
import shutil
import socket
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import run_host  # noqa: E402
from test_e2e_mqtt import Sub  # noqa: E402

pytest.importorskip("paho.mqtt.client")
pytestmark = pytest.mark.skipif(run_host.mosquitto_binary() is None, reason="mosquitto not installed (make mosquitto)")

# The stand-in runs at run_host.standin_test_heap(): the firmware does not fit an ESP32's 112 KB yet
# (run_host.ESP32_HEAP is the target).
# two windows of 1.5 x keepalive (where a link whose pings are keyed to sent bytes drops); 600: by hand
KEEPALIVE_WATCH_S = float(os.environ.get("HAN_KEEPALIVE_WATCH_S", "32"))
VARIANTS = ("umqtt134", "umqtt180")


def rig_args(variant):
    """Rig keyword arguments for a variant; skips the stand-in one when the stand-in is absent."""
    if variant == "umqtt134":
        return {"interpreter": run_host.MICROPYTHON, "heap": "512K"}
    binary = run_host.standin_binary()
    if binary is None:
        pytest.skip("no 32-bit ESP32 stand-in (HANPORT_MICROPYTHON32 or ../shared/tools/esp32like/"
                    "micropython-esp32stock): the umqtt.simple 1.8.0 variant needs it")
    return {"interpreter": binary, "heap": run_host.standin_test_heap(binary)}


def check_variant(variant, mq):
    # umqtt 1.8.0 takes connect(clean_session, timeout); 1.3.4 does not
    assert mq["timed_connect"] is (variant == "umqtt180"), mq


def timed_status(rig, timeout_s=5.0):
    t0 = time.monotonic()
    code, _, body = rig.http("/status", timeout_s=timeout_s)
    assert code == 200, (code, body[:300], rig.log_tail(1500))
    st = json.loads(body)
    return st, time.monotonic() - t0


class SilentBroker:
    """Accepts TCP connections on a port and never sends a byte."""

    def __init__(self, port):
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", port))
        self.srv.listen(8)
        self.srv.settimeout(0.2)
        self.conns = []
        self.stopping = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.srv.accept()
            except OSError:
                continue
            self.conns.append(c)

    def close(self):
        self.stopping.set()
        self.t.join(5)
        self.srv.close()
        for c in self.conns:
            c.close()


def test_keepalive_holds_the_connection_while_states_flow(tmp_path):
    # keepalive 10 s (the schema minimum), Aidon list 1 every 2.5 s: the firmware transmits all the
    # time, so only pings keyed to *received* bytes keep the connection alive. Both umqtt versions at
    # once (each its own firmware, broker and meter): the watch is long
    import threading

    outcome = {}

    def run(variant):
        try:
            _watch_keepalive(str(tmp_path / variant), variant)
            outcome[variant] = None
        except BaseException as e:  # (a skip, too: reported below, after the other variant)
            outcome[variant] = e

    threads = [threading.Thread(target=run, args=(v,)) for v in VARIANTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(KEEPALIVE_WATCH_S + 120)
    for v in VARIANTS:
        if outcome.get(v) is not None and not isinstance(outcome[v], pytest.skip.Exception):
            raise outcome[v]
    for v in VARIANTS:
        if v not in outcome:
            raise AssertionError("%s: no result (hung)" % v)
        if outcome[v] is not None:
            raise outcome[v]


def _watch_keepalive(workdir, variant):
    rig = run_host.Rig(workdir, meter="aidon", speed=1, overrides={"mqtt.keepalive_s": 10}, **rig_args(variant))
    sub = None
    try:
        rig.start()
        sub = Sub(rig.mqtt_port, ("han/status", "han/state"))
        assert sub.wait(lambda m: any(x[0] == "han/state" for x in m), 20), rig.log_tail()
        t0 = time.monotonic()
        while time.monotonic() - t0 < KEEPALIVE_WATCH_S:
            time.sleep(5)
            assert rig.fw.poll() is None, rig.log_tail()
            mq = rig.status()["mqtt"]
            assert mq["connects"] == 1 and mq["disconnects"] == 0, (mq, rig.log_tail())
        mq = rig.status()["mqtt"]
        check_variant(variant, mq)
        assert mq["state"] == "connected" and mq["connects"] == 1, mq
        assert mq["connect_failures"] == 0 and mq["disconnects"] == 0, mq
        # a ping every keepalive/2 (5 s) of silence from the broker, each answered
        assert mq["pings"] >= KEEPALIVE_WATCH_S / 7, mq
        assert mq["pongs"] >= mq["pings"] - 1, mq
        status = [m[1] for m in sub.topic("han/status")]
        assert status and status[0] == b"online", status
        assert b"offline" not in status, status
        states = sub.topic("han/state")
        assert len(states) >= KEEPALIVE_WATCH_S / 2.5 * 0.8, len(states)
        gaps = [b[3] - a[3] for a, b in zip(states, states[1:], strict=False)]
        assert max(gaps) < 6, max(gaps)  # no state held back by a reconnect
        print("%s: %.0f s, connects %d, pings %d, pongs %d, states %d, offline %d" % (
            variant, KEEPALIVE_WATCH_S, mq["connects"], mq["pings"], mq["pongs"], len(states),
            status.count(b"offline")))
    finally:
        if sub is not None:
            sub.close()
        rig.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("variant", VARIANTS)
def test_tls_connects_with_both_umqtt_versions(tmp_path, variant):
    d = str(tmp_path)
    tls_port = run_host.free_port()
    # a host name (resolved by the firmware, the numeric address handed to umqtt, the name as SNI)
    r = run_host.Rig(d, meter="kamstrup", speed=40,
                     overrides={"mqtt.tls": True, "mqtt.port": tls_port, "mqtt.host": "localhost",
                                "mqtt.keepalive_s": 10},
                     **rig_args(variant))
    try:
        r.start(tls_port=tls_port)
        sub = Sub(r.mqtt_port, ("han/state", "homeassistant/#"))  # the test listens on the plain listener
        try:
            assert sub.wait(lambda m: len([x for x in m if x[0] == "han/state"]) >= 3, 30), r.log_tail()
            assert sub.wait(lambda m: any(x[0].startswith("homeassistant/sensor/") for x in m), 10), r.log_tail()
        finally:
            sub.close()
        deadline = time.monotonic() + 15  # a PINGREQ after 5 s without input; its answer read over TLS
        while tls_status(r)["mqtt"]["pongs"] < 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        mq = tls_status(r)["mqtt"]
        check_variant(variant, mq)
        assert mq["tls"] is True and mq["state"] == "connected" and mq["connects"] == 1, mq
        assert mq["pings"] >= 1 and mq["pongs"] >= 1 and mq["disconnects"] == 0, mq
    finally:
        r.close()


def tls_status(rig, tries=3):
    """/status, asked again when an answer was cut short: on the stand-in, TLS takes its buffers from the
    112 KB GC heap (a board's mbedTLS uses the system heap), so an answer beside the TLS session may run
    out (cut, counted in http.cut); what this test checks is the MQTT session, not that margin."""
    for i in range(tries):
        try:
            return rig.status()
        except ValueError:
            if i == tries - 1:
                raise
            time.sleep(0.5)


def watch_silent_broker(rig, silent, variant, seconds=8):
    """While `silent` holds the broker's port: MQTT never connects, the event loop is not blocked by a
    connect attempt (the app's own measure, loop_stall_max_ms; HTTP answers at once, or a large one
    after the probe's TLS handshake, which takes its turn with them: at most mqtt.timeout_s, 2 s) and
    decoding goes on."""
    st, _ = timed_status(rig)
    readings0 = st["readings"]
    worst = 0.0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        st, took = timed_status(rig)
        worst = max(worst, took)
        time.sleep(0.2)
    mq = st["mqtt"]
    assert silent.conns, "the firmware never reached the silent broker"
    assert mq["connects"] == 0 and mq["connect_failures"] >= 2, mq
    assert mq["state"] in ("connecting", "backoff") and mq["last_error"], mq
    print("%s: silent broker: %d connect failures, slowest /status %.3f s, heap waits %d, loop stall max %s ms" % (
        variant, mq["connect_failures"], worst, st["http"]["heap_waits"], st["loop_stall_max_ms"]))
    limit = 1.0 + (st["config"]["mqtt"]["timeout_s"] if st["config"]["mqtt"]["tls"] else 0)
    assert worst < limit, "HTTP /status took %.2f s while the broker was silent" % worst
    assert st["readings"] >= readings0 + 5, (readings0, st["readings"])  # decoding goes on
    # no call held the event loop for 1 s (the ticker's lateness): the UART driver's buffer (8 s of a
    # 2400-baud line, uart.rxbuf) never came near full, and every frame decoded
    assert st["loop_stall_max_ms"] < 1000, st["loop_stall_max_ms"]
    assert st["decoder"]["fcs_error"] == 0 and st["decoder"]["hcs_error"] == 0, st["decoder"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_silent_tls_broker_does_not_block_the_event_loop(tmp_path, variant):
    # umqtt 1.3.4 connects without a timeout: the firmware's probe does the TLS handshake and the
    # CONNECT/CONNACK exchange asynchronously first
    rig = run_host.Rig(str(tmp_path), meter="aidon", speed=4, overrides={"mqtt.tls": True}, **rig_args(variant))
    silent = SilentBroker(rig.mqtt_port)
    try:
        rig.sim = run_host.start_simulator(rig.sim_port, rig.meter, rig.speed, (), rig.sim_log)
        rig.start_firmware()
        watch_silent_broker(rig, silent, variant, 10)
    finally:
        silent.close()
        rig.close()


@pytest.mark.parametrize("variant", VARIANTS)
def test_silent_broker_then_real_broker_then_restart(tmp_path, variant):
    # 1. the broker's port accepts TCP and never answers: MQTT stays down, the event loop stays free
    #    (HTTP answers at once, decoding goes on); 2. a real broker appears on that port: connected;
    # 3. that broker restarts: reconnected, publishing resumes
    # (backoff capped at the schema's smallest, 5 s: the broker that appears is found soon)
    rig = run_host.Rig(str(tmp_path), meter="aidon", speed=4, overrides={"mqtt.backoff_max_s": 5},
                       **rig_args(variant))
    silent = SilentBroker(rig.mqtt_port)
    sub = None
    try:
        rig.sim = run_host.start_simulator(rig.sim_port, rig.meter, rig.speed, (), rig.sim_log)
        rig.start_firmware()
        watch_silent_broker(rig, silent, variant)
        silent.close()
        silent = None
        rig.start_broker()
        sub = Sub(rig.mqtt_port, ("han/state", "han/status"))
        assert sub.wait(lambda m: len([x for x in m if x[0] == "han/state"]) >= 3, 40), rig.log_tail()
        mq = rig.status()["mqtt"]
        check_variant(variant, mq)
        assert mq["state"] == "connected" and mq["connects"] == 1, mq
        sub.close()
        sub = None
        rig.stop_broker()
        time.sleep(3)
        assert rig.status()["mqtt"]["state"] in ("connecting", "backoff")
        rig.start_broker()
        sub = Sub(rig.mqtt_port, ("han/state", "han/status"))
        assert sub.wait(lambda m: len([x for x in m if x[0] == "han/state"]) >= 3, 40), rig.log_tail()
        mq = rig.status()["mqtt"]
        assert mq["state"] == "connected" and mq["connects"] == 2, mq
        assert sub.topic("han/status")[-1][1] == b"online"
    finally:
        if sub is not None:
            sub.close()
        if silent is not None:
            silent.close()
        rig.close()
