# Home Assistant discovery messages (hanport.hass), loaded by mqtt.py to send them and unloaded after:
# only hass beside it in the heap (no connection code), one retained message at a time.


def send_discovery(mq):
    """Home Assistant discovery (hanport.hass) for the fields the meter has sent and the accounting,
    retained. mq.disc_sending is True while a message is being published (an out-of-heap error then
    leaves half a message on the wire: mqtt.py drops the connection)."""
    from hanport import hass

    app = mq.app
    lt = app.latest
    dev = hass.device_block(mq.node_id, mq.device_name, app.version, lt.manufacturer, lt.meter_type, lt.meter_id)
    base = mq.cfg["base_topic"]
    prefix = mq.cfg["discovery_prefix"]
    pub = mq.client.publish
    mask = hass.announced_mask(lt.mask, lt.manufacturer, lt.meter_id)
    for f in hass.fields_in_mask(mask):
        t = hass.config_topic(prefix, mq.node_id, f).encode()
        b = hass.config_payload(f, mq.node_id, base, dev, mq.cfg["expire_after_s"]).encode()
        mq.disc_sending = True
        pub(t, b, retain=True)
        mq.disc_sending = False
        mq.discovery_sent += 1
    if app.accounting is not None and hass.accounting_ready(mask):
        for i in range(len(hass.ACCOUNTING_SENSORS)):
            t = hass.accounting_config_topic(prefix, mq.node_id, i).encode()
            b = hass.accounting_config_payload(i, mq.node_id, base, dev).encode()
            mq.disc_sending = True
            pub(t, b, retain=True)
            mq.disc_sending = False
            mq.discovery_sent += 1
