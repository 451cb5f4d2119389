# Bit-level model of an asynchronous serial line (start bit, 8 data bits LSB first, parity, stop bit)
# and of a UART receiving it with possibly wrong parity or polarity: what the ESP32 would be handed.


def line_bits(data, parity, idle_after=0):
    """Bits on the wire for data sent as 8<parity>1 ('E', 'O' or 'N'), then idle (1) bits."""
    bits = bytearray()
    for b in data:
        bits.append(0)
        ones = 0
        for k in range(8):
            bit = (b >> k) & 1
            bits.append(bit)
            ones += bit
        if parity == "E":
            bits.append(ones & 1)
        elif parity == "O":
            bits.append(1 - (ones & 1))
        bits.append(1)
    for _ in range(idle_after):
        bits.append(1)
    return bits


def receive(bits, parity, invert=False):
    """(bytes delivered, characters dropped for parity or framing errors) for a UART set to
    8<parity>1 that samples these line bits, inverted first when invert is set."""
    out = bytearray()
    errors = 0
    n = len(bits)
    width = 10 if parity == "N" else 11
    i = 0
    while i < n:
        level = bits[i] ^ 1 if invert else bits[i]
        if level:
            i += 1  # idle: wait for a start bit
            continue
        if i + width > n:
            break
        value = 0
        ones = 0
        for k in range(8):
            bit = bits[i + 1 + k] ^ 1 if invert else bits[i + 1 + k]
            value |= bit << k
            ones += bit
        j = i + 9
        ok = True
        if parity != "N":
            p = bits[j] ^ 1 if invert else bits[j]
            want = (ones & 1) if parity == "E" else 1 - (ones & 1)
            ok = p == want
            j += 1
        stop = bits[j] ^ 1 if invert else bits[j]
        if stop != 1:
            ok = False
        if ok:
            out.append(value)
        else:
            errors += 1
        i = j + 1
    return bytes(out), errors
