# pytest set-up: the portable library (lib/) and the shared test helpers on the import path.
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (os.path.join(ROOT, "lib"), os.path.join(ROOT, "host_tests")):
    if path not in sys.path:
        sys.path.insert(0, path)
