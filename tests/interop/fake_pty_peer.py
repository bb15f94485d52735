#!/usr/bin/env python3
"""A stand-in for one espsim board, for transport.test.mjs only: a pty pair plus a control socket.

Prints one JSON object per line on stdout:
  {"pty": "/dev/pts/N", "ctl": PATH}                 once, when ready
  {"data": HEX, "baud": N, "lflag": N, "iflag": N} per chunk read from the master, with the
                                                     termios the host left on the pty
  {"ctl": "DTR=1 RTS=0"}                             per line received on the control socket
Echoes every chunk back to the host with each byte XOR 0x20 (so an echo is not mistaken for the
terminal's own echo). Exits when stdin reaches EOF.
"""
import json
import os
import pty
import select
import socket
import sys
import termios


# termios speed constant -> baud, e.g. termios.B115200 -> 115200
BAUDS = {getattr(termios, n): int(n[1:]) for n in dir(termios) if n[:1] == "B" and n[1:].isdigit()}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    ctl_path = sys.argv[1]
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    # Keep the slave open: without any slave fd the master reads EIO between host opens.
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(ctl_path)
    srv.listen(4)
    emit({"pty": name, "ctl": ctl_path})
    clients = {}
    while True:
        fds = [sys.stdin, master, srv] + list(clients)
        readable, _, _ = select.select(fds, [], [])
        if sys.stdin in readable:
            if not os.read(sys.stdin.fileno(), 4096):
                break
        if master in readable:
            data = os.read(master, 65536)
            attrs = termios.tcgetattr(master)
            emit({"data": data.hex(), "baud": BAUDS.get(attrs[5], -1), "lflag": attrs[3], "iflag": attrs[0]})
            os.write(master, bytes(b ^ 0x20 for b in data))
        if srv in readable:
            conn, _ = srv.accept()
            clients[conn] = b""
        for conn in [c for c in clients if c in readable]:
            chunk = conn.recv(4096)
            if not chunk:
                del clients[conn]
                conn.close()
                continue
            buf = clients[conn] + chunk
            *lines, rest = buf.split(b"\n")
            clients[conn] = rest
            for line in lines:
                emit({"ctl": line.decode()})
    os.close(slave)
    os.close(master)
    os.unlink(ctl_path)


if __name__ == "__main__":
    main()
