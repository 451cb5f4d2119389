# Reading.as_dict(): a decoded Reading as a plain dict in the canonical schema, for PC tools and tests.
# Apart from render.py so that a board, which sends the exact JSON text instead, never loads its bytecode.
from hanport import reading as R
from hanport.render import cosem_time, item_value, number, obis_text


def reading_dict(rd):
    """The canonical dict of a Reading (see reading_json for the exact text)."""
    d = {}
    for t in range(R.N_TEXT):
        i = rd.text_item[t]
        if i >= 0:
            d[R.TEXT_FIELDS[t]] = R.pool_text(rd.pool, rd.item_value[i], rd.item_len[i])
    if rd.manufacturer is not None:
        d["meter_manufacturer"] = rd.manufacturer
    if rd.list_number:
        d["list"] = rd.list_number
    t = cosem_time(rd.pool, rd.time_offset)
    if t is not None:
        d["meter_time"] = t
    for f in range(R.N_NUMERIC):
        if rd.field_present[f]:
            d[R.NUMERIC_FIELDS[f]] = number(rd.field_value[f], rd.field_exp[f])
    obis = {}
    for i in range(rd.n_items):
        if rd.item_tagged[i]:
            obis[obis_text(rd.item_obis, 6 * i)] = item_value(rd, i)
    d["obis"] = obis
    return d
