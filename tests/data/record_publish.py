#!/usr/bin/env python3
"""Records the bytes an RTMP publisher sends, for the protocol core's fixture tests.

It listens on loopback, answers just enough of RTMP for a publisher to get to the
point of sending media (plain handshake, connect, createStream, publish), and writes
every byte the client sent, handshake included, to OUTPUT. It is a fixture recorder,
not a server: the real one is uringestd.

  tests/data/record_publish.py --chunk-size 128 --port 19350 out.rtmp &
  ffmpeg -re -f lavfi -i testsrc=size=320x240:rate=30 -t 2 -c:v libx264 \
      -preset ultrafast -g 30 -f flv rtmp://127.0.0.1:19350/live/test

See tests/data/README.md for the exact commands that made the recordings.
"""

import argparse
import os
import socket
import struct


def amf_string(s):
    b = s.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def amf_number(n):
    return b"\x00" + struct.pack(">d", n)


def amf_object(props):
    out = b"\x03"
    for k, v in props:
        kb = k.encode()
        out += struct.pack(">H", len(kb)) + kb + v
    return out + b"\x00\x00\x09"


def amf_read_string(data, pos):
    assert data[pos] == 0x02, "expected an AMF0 string"
    n = struct.unpack(">H", data[pos + 1:pos + 3])[0]
    return data[pos + 3:pos + 3 + n].decode(), pos + 3 + n


def amf_read_number(data, pos):
    assert data[pos] == 0x00, "expected an AMF0 number"
    return struct.unpack(">d", data[pos + 1:pos + 9])[0], pos + 9


def chunk(csid, msg_type, stream_id, payload, chunk_size):
    """One message as a fmt 0 chunk plus fmt 3 continuations (csid < 64)."""
    out = bytes([csid]) + b"\x00\x00\x00" + struct.pack(">I", len(payload))[1:]
    out += bytes([msg_type]) + struct.pack("<I", stream_id)
    for i in range(0, max(len(payload), 1), chunk_size):
        if i:
            out += bytes([0xC0 | csid])
        out += payload[i:i + chunk_size]
    return out


class Reader:
    """A chunk stream reader for the client's messages (fixture quality)."""

    def __init__(self, sock, log):
        self.sock, self.log, self.buf = sock, log, b""
        self.chunk_size, self.streams = 128, {}

    def need(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.log.write(data)
            self.buf += data

    def take(self, n):
        self.need(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def message(self):
        while True:
            b0 = self.take(1)[0]
            fmt, csid = b0 >> 6, b0 & 0x3F
            if csid == 0:
                csid = 64 + self.take(1)[0]
            elif csid == 1:
                b = self.take(2)
                csid = 64 + b[0] + 256 * b[1]
            st = self.streams.setdefault(csid, {"len": 0, "type": 0, "sid": 0, "ts": 0,
                                                "ext": False, "body": b""})
            if fmt <= 2:
                ts = int.from_bytes(self.take(3), "big")
            if fmt <= 1:
                st["len"] = int.from_bytes(self.take(3), "big")
                st["type"] = self.take(1)[0]
            if fmt == 0:
                st["sid"] = struct.unpack("<I", self.take(4))[0]
            if fmt <= 2:
                st["ext"] = ts == 0xFFFFFF
            if st["ext"]:
                self.take(4)
            want = min(self.chunk_size, st["len"] - len(st["body"]))
            st["body"] += self.take(want)
            if len(st["body"]) == st["len"]:
                body, st["body"] = st["body"], b""
                if st["type"] == 1:
                    self.chunk_size = struct.unpack(">I", body)[0] & 0x7FFFFFFF
                    continue
                return st["type"], st["sid"], body


def serve(conn, out, chunk_size):
    c0c1 = b""
    while len(c0c1) < 1537:
        c0c1 += conn.recv(1537 - len(c0c1))
    out.write(c0c1)
    s1 = b"\x00" * 8 + os.urandom(1528)
    conn.sendall(b"\x03" + s1 + c0c1[1:])
    reader = Reader(conn, out)
    reader.take(1536)  # C2
    send = lambda csid, t, sid, p: conn.sendall(chunk(csid, t, sid, p, chunk_size))
    send(2, 1, 0, struct.pack(">I", chunk_size))
    while True:
        try:
            msg_type, sid, body = reader.message()
        except EOFError:
            return
        if msg_type != 20:
            continue
        name, pos = amf_read_string(body, 0)
        txn, pos = amf_read_number(body, pos)
        if name == "connect":
            send(2, 5, 0, struct.pack(">I", 2500000))
            send(2, 6, 0, struct.pack(">IB", 2500000, 2))
            send(3, 20, 0, amf_string("_result") + amf_number(txn) +
                 amf_object([("fmsVer", amf_string("FMS/3,0,1,123"))]) +
                 amf_object([("level", amf_string("status")),
                             ("code", amf_string("NetConnection.Connect.Success"))]))
        elif name == "createStream":
            send(3, 20, 0, amf_string("_result") + amf_number(txn) + b"\x05" +
                 amf_number(1))
        elif name == "publish":
            send(5, 20, sid, amf_string("onStatus") + amf_number(0) + b"\x05" +
                 amf_object([("level", amf_string("status")),
                             ("code", amf_string("NetStream.Publish.Start"))]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=19350)
    ap.add_argument("--chunk-size", type=int, default=128,
                    help="the chunk size announced to the client (it echoes it)")
    ap.add_argument("output")
    args = ap.parse_args()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(1)
    conn, _ = srv.accept()
    with open(args.output, "wb") as out:
        serve(conn, out, args.chunk_size)


if __name__ == "__main__":
    main()
