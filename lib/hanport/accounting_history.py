# The history kept by hanport.accounting as lists (hours, days, months), oldest first: for reports and
# tools; imported when asked for (a board may unload it after).
from hanport import localtime as LT
from hanport.accounting import F_EST, HOUR_S


def _kept(idx):
    """[(index, slot)] of a ring (hours, days or months: slot = index % its length), oldest first."""
    n = len(idx)
    newest = max(idx)
    return [(i, i % n) for i in range(newest - n + 1, newest + 1) if i >= 0 and idx[i % n] == i]


def hours(acc):
    """[(start UTC s, import Wh, export Wh, estimated)] of the hours kept, oldest first."""
    return [(h * HOUR_S, acc.h_imp[s], acc.h_exp[s], bool(acc.h_flags[s] & F_EST)) for h, s in _kept(acc.h_idx)]


def days(acc):
    """[(day number, import Wh, export Wh, max hour Wh, max hour start UTC s, hours, flags)], oldest first."""
    return [(d, acc.d_imp[s], acc.d_exp[s], acc.d_max[s], LT.local_midnight_s(d) + acc.d_maxh[s] * HOUR_S,
             acc.d_nh[s], acc.d_flags[s]) for d, s in _kept(acc.d_idx)]


def months(acc):
    """[(month index, import Wh, export Wh, capacity W, estimated)], oldest first."""
    return [(mi, acc.m_imp[s], acc.m_exp[s], acc.m_cap[s], bool(acc.m_flags[s] & F_EST))
            for mi, s in _kept(acc.m_idx)]
