# Prometheus text exposition format 0.0.4, the text itself: a family's HELP and TYPE lines and samples, label
# escaping. prom.py has the meter's, the decoder's and the accounting's families; firmware/metrics.py the app's.


def escape_label(value):
    """Label value escaping: backslash, double quote and newline."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


HELP = "see docs/metrics.md"  # every family's HELP text: what each means is documented there (the texts
# themselves would cost a board ~4 KB of heap per scrape); promtool's lint wants a HELP line


def family(out, name, kind, samples):
    """Append one metric family: its HELP and TYPE lines and its samples [(label text, value text)]."""
    out.append("# HELP %s %s" % (name, HELP))
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
