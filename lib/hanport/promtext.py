# Prometheus text exposition format 0.0.4, the text itself: a family's HELP and TYPE lines and samples, label
# escaping. prom.py has the meter's, the decoder's and the accounting's families; firmware/metrics.py the app's.
from hanport.buffers import const


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


_WAITS = const(20)  # a family that cannot be made for want of heap is tried this many times (a None piece before each)


def sent_families(out, *args):
    """The lines (newline-terminated) of the families make(out, *args) appends to out, a generator that
    yields after each family (or a few lines of one), sent one step at a time. The heap short while
    one is made (nothing of it sent yet): a None piece (the sender waits a moment and collects), then
    the families are made again and the steps already sent skipped by their first line (a HELP line
    whole, a sample without its value). args: the generator function, then its arguments after out."""
    sent = None  # the first line of the last step sent, without its value
    waits = 0
    while True:
        skip = sent is not None
        try:
            for _ in args[0](out, *args[1:]):
                if not out:
                    continue
                mark = out[0]
                if mark[0] != "#":
                    mark = mark[: mark.rfind(" ")]
                if skip:
                    skip = mark != sent
                    out.clear()
                    continue
                for i in range(len(out)):
                    out[i] += "\n"
                yield from out
                out.clear()
                sent = mark
            return
        except MemoryError:
            out.clear()
            if waits >= _WAITS:
                raise
            waits += 1
        yield None


def text(lines):
    """The exposition document (newline-terminated)."""
    return "\n".join(lines) + "\n"
