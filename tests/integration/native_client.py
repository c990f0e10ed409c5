"""A minimal client of cachetier's native protocol for tests (docs/protocol.md), built on
Debian's python3-msgpack: frames are 0xFA + u32 big-endian length + msgpack [id, op, fields]."""
import socket
import struct

import msgpack

OPS = {name: i for i, name in enumerate(
    ["hello", "get", "gets", "set", "add", "replace", "append", "prepend", "cas", "delete",
     "incr", "decr", "touch", "gat", "multi_get", "multi_set", "multi_delete", "flush", "stats",
     "noop", "version", "admin"])}
STATUS = ["OK", "NOT_FOUND", "EXISTS", "NOT_STORED", "NON_NUMERIC", "TOO_LARGE", "NO_MEMORY",
          "BAD_REQUEST", "UNKNOWN_OP", "OLDER_VERSION", "SERVER_ERROR", "UNAUTHENTICATED"]
F = dict(key=1, keys=2, value=3, flags=4, ttl=5, cas=6, number=7, version=8, initial=9, items=10,
         delay=11, options=12, vivify=13, recache=14, new_cas=15, touch_ttl=16, values=20,
         stats=21, message=22, statuses=23, fetched=24, idle=25, prior_ttl=26, lease=27,
         proto_version=30, features=31, server=32, max_frame=33, user=34, password=35)
# Request options (field `options`) and reply lease bits (field `lease`): docs/protocol.md.
NO_BUMP, LEASES, INVALIDATE, RECACHE_AFTER_TOUCH, DROP_VALUE, ITEM_META = 1, 2, 4, 8, 16, 32
WON, STALE, WIN_SENT, CREATED = 1, 2, 4, 8


def frame(body_bytes):
    return b"\xfa" + struct.pack(">I", len(body_bytes)) + body_bytes


def request(rid, op, **fields):
    body = [rid, OPS[op] if isinstance(op, str) else op, {F[k]: v for k, v in fields.items()}]
    return frame(msgpack.packb(body, use_bin_type=True))


class NativeClient:
    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.next_id = 1

    def send(self, data):
        self.sock.sendall(data)

    def read_reply(self):
        """Returns (id, status name, {field name: value})."""
        while True:
            if len(self.buf) >= 5:
                assert self.buf[0] == 0xFA, "bad magic in reply"
                (n,) = struct.unpack(">I", self.buf[1:5])
                if len(self.buf) >= 5 + n:
                    body, self.buf = self.buf[5:5 + n], self.buf[5 + n:]
                    rid, status, fields = msgpack.unpackb(body, raw=True, strict_map_key=False)
                    names = {v: k for k, v in F.items()}
                    return rid, STATUS[status], {names.get(k, k): v for k, v in fields.items()}
            d = self.sock.recv(1 << 20)
            if not d:
                raise EOFError("connection closed by server")
            self.buf += d

    def call(self, op, **fields):
        rid = self.next_id
        self.next_id += 1
        self.send(request(rid, op, **fields))
        got_id, status, reply = self.read_reply()
        assert got_id == rid, "reply id %r for request %r" % (got_id, rid)
        return status, reply

    def closed_by_peer(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(1 << 16)
                if not d:
                    return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()
