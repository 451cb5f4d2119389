# The capacity tariff's month value (docs/han-notes.md §capacity-tariff): the mean of the month's top
# days by their highest hour. Used by accounting_hourly (kept with each hour) and accounting_views.
from hanport import localtime as LT
from hanport.accounting import DAYS_KEPT


def top(acc, mi, n, skip=-1):
    """The n highest days of month mi by their highest hour (ties: the earlier day; day `skip` left
    out) marked in acc.taken with their rank 1..k; returns their mean (W, floor; 0 without days):
    the month's capacity value when n is acc.top_n. Allocates nothing."""
    y = mi // 12
    m = mi % 12 + 1
    first = LT.days_from_date(y, m, 1)
    last = first + LT.days_in_month(y, m)
    idx = acc.d_idx
    mx = acc.d_max
    taken = acc.taken
    for s in range(DAYS_KEPT):
        taken[s] = 0
    total = 0
    k = 0
    while k < n:
        best = -1
        for s in range(DAYS_KEPT):
            d = idx[s]
            if (first <= d < last and d != skip and acc.d_nh[s] and not taken[s]
                    and (best < 0 or mx[s] > mx[best] or (mx[s] == mx[best] and d < idx[best]))):
                best = s
        if best < 0:
            break
        k += 1
        taken[best] = k
        total += mx[best]
    return total // k if k else 0


def marked(acc):
    """([(max Wh, day number, slot)] of the days top() marked in acc.taken, highest first; the sum of
    their maxima)."""
    out = [None] * max(acc.taken)
    total = 0
    for s in range(DAYS_KEPT):
        r = acc.taken[s]
        if r:
            out[r - 1] = (acc.d_max[s], acc.d_idx[s], s)
            total += acc.d_max[s]
    return out, total
