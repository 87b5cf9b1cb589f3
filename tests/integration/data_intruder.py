#!/usr/bin/env python3
"""A stranger at a node's data port, for test_multinode_dataport.sh. Runs
inside an emulated node's namespace (never the root namespace's).

  flood HOST PORT N SECONDS READY
      open N connections and say nothing; keep N open for SECONDS (one the
      port closes is opened again, at most 200 a second); READY is made
      once the first N are open. Prints "flood opened O closed C" at the
      end (or on SIGTERM).
  capture HOST STOP OUT
      record the bytes every TCP connection from this node to HOST sends
      (a raw packet socket on this namespace's interfaces; OUT.ready is
      made once it listens) until the file STOP exists; then write each
      stream to OUT.DPORT.SPORT.
  replay HOST PORT FILE N
      send FILE's bytes (a recorded connection) on N new connections;
      prints "replay accepted A of N": A connections got a data-plane
      answer frame back.
"""
import os
import resource
import select
import signal
import socket
import struct
import sys
import time

ANSWER_MAGIC = struct.pack("<I", 0x44564451)  # a dv__data_rep's first field


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def flood(host, port, n, seconds, ready):
    raise_fd_limit()
    socks = {}  # fd -> socket
    poller = select.poll()
    opened = closed = 0

    def connect():
        s = socket.create_connection((host, port), timeout=5)
        socks[s.fileno()] = s
        poller.register(s, select.POLLIN)

    def report(*_):
        print("flood opened %d closed %d" % (opened, closed), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, report)
    while len(socks) < n:
        connect()
        opened += 1
    open(ready, "w").close()
    end = time.monotonic() + seconds
    budget, last = 0.0, time.monotonic()
    while time.monotonic() < end:
        for fd, _ in poller.poll(50):
            s = socks[fd]
            try:
                got = s.recv(4096)
            except OSError:
                got = b""
            if got:
                continue  # the challenge: never answered
            poller.unregister(fd)
            del socks[fd]
            s.close()
            closed += 1
        now = time.monotonic()
        budget, last = min(200.0, budget + (now - last) * 200.0), now
        while len(socks) < n and budget >= 1.0:
            budget -= 1.0
            try:
                connect()
                opened += 1
            except OSError:
                break
    report()


def capture(host, stop, out):
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    raw.settimeout(0.1)
    open(out + ".ready", "w").close()
    want = socket.inet_aton(host)
    streams = {}  # (sport, dport) -> {seq: payload}, isn
    while not os.path.exists(stop):
        try:
            frame = raw.recv(1 << 18)
        except socket.timeout:
            continue
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack("!H", ip[2:4])[0] or len(ip)
        if ip[9] != 6 or ip[16:20] != want:
            continue
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        flags = tcp[13]
        payload = tcp[(tcp[12] >> 4) * 4:]
        st = streams.setdefault((sport, dport), [{}, None])
        if flags & 2:  # SYN
            st[1] = (seq + 1) & 0xFFFFFFFF
        if payload:
            st[0][seq] = payload
    for (sport, dport), (segs, isn) in streams.items():
        if isn is None:
            continue
        data, pos = b"", isn
        for seq in sorted(segs, key=lambda s: (s - isn) & 0xFFFFFFFF):
            off = (pos - seq) & 0xFFFFFFFF
            seg = segs[seq]
            if off < len(seg):
                data += seg[off:]
                pos = (seq + len(seg)) & 0xFFFFFFFF
        with open("%s.%d.%d" % (out, dport, sport), "wb") as f:
            f.write(data)


def replay(host, port, path, n):
    data = open(path, "rb").read()
    accepted = 0
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=5)
        got = b""
        try:
            s.sendall(data)
            s.settimeout(2)
            while True:
                k = s.recv(4096)
                if not k:
                    break
                got += k
                if ANSWER_MAGIC in got:
                    break
        except OSError:
            pass
        s.close()
        accepted += ANSWER_MAGIC in got
    print("replay accepted %d of %d" % (accepted, n))


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "flood" and len(argv) == 7:
        flood(argv[2], int(argv[3]), int(argv[4]), float(argv[5]), argv[6])
    elif cmd == "capture" and len(argv) == 5:
        capture(argv[2], argv[3], argv[4])
    elif cmd == "replay" and len(argv) == 6:
        replay(argv[2], int(argv[3]), argv[4], int(argv[5]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
