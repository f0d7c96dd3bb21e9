#!/usr/bin/env python3
"""Replay M-Bus slave(s) (EN 13757-2 link layer) on a serial device / pty.

osgate's test peer for drivers/mbus (started by the Go tests through socat).
Adapted from the team's peer in shared/peers/mbus: IDs can be patched per
slave (@ID8) and one reply can be damaged on purpose (--corrupt-rsp).

Stdlib only. Answers like a wired M-Bus meter:
  SND_NKE  10 40 A CS 16            -> E5, resets FCB state, deselects (A=FD)
  REQ_UD2  10 5B|7B A CS 16         -> RSP_UD long frame 68 L L 68 C A CI ... CS 16
  REQ_UD1  10 5A|7A A CS 16         -> E5 (no alarm data)
  SND_UD   68 L L 68 53|73 A CI ..  -> E5  (CI 52 to A=FD = secondary select,
                                            only the matching slave answers)
A = primary address 1..250, 253 (FD) = the selected slave (secondary addressing),
254 (FE) = any slave (answers only if exactly one exists), 255 = broadcast, no reply.

FCB handling: a REQ_UD2 with FCV=1 and the same FCB as the previous one is a
repeat -> the previous telegram is sent again (same access number). A toggled
FCB advances to the next telegram of that slave (several --slave files cycle).

  --slave ADDR=FILE[,FILE...]   hex telegram(s) (e.g. libmbus test frames);
                                the A field, access no. and checksum are patched.
                                Several files = multi-telegram readout: use
                                telegrams of the SAME meter (same ID header).
  --slave ADDR=FILE[,FILE...]@ID8
                                as above, with the 8-digit ID of every telegram
                                replaced (several slaves from one frame file)
  --corrupt-rsp N               damage the checksum of the N-th RSP_UD sent
                                (once), to test repeats with the same FCB
  --break-rsp N                 damage the header (second length byte) of the
                                N-th RSP_UD (once): the master sees it early
  --echo                        echo every byte from the master back at once,
                                as some level converters do
  --noise-rsp N                 send two noise bytes (00 FF) before the N-th
                                RSP_UD (once)
  --slave ADDR=counter[:ID8]    synthetic meter whose values change with time:
                                energy Wh (04 03) = 100000 + 10*t, power W (04 2B)
                                = 1000 + t%60, ext. temp 0.01 C (02 65) = 2000 + t%100,
                                date/time type F (04 6D) = now (UTC); t = seconds
  --fcb strict|lenient          strict (default): same FCB = byte-identical repeat
                                of the cached telegram (masters that never toggle,
                                e.g. libmbus CLI 10 5B.., then see stale data unless
                                they send SND_NKE first); lenient: same FCB keeps the
                                telegram index but sends fresh values/access number
  --baud N                      pace output like a real line (11 bit/char); 0=off
  --delay MS                    answer delay (standard: >= 11 bit times), default 20
"""
import argparse
import os
import select
import sys
import termios
import time
import tty

ACK = b"\xe5"


def log(*a):
    print(f"{time.monotonic() - T0:8.3f}", *a, flush=True)


def hx(b):
    return " ".join(f"{x:02X}" for x in b)


def cs(b):
    return sum(b) & 0xFF


def bcd_id(b4):  # 4 bytes LSB first -> "12345678"
    return "".join(f"{x:02X}" for x in reversed(b4))


class Slave:
    def __init__(self, addr, frames):
        self.addr = addr
        self.frames = frames  # list of bytes (full long frames)
        self.idx = 0
        self.last_fcb = None
        self.access = frames[0][15] if len(frames[0]) > 15 else 0
        self.last = None
        self.selected = False
        # secondary address from the first telegram's header (CI 72/76 long header)
        h = frames[0]
        self.sec = h[7:15]  # ID(4) MAN(2) VER MED

    strict = True

    def telegram(self, fcb, fcv):
        if fcv and fcb == self.last_fcb and self.last is not None:
            if self.strict:
                log(f"  slave {self.addr}: FCB not toggled -> repeat last telegram")
                return self.last
            fcv = False  # lenient: same telegram index, fresh content
        if fcv and self.last_fcb is not None:
            self.idx = (self.idx + 1) % len(self.frames)
        if fcv:
            self.last_fcb = fcb
        f = bytearray(self.frames[self.idx])
        f[5] = self.addr
        if len(f) > 15 and f[6] in (0x72, 0x76):
            self.access = (self.access + 1) & 0xFF
            f[15] = self.access
        f[-2] = cs(f[4:-2])
        self.last = bytes(f)
        return self.last

    def reset(self):
        self.last_fcb = None
        self.idx = 0
        self.last = None

    def matches(self, sel):  # sel = ID(4) MAN(2) VER MED, F nibbles / FF = wildcard
        want, have = bcd_id(sel[0:4]), bcd_id(self.sec[0:4])
        if any(w not in ("F", h) for w, h in zip(want, have)):
            return False
        if sel[4:6] != b"\xff\xff" and sel[4:6] != self.sec[4:6]:
            return False
        if sel[6] != 0xFF and sel[6] != self.sec[6]:
            return False
        if sel[7] != 0xFF and sel[7] != self.sec[7]:
            return False
        return True


def man_code(s3):
    v = ((ord(s3[0]) - 64) << 10) | ((ord(s3[1]) - 64) << 5) | (ord(s3[2]) - 64)
    return bytes([v & 0xFF, v >> 8])


def counter_telegram(idbcd, start):
    t = int(time.time() - start)
    now = time.gmtime()
    y = now.tm_year - 2000
    dt = bytes([now.tm_min & 0x3F, now.tm_hour & 0x1F,
                (now.tm_mday & 0x1F) | ((y & 0x07) << 5), (now.tm_mon & 0x0F) | ((y & 0x78) << 1)])
    hdr = bytes.fromhex(idbcd)[::-1] + man_code("TST") + bytes([0x01, 0x02, 0x00, 0x00, 0x00, 0x00])
    rec = (b"\x04\x03" + (100000 + 10 * t).to_bytes(4, "little")
           + b"\x04\x2B" + (1000 + t % 60).to_bytes(4, "little")
           + b"\x02\x65" + (2000 + t % 100).to_bytes(2, "little", signed=True)
           + b"\x04\x6D" + dt)
    body = bytes([0x08, 0x00, 0x72]) + hdr + rec
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])


class CounterSlave(Slave):
    def __init__(self, addr, idbcd):
        self.start = time.time()
        self.idbcd = idbcd
        super().__init__(addr, [counter_telegram(idbcd, self.start)])

    def telegram(self, fcb, fcv):
        if not (self.strict and fcv and fcb == self.last_fcb and self.last is not None):
            self.frames = [counter_telegram(self.idbcd, self.start)]
            self.idx = 0
        return super().telegram(fcb, fcv)


def load(path, idbcd=None):
    b = bytes.fromhex("".join(open(path).read().split()))
    assert b[0] == 0x68 and b[3] == 0x68 and len(b) == b[1] + 6 and b[-1] == 0x16, path
    if idbcd:
        b = bytearray(b)
        b[7:11] = bytes.fromhex(idbcd)[::-1]
        b[-2] = cs(b[4:-2])
        b = bytes(b)
    return b


class Bus:
    def __init__(self, fd, slaves, baud, delay):
        self.fd, self.slaves, self.baud, self.delay = fd, slaves, baud, delay / 1000

    echo = False
    corrupt_rsp = 0
    noise_rsp = 0
    break_rsp = 0
    rsp_count = 0

    def send(self, b, what):
        time.sleep(self.delay)
        if what.startswith("RSP_UD"):
            Bus.rsp_count += 1
            if Bus.rsp_count == Bus.corrupt_rsp:
                b = b[:-2] + bytes([(b[-2] + 1) & 0xFF]) + b[-1:]
                what += " (checksum damaged on purpose)"
            if Bus.rsp_count == Bus.break_rsp:
                b = b[:2] + bytes([(b[2] + 1) & 0xFF]) + b[3:]
                what += " (header damaged on purpose)"
            if Bus.rsp_count == Bus.noise_rsp:
                b = b"\x00\xff" + b
                what += " (after noise on purpose)"
        log(f"<- {hx(b)}  {what}")
        if self.baud:
            per = 11 / self.baud
            for i in range(len(b)):
                os.write(self.fd, b[i:i + 1])
                time.sleep(per)
        else:
            os.write(self.fd, b)

    def targets(self, a):
        if a == 0xFD:
            return [s for s in self.slaves if s.selected]
        if a == 0xFE:
            return self.slaves if len(self.slaves) == 1 else []
        return [s for s in self.slaves if s.addr == a]

    def short(self, f):
        c, a = f[1], f[2]
        fcb, fcv = bool(c & 0x20), bool(c & 0x10)
        if a == 0xFF:
            log("  broadcast without reply")
            if c & 0x4F == 0x40:
                for s in self.slaves:
                    s.reset()
            return
        t = self.targets(a)
        if c & 0x4F == 0x40:  # SND_NKE
            for s in t:
                s.reset()
                if a == 0xFD:
                    s.selected = False
            if t:
                self.send(ACK, "ACK (SND_NKE)")
        elif c & 0x4F == 0x4B:  # REQ_UD2
            if len(t) == 1:
                self.send(t[0].telegram(fcb, fcv), f"RSP_UD from slave {t[0].addr}")
            elif len(t) > 1:
                self.send(b"\xe5\x10\xe5", "collision garbage")
        elif c & 0x4F == 0x4A:  # REQ_UD1
            if t:
                self.send(ACK, "ACK (REQ_UD1, no alarm)")
        else:
            log(f"  unsupported C field {c:02X}, ignored")

    def long(self, f):
        c, a, ci = f[4], f[5], f[6]
        if c & 0x4F != 0x43:
            log(f"  long frame with C={c:02X} ignored")
            return
        if a == 0xFD and ci == 0x52 and len(f) >= 17:  # secondary select
            sel = f[7:15]
            hits = [s for s in self.slaves if s.matches(sel)]
            for s in self.slaves:
                s.selected = s in hits
            log(f"  select {bcd_id(sel[0:4])} man={sel[4:6].hex()} ver={sel[6]:02X} med={sel[7]:02X}: {len(hits)} match")
            if len(hits) == 1:
                self.send(ACK, "ACK (selected)")
            elif len(hits) > 1:
                self.send(b"\xe5\xe5", "collision (several slaves ACK)")
            return
        t = self.targets(a)
        if ci == 0x50:  # application reset
            for s in t:
                s.reset()
        if t and a != 0xFF:
            self.send(ACK, f"ACK (SND_UD CI={ci:02X})")

    def run(self):
        buf = bytearray()
        last_rx = 0.0
        while True:
            r, _, _ = select.select([self.fd], [], [], 0.5)
            if not r:
                if buf and time.monotonic() - last_rx > 0.1:
                    log(f"  dropping incomplete {hx(buf)}")
                    buf.clear()
                continue
            try:
                data = os.read(self.fd, 512)
            except OSError:  # EIO: no one has the other end open
                time.sleep(0.1)
                continue
            if not data:
                time.sleep(0.05)
                continue
            if self.echo:  # like a level converter that echoes the master
                os.write(self.fd, data)
            if buf and time.monotonic() - last_rx > 0.1:  # inter-frame gap
                buf.clear()
            last_rx = time.monotonic()
            buf += data
            while buf:
                if buf[0] == 0x10:
                    if len(buf) < 5:
                        break
                    f, buf = bytes(buf[:5]), buf[5:]
                    ok = f[4] == 0x16 and f[3] == cs(f[1:3])
                    log(f"-> {hx(f)}  short frame{'' if ok else ' BAD, ignored'}")
                    if ok:
                        self.short(f)
                elif buf[0] == 0x68:
                    if len(buf) < 4:
                        break
                    n = buf[1] + 6
                    if buf[2] != buf[1] or buf[3] != 0x68:
                        log(f"-> {hx(buf[:4])} bad long header, dropped byte")
                        del buf[0]
                        continue
                    if len(buf) < n:
                        break
                    f, buf = bytes(buf[:n]), buf[n:]
                    ok = f[-1] == 0x16 and f[-2] == cs(f[4:-2])
                    log(f"-> {hx(f)}  long frame{'' if ok else ' BAD, ignored'}")
                    if ok:
                        self.long(f)
                else:
                    log(f"-> {buf[0]:02X} garbage, dropped")
                    del buf[0]


def main():
    global T0
    T0 = time.monotonic()
    ap = argparse.ArgumentParser()
    ap.add_argument("device")
    ap.add_argument("--slave", action="append", required=True)
    ap.add_argument("--baud", type=int, default=0)
    ap.add_argument("--delay", type=float, default=20)
    ap.add_argument("--fcb", choices=["strict", "lenient"], default="strict")
    ap.add_argument("--corrupt-rsp", type=int, default=0)
    ap.add_argument("--noise-rsp", type=int, default=0)
    ap.add_argument("--break-rsp", type=int, default=0)
    ap.add_argument("--echo", action="store_true")
    o = ap.parse_args()
    slaves = []
    for spec in o.slave:
        a, files = spec.split("=", 1)
        if files.startswith("counter"):
            slaves.append(CounterSlave(int(a, 0), (files.split(":") + ["00000000"])[1] if ":" in files else "12345678"))
        else:
            files, _, idbcd = files.partition("@")
            slaves.append(Slave(int(a, 0), [load(p, idbcd) for p in files.split(",")]))
    Slave.strict = o.fcb == "strict"
    Bus.corrupt_rsp = o.corrupt_rsp
    Bus.noise_rsp = o.noise_rsp
    Bus.break_rsp = o.break_rsp
    Bus.echo = o.echo
    fd = os.open(o.device, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    attr = termios.tcgetattr(fd)
    attr[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attr)
    for s in slaves:
        log(f"slave addr={s.addr} secondary={bcd_id(s.sec[0:4])}{s.sec[4:6].hex().upper()}{s.sec[6]:02X}{s.sec[7]:02X} telegrams={len(s.frames)}")
    log(f"listening on {o.device}")
    Bus(fd, slaves, o.baud, o.delay).run()


if __name__ == "__main__":
    main()
