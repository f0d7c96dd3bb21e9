#!/usr/bin/python3
"""osgate's Modbus test peer, on Debian's python3-pymodbus 3.0.0.

Run with /usr/bin/python3. The Go tests start it; by hand:

  /usr/bin/python3 server.py --tcp 127.0.0.1:5020 [--rtutcp 127.0.0.1:5021]
                             [--rtu /dev/pts/N --baud 115200] [--log requests.log]
                             [--tick 0.2] [--late-unit 3]

One datastore serves every endpoint. Addresses are 0-based (zero_mode).
Units other than 1 and 2 get no reply at all (like an absent RS-485 slave),
on TCP too (ignore_missing_slaves).

Unit 1 is "live": every --tick seconds a counter t advances and, in one
step (no request is served half-way), the holding registers become:
  HR0-1   uint32 t, ABCD              HR2     uint16 t & 0xFFFF
  HR3     int16 -(t % 30000)          HR4-5   int32 -7t, CDAB
  HR6-7   float32 t/2, DCBA           HR8-9   uint32 3t, BADC
  HR10-13 int64 -1000003t, ABCD       HR14-17 uint64 1000000007t, CDAB
  HR18-21 float64 t/8, DCBA           HR22-25 string "T%06d" % t, NUL padded
  HR26    0x8000 | (t % 2) << 3       HR27    int16 -(t % 1000), BADC
  HR28-29 float32 -t/4, BADC          HR30-33 float64 1.5t, BADC
  HR34-37 int64 -11t, DCBA            HR38-39 int32 -5t, DCBA
  IR0-1   float32 t/2, ABCD           IR2     t % 1000
  IR10-11 float32 230.1, ABCD (a meter's voltage; static)
  CO0     t % 2                       DI0     1 - t % 2,  DI1 = 1
  HR100-199, CO8-15: scratch for writes (never touched by the updater)
  HR900, HR905, HR950: holes: any read that touches one answers exception 2
Unit 2 is static: HR i = (7i + 3) & 0xFFFF, IR i = i, CO i = i % 3 == 0,
DI i = i % 2, for i in 0..1999 (registers 0..1023).

--late-unit U: unit U is absent (no reply at all) until the server gets
SIGUSR1; from then on it answers with the same data as unit 2 (a meter
that was powered off, or not wired yet).

--log FILE appends one line per request the datastore sees, written and
flushed before the reply is sent:  unit=U fc=F addr=A count=N
"""
import argparse
import asyncio
import logging
import signal
import struct
import sys

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer
from pymodbus.transaction import ModbusRtuFramer, ModbusSocketFramer

HOLES = {900, 905, 950}
LOG = None


class Unit(ModbusSlaveContext):
    """A unit that logs every request and has holes in its holding registers."""

    def __init__(self, unit, holes=(), **kw):
        super().__init__(zero_mode=True, **kw)
        self.unit, self.holes = unit, set(holes)

    def validate(self, fc_as_hex, address, count=1):
        if LOG is not None:
            LOG.write(f"unit={self.unit} fc={fc_as_hex} addr={address} count={count}\n")
            LOG.flush()
        if fc_as_hex in (3, 6, 16, 22, 23) and any(a in self.holes for a in range(address, address + count)):
            return False
        return super().validate(fc_as_hex, address, count)


def block(values):
    return ModbusSequentialDataBlock(0, values)


def ordered(fmt, value, order):
    """Big-endian bytes of value, then the order's swaps, as register words."""
    b = bytearray(struct.pack(">" + fmt, value))
    if order in ("BADC", "DCBA"):
        for i in range(0, len(b), 2):
            b[i], b[i + 1] = b[i + 1], b[i]
    words = [b[i] << 8 | b[i + 1] for i in range(0, len(b), 2)]
    if order in ("CDAB", "DCBA"):
        words.reverse()
    return words


def live_registers(t):
    s = ("T%06d" % t).encode().ljust(8, b"\0")
    regs = (ordered("I", t & 0xFFFFFFFF, "ABCD") + [t & 0xFFFF]
            + ordered("h", -(t % 30000), "ABCD") + ordered("i", -7 * t, "CDAB")
            + ordered("f", t / 2, "DCBA") + ordered("I", (3 * t) & 0xFFFFFFFF, "BADC")
            + ordered("q", -1000003 * t, "ABCD") + ordered("Q", 1000000007 * t, "CDAB")
            + ordered("d", t / 8, "DCBA") + [s[i] << 8 | s[i + 1] for i in range(0, 8, 2)]
            + [0x8000 | (t % 2) << 3] + ordered("h", -(t % 1000), "BADC")
            + ordered("f", -t / 4, "BADC") + ordered("d", 1.5 * t, "BADC")
            + ordered("q", -11 * t, "DCBA") + ordered("i", -5 * t, "DCBA"))
    assert len(regs) == 40, len(regs)
    return regs


def static_unit(unit):
    return Unit(unit, (), di=block([i % 2 for i in range(2000)]),
                co=block([int(i % 3 == 0) for i in range(2000)]),
                hr=block([(7 * i + 3) & 0xFFFF for i in range(1024)]),
                ir=block(list(range(1024))))


def make_context():
    ir1 = [0] * 1024
    ir1[10:12] = ordered("f", 230.1, "ABCD")
    u1 = Unit(1, HOLES, di=block([0] * 2000), co=block([0] * 2000),
              hr=block([0] * 1024), ir=block(ir1))
    return ModbusServerContext(slaves={1: u1, 2: static_unit(2)}, single=False)


async def updater(ctx, tick):
    u, t = ctx[1], 0
    while True:
        # One synchronous step: the event loop serves no request in between.
        u.setValues(3, 0, live_registers(t))
        u.setValues(4, 0, ordered("f", t / 2, "ABCD") + [t % 1000])
        u.setValues(1, 0, [t % 2])
        u.setValues(2, 0, [1 - t % 2, 1])
        await asyncio.sleep(tick)
        t += 1


async def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", help="HOST:PORT for Modbus TCP")
    ap.add_argument("--rtutcp", help="HOST:PORT for RTU frames over TCP")
    ap.add_argument("--rtu", help="serial device or pty path")
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--tick", type=float, default=0.2)
    ap.add_argument("--log", help="append one line per request to this file")
    ap.add_argument("--late-unit", type=int, help="a unit that answers only after SIGUSR1")
    o = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    if o.log:
        LOG = open(o.log, "a", encoding="ascii")
    ctx = make_context()
    if o.late_unit:
        def arrive():
            ctx[o.late_unit] = static_unit(o.late_unit)
            print(f"unit {o.late_unit} answers from now on", flush=True)
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, arrive)
    tasks = [asyncio.create_task(updater(ctx, o.tick))]
    for addr, framer in ((o.tcp, ModbusSocketFramer), (o.rtutcp, ModbusRtuFramer)):
        if addr:
            host, port = addr.rsplit(":", 1)
            srv = await StartAsyncTcpServer(context=ctx, address=(host, int(port)), framer=framer,
                                            defer_start=True, allow_reuse_address=True,
                                            ignore_missing_slaves=True)
            tasks.append(asyncio.create_task(srv.serve_forever()))
    if o.rtu:
        srv = await StartAsyncSerialServer(context=ctx, port=o.rtu, framer=ModbusRtuFramer,
                                           baudrate=o.baud, bytesize=8, parity="N", stopbits=1,
                                           ignore_missing_slaves=True, defer_start=True)
        await srv.start()
        tasks.append(asyncio.create_task(srv.serve_forever()))
    print("modbus test peer ready", flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
