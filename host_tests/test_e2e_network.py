# WiFi trouble end to end (host network shim told to fail): the station retries with backoff, the
# setup access point comes up as a fallback, MQTT waits, decoding and HTTP go on.
import os
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import run_host  # noqa: E402

pytestmark = [pytest.mark.usefixtures("board")]


def test_wifi_down_fallback_access_point_and_decoding_goes_on(tmp_path):
    rig = run_host.Rig(str(tmp_path), meter="aidon", speed=20, mqtt=True,
                       overrides={"wifi.connect_timeout_s": 5, "ap.fallback_after_s": 1},
                       env_extra={"HAN_SHIM_WIFI": "fail"})
    try:
        rig.start()
        deadline = time.monotonic() + 30
        st = rig.status()
        while time.monotonic() < deadline and not (st["wifi"]["failures"] >= 1 and st["wifi"]["ap"]):
            time.sleep(0.5)
            st = rig.status()
        assert st["wifi"]["failures"] >= 1 and st["wifi"]["state"] in ("down", "connecting")
        assert st["wifi"]["ap"] is True and "unreachable" in st["wifi"]["ap_reason"]
        assert "no connection" in st["wifi"]["last_error"]
        assert st["mqtt"]["state"] == "waiting_network" and st["mqtt"]["connects"] == 0
        assert st["readings"] > 0 and st["healthy"] is True
        assert "host-wifi-secret" not in rig.log_tail(10 ** 6)
    finally:
        rig.close()


def test_names_are_looked_up_without_holding_the_event_loop(tmp_path):
    # the broker's and the NTP server's names go to the firmware's own DNS client (dns.py), never to
    # MicroPython's blocking getaddrinfo: a DNS server that does not answer costs MQTT and NTP their
    # attempts (counted, backed off), not the event loop; once it answers, MQTT connects
    rig = run_host.Rig(str(tmp_path), meter="aidon", speed=20, mqtt=True,
                       overrides={"mqtt.host": "broker.example", "ntp.host": "ntp.example", "mqtt.backoff_max_s": 5})
    rig.dns.silent = True
    try:
        rig.start()
        deadline = time.monotonic() + 30
        st = rig.status()
        while time.monotonic() < deadline and not (st["mqtt"]["connect_failures"] >= 2
                                                   and st["wifi"]["ntp_failures"] >= 1):
            time.sleep(0.5)
            st = rig.status()
        assert st["mqtt"]["connect_failures"] >= 2 and st["mqtt"]["connects"] == 0, st["mqtt"]
        assert "110" in st["mqtt"]["last_error"], st["mqtt"]  # ETIMEDOUT: the look-up gave up after 5 s
        assert st["wifi"]["ntp_failures"] >= 1 and rig.dns.queries >= 3
        assert st["loop_stall_max_ms"] < 1000, st["loop_stall_max_ms"]
        readings = st["readings"]
        rig.dns.names["broker.example"] = "127.0.0.1"
        rig.dns.silent = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and rig.status()["mqtt"]["state"] != "connected":
            time.sleep(0.5)
        st = rig.status()
        assert st["mqtt"]["state"] == "connected" and st["mqtt"]["connects"] == 1, st["mqtt"]
        assert st["readings"] > readings and st["loop_stall_max_ms"] < 1000 and st["healthy"] is True
    finally:
        rig.close()
