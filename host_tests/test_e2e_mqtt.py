# End to end with real parts: mosquitto, firmware/ under the MicroPython unix port, the meter
# simulator on its UART, a paho client: discovery, state per frame, will, broker restart.
import json
import os
import shutil
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import run_host  # noqa: E402

from hanport import HanReader  # noqa: E402
from hanport.render import reading_json  # noqa: E402

mqtt = pytest.importorskip("paho.mqtt.client")
pytestmark = pytest.mark.skipif(run_host.mosquitto_binary() is None, reason="mosquitto not installed (make mosquitto)")


class Sub:
    """Collects every message on some topics (thread-safe)."""

    def __init__(self, port, topics=("#",)):
        self.msgs = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-%d" % time.monotonic_ns())
        self.c.on_message = self._on
        self.c.on_connect = lambda c, u, f, rc, p=None: [c.subscribe(t) for t in topics]
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on(self, c, u, m):
        with self.lock:
            self.msgs.append((m.topic, m.payload, m.retain, time.monotonic()))

    def topic(self, t):
        with self.lock:
            return [m for m in self.msgs if m[0] == t]

    def wait(self, pred, timeout_s=20.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if pred(self.msgs):
                    return True
            time.sleep(0.05)
        return False

    def publish(self, topic, payload, retain=False):
        self.c.publish(topic, payload, retain=retain).wait_for_publish(5)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def _states(sub):
    return [json.loads(m[1]) for m in sub.topic("han/state")]


def _canonical(frame_hex):
    r = HanReader()
    out = [reading_json(rd) for rd in r.feed(bytes.fromhex(frame_hex))]
    assert len(out) == 1
    return json.loads(out[0])


def _this_hour_at_5_past():
    """The meter clock's start: 5 past the current hour, Oslo time (within an hour of the wall clock, and the
    20x clock crosses no hour in the tests' minute or two; "now" did, at 5 to the hour: a list 3 came)."""
    import datetime

    from simulate import OSLO

    return datetime.datetime.now(OSLO).replace(minute=5, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture
def rig(tmp_path):
    r = run_host.Rig(str(tmp_path), meter="kaifa", speed=20, overrides={"mqtt.expire_after_s": 90},
                     sim_args=["--start", _this_hour_at_5_past()])
    try:
        r.start()
        yield r
    finally:
        r.close()


def test_states_match_frames_and_discovery_matches_meter(rig):
    sub = Sub(rig.mqtt_port)
    try:
        assert sub.wait(lambda m: len([x for x in m if x[0] == "han/state"]) >= 12, 30), rig.log_tail()
        states = _states(sub)
        sent = {}
        for f in rig.frames_sent():
            c = _canonical(f["hex"])
            sent.setdefault(c.get("meter_time"), []).append(c)
        matched = 0
        for s in states:
            assert s["seq"] >= 1 and "received" in s
            body = dict(s)
            del body["seq"]
            del body["received"]
            assert body in sent.get(body.get("meter_time"), []), body
            matched += 1
        assert matched == len(states)
        lists = set(s["list"] for s in states)
        assert lists == {1, 2}  # Kaifa: list 1 every 2 s, list 2 every 10 s (no hour crossed here)
        seqs = [s["seq"] for s in states]
        assert seqs == sorted(seqs)
        # discovery: one retained config per field the meter sent, with the meter as the device
        late = Sub(rig.mqtt_port, ("homeassistant/#", "han/status"))  # a late subscriber sees retained ones
        assert late.wait(lambda m: len(m) >= 11, 10)  # 10 fields of a Kaifa list 2 + han/status
        late.close()
        cfgs = [m for m in late.msgs if m[0].startswith("homeassistant/sensor/")]
        first = {}  # each topic's first message is the broker's stored copy: retained (one published while
        for m in cfgs:  # subscribed, a discovery resent meanwhile, arrives with retain unset: MQTT 3.1.1)
            first.setdefault(m[0], m[2])
        assert cfgs and all(first.values()), first
        by_field = {}
        for topic, payload, _, _ in cfgs:
            c = json.loads(payload)
            by_field[topic.split("/")[3]] = c
        assert set(by_field) >= {"active_import_w", "current_l2_a", "voltage_l3_v"}
        c = by_field["active_import_w"]
        assert c["device_class"] == "power" and c["unit_of_measurement"] == "W"
        assert c["state_topic"] == "han/state" and c["availability_topic"] == "han/status"
        assert c["expire_after"] == 90
        assert c["device"]["manufacturer"] == "Kaifa" and c["device"]["model"] == "MA304H3E"
        assert c["unique_id"].endswith("_active_import_w")
        st = late.topic("han/status")
        assert st and st[-1][1] == b"online" and st[-1][2] is True
    finally:
        sub.close()


def test_discovery_resent_when_home_assistant_comes_online(rig):
    sub = Sub(rig.mqtt_port)
    try:
        assert sub.wait(lambda m: any(x[0].startswith("homeassistant/sensor/") for x in m), 20), rig.log_tail()
        time.sleep(1.5)

        def counts(msgs):
            n = {}
            for x in msgs:
                if x[0].startswith("homeassistant/sensor/"):
                    n[x[0]] = n.get(x[0], 0) + 1
            return n

        before = counts(sub.msgs)
        sub.publish("homeassistant/status", b"online")
        # every config seen so far comes again (a discovery of newly seen fields may also come meanwhile)
        assert sub.wait(lambda m: all(counts(m).get(t, 0) > k for t, k in before.items()), 10), rig.log_tail()
        assert rig.status()["mqtt"]["ha_online_seen"] >= 1
    finally:
        sub.close()


def test_broker_restart_resumes_publishing_and_decoding_goes_on(rig):
    sub = Sub(rig.mqtt_port, ("han/state",))
    assert sub.wait(lambda m: len(m) >= 3, 20), rig.log_tail()
    sub.close()
    rig.stop_broker()
    readings_at_stop = rig.status()["readings"]
    time.sleep(4)
    st = rig.status()
    assert st["readings"] > readings_at_stop  # decoding never waits for the broker
    assert st["mqtt"]["state"] in ("backoff", "connecting")
    assert st["mqtt"]["last_error"]
    assert st["mqtt"]["disconnects"] + st["mqtt"]["connect_failures"] >= 1
    rig.start_broker()
    sub = Sub(rig.mqtt_port, ("han/state", "han/status"))
    try:
        assert sub.wait(lambda m: len([x for x in m if x[0] == "han/state"]) >= 3, 40), rig.log_tail()
        st = rig.status()
        assert st["mqtt"]["state"] == "connected" and st["mqtt"]["connects"] >= 2
        assert sub.topic("han/status")[-1][1] == b"online"
        assert st["mqtt"]["superseded"] > 0  # while away only the latest state was kept
    finally:
        sub.close()


def test_last_will_says_offline_when_the_reader_dies(rig):
    sub = Sub(rig.mqtt_port, ("han/status",))
    try:
        assert sub.wait(lambda m: m and m[-1][1] == b"online", 20)
        rig.fw.kill()  # no clean disconnect: the broker publishes the will after the keepalive
        rig.fw.wait(5)
        # the broker notices the dropped TCP connection at once (socket closed by the kernel)
        assert sub.wait(lambda m: m[-1][1] == b"offline", 60)
    finally:
        sub.close()


def test_username_password_broker(tmp_path):
    r = run_host.Rig(str(tmp_path), meter="aidon", speed=20,
                     overrides={"mqtt.user": "han", "mqtt.password": "broker-secret-9"})
    try:
        fetch = run_host.fetch_umqtt
        fetch()
        r.broker = run_host.start_mosquitto(r.mqtt_port, str(tmp_path), {"han": "broker-secret-9", "ha": "ha-pw"},
                                            os.path.join(str(tmp_path), "mosquitto.log"))
        r.sim = run_host.start_simulator(r.sim_port, r.meter, r.speed, (), r.sim_log)
        r.start_firmware()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ha")
        got = []
        c.username_pw_set("ha", "ha-pw")
        c.on_message = lambda cl, u, m: got.append(m.topic)
        c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe("han/#")
        c.connect("127.0.0.1", r.mqtt_port)
        c.loop_start()
        deadline = time.monotonic() + 20
        while "han/state" not in got and time.monotonic() < deadline:
            time.sleep(0.1)
        c.loop_stop()
        c.disconnect()
        assert "han/state" in got, r.log_tail()
        st = r.status()
        assert st["config"]["mqtt"]["password"] == "********"
        assert "broker-secret-9" not in json.dumps(st)
        with open(r.fw_log, "rb") as f:
            assert b"broker-secret-9" not in f.read()
    finally:
        r.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls_to_the_broker(tmp_path):
    d = str(tmp_path)
    tls_port = run_host.free_port()
    r = run_host.Rig(d, meter="kamstrup", speed=40, overrides={"mqtt.tls": True, "mqtt.port": tls_port})
    try:
        r.start(tls_port=tls_port)
        sub = Sub(r.mqtt_port, ("han/state",))  # the test listens on the plain listener
        try:
            assert sub.wait(lambda m: len(m) >= 2, 20), r.log_tail()
        finally:
            sub.close()
        st = r.status()
        assert st["mqtt"]["tls"] is True and st["mqtt"]["state"] == "connected"
    finally:
        r.close()
