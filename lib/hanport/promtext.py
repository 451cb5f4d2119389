# Prometheus text exposition format 0.0.4, the text itself: a family's TYPE line and samples, label
# escaping. prom.py has the meter's, the decoder's and the accounting's families; firmware/metrics.py the app's.


def escape_label(value):
    """Label value escaping: backslash, double quote and newline."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def family(out, name, kind, samples):
    """Append one metric family: its TYPE line and its samples [(label text, value text)]."""
    out.append("# TYPE %s %s" % (name, kind))
    for labels, value in samples:
        if labels:
            out.append("%s{%s} %s" % (name, labels, value))
        else:
            out.append("%s %s" % (name, value))


def plain_metrics(out, rows):
    """App metrics: rows of (name, kind, value text or [(labels, value text)])."""
    for name, kind, value in rows:
        family(out, name, kind, value if isinstance(value, list) else [("", value)])


def text(lines):
    """The exposition document (newline-terminated)."""
    return "\n".join(lines) + "\n"
