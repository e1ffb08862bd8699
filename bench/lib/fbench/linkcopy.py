#!/usr/bin/env python3
"""linkcopy.py - the "direct" side of the link benchmark: one plain TCP copy.

  linkcopy.py recv HOST PORT    listen, print 'ready', take one connection,
                                read to EOF, print 'bytes=N sha256=HEX seconds=S'
  linkcopy.py send HOST PORT FILE [--wait-go]
                                connect and send FILE, then close; with
                                --wait-go first print 'armed' and wait for a
                                line on stdin, so the caller's clock does not
                                include Python's start-up

It is the reference a relay is measured against on a rate-limited link: the
same bytes over the same path with nothing in between but the kernel.  The
receiver gives up after --timeout seconds (default 120) so it never hangs.
"""
import argparse
import hashlib
import socket
import sys
import time


def recv(host, port, timeout):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    ls.settimeout(timeout)
    print("ready", flush=True)
    c, _ = ls.accept()
    c.settimeout(timeout)
    t0 = time.monotonic()
    h = hashlib.sha256()
    n = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    secs = time.monotonic() - t0
    c.close()
    ls.close()
    print("bytes=%d sha256=%s seconds=%.6f" % (n, h.hexdigest(), secs), flush=True)


def send(host, port, path, timeout, wait_go):
    f = open(path, "rb")
    if wait_go:
        print("armed", flush=True)
        sys.stdin.readline()
    s = socket.create_connection((host, port), timeout=timeout)
    with f:
        s.sendfile(f)
    s.shutdown(socket.SHUT_WR)
    # Wait for the receiver's close so the sender's exit means "delivered".
    while s.recv(4096):
        pass
    s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("role", choices=["send", "recv"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("file", nargs="?")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--wait-go", action="store_true")
    a = ap.parse_args()
    if a.role == "recv":
        recv(a.host, a.port, a.timeout)
    else:
        if not a.file:
            ap.error("send needs FILE")
        send(a.host, a.port, a.file, a.timeout, a.wait_go)
    return 0


if __name__ == "__main__":
    sys.exit(main())
