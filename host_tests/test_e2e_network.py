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
