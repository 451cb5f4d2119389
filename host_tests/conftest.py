# pytest set-up: the portable library (lib/) and the shared test helpers on the import path.
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (os.path.join(ROOT, "lib"), os.path.join(ROOT, "host_tests")):
    if path not in sys.path:
        sys.path.insert(0, path)

# End-to-end tests run the firmware on two boards: the 64-bit MicroPython unix port (PyPI, umqtt.simple
# 1.3.4 from PyPI) and the 32-bit stand-in of a stock ESP32 image (asyncio and umqtt.simple 1.8.0
# frozen; run_host.STANDIN_TEST_HEAP, see there; ../shared/tools/esp32like or HANPORT_MICROPYTHON32), installed
# as `make deploy` installs it. A module opts in with `pytestmark = pytest.mark.usefixtures("board")`.
sys.path.insert(0, os.path.join(ROOT, "tools"))
import pytest  # noqa: E402
import run_host  # noqa: E402

BOARDS = ("unix64", "esp32")


@pytest.fixture(scope="module", params=BOARDS)
def board(request):
    saved = dict(run_host.RIG_DEFAULTS)
    if request.param == "esp32":
        binary = run_host.standin_binary()
        if binary is None:
            pytest.skip("no 32-bit ESP32 stand-in here (../shared/tools/esp32like/micropython-esp32stock, or set "
                        "HANPORT_MICROPYTHON32): the firmware was tested on the 64-bit unix port only")
        run_host.RIG_DEFAULTS.update(interpreter=binary, heap=run_host.standin_test_heap(binary))
    else:
        run_host.RIG_DEFAULTS.update(interpreter=None, heap="512K")
    yield request.param
    run_host.RIG_DEFAULTS.clear()
    run_host.RIG_DEFAULTS.update(saved)
