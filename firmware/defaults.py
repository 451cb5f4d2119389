# The settings' defaults: every key the app reads, with its value when config.json does not set it.
# Apart from config.py (validation) so that a boot can check a cached configuration's shape cheaply.

MIN_TOKEN_LEN = 8  # characters of http.token and http.read_token (when set)

# Defaults for everything; config.json only needs what differs. Units are in the key names.
DEFAULTS = {
    "name": "HAN reader",
    "wifi": {"ssid": "", "password": "", "hostname": "hanreader", "connect_timeout_s": 20, "backoff_max_s": 120,
             "dns": ""},
    "ap": {"ssid": "hanreader-setup", "password": "", "fallback_after_s": 180},
    "uart": {"id": 2, "rx_pin": 16, "baud": 2400, "parity": "auto", "invert": False, "rxbuf": 0,
             "autodetect_trial_s": 25, "raw_log": False},
    "mqtt": {
        "enabled": True, "host": "", "port": 1883, "user": "", "password": "", "tls": False,
        "client_id": "", "node_id": "", "base_topic": "han", "keepalive_s": 60, "timeout_s": 2,
        "backoff_max_s": 60, "discovery": True, "discovery_prefix": "homeassistant", "expire_after_s": 120,
        "accounting_interval_s": 15,
    },
    "http": {"enabled": True, "bind": "0.0.0.0", "port": 80, "token": "", "read_token": "", "max_clients": 4,
             "timeout_s": 5},
    "ntp": {"enabled": True, "host": "pool.ntp.org", "interval_s": 3600},
    "wdt": {"enabled": True, "timeout_ms": 30000},
    "led": {"pin": -1, "active_low": False},
    "accounting": {"enabled": True, "capacity_steps_kw": [2, 5, 10, 15, 20, 25, 50, 75, 100], "top_days": 3},
    "meter": {"protocol": "hdlc", "key": "", "auth_key": ""},
}
