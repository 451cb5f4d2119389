# The dashboard in a real browser (Debian's chromium, headless, through selenium and chromedriver)
# against the firmware under the 32-bit stand-in at 112 KB, fed by a Kamstrup simulator at 360x (an
# hour every 10 s): live values change without a reload, the numbers shown are the JSON endpoints',
# no console errors; desktop and phone screenshots are saved in build/screenshots/ (look at them).
import json
import os
import signal
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import run_host  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SHOTS = os.path.join(ROOT, "build", "screenshots")
DESKTOP = (1280, 900)
PHONE = (390, 844)  # CSS pixels of a common phone, device pixel ratio 2



def _browser(size, mobile=False):
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip("no chromium/chromedriver here (make chromium: tools/apt_install.sh)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
              "--window-size=%d,%d" % size):
        opts.add_argument(a)
    if mobile:
        opts.add_experimental_option("mobileEmulation", {"deviceMetrics": {
            "width": size[0], "height": size[1], "pixelRatio": 2.0, "mobile": True, "touch": True}})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    binary = run_host.standin_binary()  # the target: the 32-bit stand-in of a stock ESP32 at its heap
    if binary is None:
        pytest.skip("no 32-bit ESP32 stand-in here (../shared/tools/esp32like/micropython-esp32stock)")
    r = run_host.Rig(str(tmp_path_factory.mktemp("browser")), meter="kamstrup", speed=360, mqtt=True,
                     interpreter=binary, heap=run_host.standin_test_heap(binary))
    try:
        r.start()
        r.wait_hourly_lists(4)  # hourly lists: hours, days and the capacity known
        yield r
    finally:
        if r.sim is not None:
            os.kill(r.sim.pid, signal.SIGCONT)
        r.close()


@pytest.fixture(scope="module")
def page(rig):
    d = _browser(DESKTOP)
    try:
        d.set_page_load_timeout(30)
        d.get("http://127.0.0.1:%d/" % rig.http_port)
        yield d
    finally:
        d.quit()


def _value(d, element_id):
    return d.execute_script("const e = document.getElementById(arguments[0]); return e && e.dataset.value;",
                            element_id)


def _wait(what, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = what()
        if v:
            return v
        time.sleep(0.2)
    return what()


def _severe(d):
    return [e for e in d.get_log("browser") if e["level"] == "SEVERE"]


def _bars(d, chart_id, cls="bi"):
    return d.execute_script(
        "return [...document.querySelectorAll('#' + arguments[0] + ' rect.' + arguments[1])]"
        ".map(r => [Number(r.dataset.t), Number(r.dataset.value), r.classList.contains('est')]);", chart_id, cls)


def _refresh_all(d):
    # the page polls each endpoint again when it becomes visible: its way to catch up at once
    d.execute_script("document.dispatchEvent(new Event('visibilitychange'));")


def test_live_values_change_without_a_reload(page):
    assert _wait(lambda: _value(page, "power-import")), "no live power shown"
    page.execute_script("window.__sameLoad = true;")
    first = _value(page, "power-import"), _value(page, "reading-age")
    assert _wait(lambda: (_value(page, "power-import"), _value(page, "reading-age")) != first), \
        "the live values did not change"
    assert page.execute_script("return window.__sameLoad === true;")  # (no reload in between)
    assert _severe(page) == []


def test_numbers_shown_equal_the_json_endpoints(rig, page):
    os.kill(rig.sim.pid, signal.SIGSTOP)  # the meter pauses: the values hold still while compared
    try:
        time.sleep(1.5)  # (a frame on its way is decoded)
        data = json.loads(rig.http("/data.json")[2])
        hist = json.loads(rig.http("/history.json")[2])
        status = rig.status()
        _refresh_all(page)
        latest = data["latest"]
        assert _wait(lambda: _value(page, "power-import") == str(latest["active_import_w"]["value"]), 10)
        shown = {  # element id -> the JSON value it shows (data-value: the number as JSON gave it)
            "power-import": latest["active_import_w"]["value"],
            "power-export": latest["active_export_w"]["value"],
            "energy-import": latest["active_import_kwh"]["value"],
            "energy-export": latest["active_export_kwh"]["value"],
        }
        for p in (1, 2, 3):
            shown["voltage-l%d" % p] = latest["voltage_l%d_v" % p]["value"]
            shown["current-l%d" % p] = latest["current_l%d_a" % p]["value"]
        acc = data["accounting"]
        for element_id, key in (("capacity-value", "month_capacity_kw"), ("capacity-step", "capacity_step"),
                                ("today-import", "today_import_kwh"), ("month-import", "month_import_kwh"),
                                ("today-export", "today_export_kwh"), ("month-export", "month_export_kwh"),
                                ("hour-import", "current_hour_import_kwh_est"),
                                ("capacity-headroom", "capacity_headroom_kwh")):
            shown[element_id] = acc[key]
        for element_id, want in shown.items():
            got = _value(page, element_id)
            assert got is not None and float(got) == want, (element_id, got, want)
        assert _wait(lambda: _value(page, "status-uptime"), 5)

        # history: every bar is the hour, day or month the JSON has, with its energy
        hours = {r[0]: r[1] for r in hist["hours"]}
        if hist["running_hour"]:
            hours[hist["running_hour"]["start"]] = hist["running_hour"]["import_wh"]
        bars = _wait(lambda: _bars(page, "chart-hours"), 5)
        assert bars and len(bars) <= 24
        assert {(t, wh) for t, wh, _ in bars} == {(t, wh) for t, wh in hours.items() if t >= bars[0][0]}
        assert [t for t, _, est in bars if est] == ([hist["running_hour"]["start"]] if hist["running_hour"] else [])
        days = _bars(page, "chart-days")
        assert [(t, wh) for t, wh, _ in days] == [(r[0], r[1]) for r in hist["days"][-30:]]
        months = _bars(page, "chart-months")
        assert [wh for _, wh, _ in months] == [r[2] for r in hist["months"][-12:]]
        top = page.execute_script(
            "return [...document.querySelectorAll('#capacity-top td[data-value]')].map(t => Number(t.dataset.value));")
        assert top == [r[1] for r in hist["capacity"]["top_days"]] and top
        # the status card and the meter's identity
        assert page.find_element("id", "status-mqtt").text == "connected"
        assert page.find_element("id", "status-han").text.startswith("OK")
        assert status["meter"]["meter_id"] in page.find_element("id", "meter-info").text
        assert _severe(page) == []
    finally:
        os.kill(rig.sim.pid, signal.SIGCONT)


def test_power_plot_of_the_last_hour(rig, page):
    # the minute means start once the firmware has run a whole minute (device time, not the meter's)
    assert _wait(lambda: any(v is not None for v in json.loads(rig.http("/power.json")[2])["import_w"]), 75)
    _refresh_all(page)
    area = _wait(lambda: page.execute_script(  # the import area under the minute means
        "const p = document.querySelector('#chart-power path.ai'); return p && p.getAttribute('d');"), 10)
    assert area and area.startswith("M")
    assert page.execute_script("return document.querySelector('#chart-power svg circle') != null;")  # live value


def _full_page_shot(d, size, mobile, path):
    # the whole page: the viewport made as tall as the page (DevTools device metrics), then saved
    for _ in range(2):  # (the charts redraw to the new size, which may change the height once more)
        height = d.execute_script("return document.documentElement.scrollHeight;")
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": max(size[1], height), "deviceScaleFactor": 2 if mobile else 1,
            "mobile": mobile})
        time.sleep(1.0)
    d.save_screenshot(path)


def test_screenshots_desktop_and_phone(rig, page):
    os.makedirs(SHOTS, exist_ok=True)
    _full_page_shot(page, DESKTOP, False, os.path.join(SHOTS, "dashboard-desktop.png"))
    phone = _browser(PHONE, mobile=True)
    try:
        phone.get("http://127.0.0.1:%d/" % rig.http_port)
        assert _wait(lambda: _value(phone, "power-import") and _bars(phone, "chart-days"))
        # a phone shows the page in one column, no wider than the screen
        assert phone.execute_script("return document.documentElement.scrollWidth;") <= PHONE[0]
        _full_page_shot(phone, PHONE, True, os.path.join(SHOTS, "dashboard-phone.png"))
        phone.get("http://127.0.0.1:%d/setup" % rig.http_port)  # the settings page leads back
        assert phone.find_element("css selector", 'a[href="/"]').text == "Dashboard"
        phone.save_screenshot(os.path.join(SHOTS, "settings-phone.png"))
        assert _severe(phone) == []
    finally:
        phone.quit()
    for name in ("dashboard-desktop.png", "dashboard-phone.png", "settings-phone.png"):
        assert os.path.getsize(os.path.join(SHOTS, name)) > 10000, name
