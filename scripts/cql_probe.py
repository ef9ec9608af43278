#!/usr/bin/env python3
"""Ask a Cassandra node for its release version, speaking the CQL native protocol directly.

scripts/stack uses this to know that Cassandra really answers CQL (not just that its port is
open), before any Rust is built and without installing cqlsh. It sends STARTUP, waits for READY,
then runs `SELECT release_version FROM system.local` and prints the version.
Exit 0 when the node answered the query, 1 otherwise.

    scripts/cql_probe.py HOST:PORT --query "SELECT count(*) FROM playground.order_events"
runs one query instead and prints its rows, one a line, columns separated by `|` (text, ints,
decimals, booleans, uuids and timestamps in ms are decoded; other types print as hex): a tiny stand-in for
cqlsh, which the workshop and scripts/demo use to show rows.

Wire format (native protocol v4, big-endian):
    frame   = int8 version (0x04 request, 0x84 response), int8 flags, int16 stream,
              int8 opcode, int32 body length, body
    STARTUP (0x01) body = string map {"CQL_VERSION": "3.0.0"}     -> READY (0x02), empty body
    QUERY   (0x07) body = long string query, int16 consistency, int8 flags(0)
    RESULT  (0x08) body = int32 kind (2 = Rows), metadata, int32 rows, rows of [int32 len][bytes]
    ERROR   (0x00) body = int32 code, string message
"""
import os
import socket
import struct
import sys

VERSION = 0x04
OP_ERROR, OP_STARTUP, OP_READY, OP_QUERY, OP_RESULT = 0x00, 0x01, 0x02, 0x07, 0x08
CONSISTENCY_ONE = 0x0001


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("Cassandra closed the connection")
        buf += chunk
    return buf


def string(text):
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def read_string(data, pos):
    (length,) = struct.unpack_from(">H", data, pos)
    pos += 2
    return data[pos:pos + length].decode(), pos + length


def request(sock, stream, opcode, body):
    sock.sendall(struct.pack(">BBhBi", VERSION, 0, stream, opcode, len(body)) + body)
    _version, flags, _stream, reply, length = struct.unpack(">BBhBi", read_exact(sock, 9))
    data = read_exact(sock, length)
    if flags & 0x08:  # warnings (e.g. an aggregate without a partition key): [string list] first
        (count,) = struct.unpack_from(">H", data, 0)
        pos = 2
        for _ in range(count):
            _, pos = read_string(data, pos)
        data = data[pos:]
    if reply == OP_ERROR:
        (code,) = struct.unpack_from(">i", data, 0)
        message, _ = read_string(data, 4)
        raise ValueError(f"error 0x{code:04x}: {message}")
    return reply, data


def skip_type(data, pos):
    """Skips one column type [option]; collections and UDTs carry nested types."""
    (type_id,) = struct.unpack_from(">H", data, pos)
    pos += 2
    if type_id == 0x0000:  # custom: class name
        _, pos = read_string(data, pos)
    elif type_id in (0x0020, 0x0022):  # list, set
        pos = skip_type(data, pos)
    elif type_id == 0x0021:  # map
        pos = skip_type(data, skip_type(data, pos))
    elif type_id in (0x0030, 0x0031):
        raise ValueError("unexpected UDT or tuple column in system.local")
    return pos


def release_version(host, port, timeout):
    rows = query_rows(host, port, "SELECT release_version FROM system.local", timeout)
    if not rows:
        raise ValueError("system.local returned no row")
    return rows[0][0]


def read_type(data, pos):
    """One column type [option] -> (type id, position after it); nested types are skipped."""
    (type_id,) = struct.unpack_from(">H", data, pos)
    return type_id, skip_type(data, pos)


def decode_value(type_id, raw):
    if raw is None:
        return "null"
    if type_id in (0x0001, 0x000D):  # ascii, varchar
        return raw.decode()
    if type_id in (0x0002, 0x0009, 0x0013, 0x0014, 0x000B):  # bigint, int, smallint, tinyint, timestamp
        return str(int.from_bytes(raw, "big", signed=True))
    if type_id == 0x0006 and len(raw) >= 4:  # decimal: int32 scale, varint unscaled
        scale = int.from_bytes(raw[:4], "big", signed=True)
        unscaled = int.from_bytes(raw[4:], "big", signed=True)
        digits = str(abs(unscaled)).rjust(scale + 1, "0") if scale > 0 else str(abs(unscaled))
        text = digits[:-scale] + "." + digits[-scale:] if scale > 0 else digits + "0" * -scale
        return ("-" if unscaled < 0 else "") + text
    if type_id == 0x000E:  # varint
        return str(int.from_bytes(raw, "big", signed=True))
    if type_id == 0x0004:  # boolean
        return "true" if raw != b"\x00" else "false"
    if type_id in (0x000C, 0x000F):  # uuid, timeuuid
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return "0x" + raw.hex()


def query_rows(host, port, query_text, timeout):
    """Runs one query; returns its rows as lists of text."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        startup = struct.pack(">H", 1) + string("CQL_VERSION") + string("3.0.0")
        reply, _ = request(sock, 1, OP_STARTUP, startup)
        if reply != OP_READY:
            raise ValueError(f"STARTUP answered with opcode 0x{reply:02x}, not READY (authentication on?)")
        query = query_text.encode()
        body = struct.pack(">i", len(query)) + query + struct.pack(">HB", CONSISTENCY_ONE, 0)
        reply, data = request(sock, 2, OP_QUERY, body)
    if reply != OP_RESULT:
        raise ValueError(f"QUERY answered with opcode 0x{reply:02x}")
    (kind,) = struct.unpack_from(">i", data, 0)
    if kind in (1, 3, 5):
        return []  # Void, SetKeyspace, SchemaChange: a statement with no rows (DDL, USE, INSERT)
    if kind != 2:
        raise ValueError(f"QUERY answered with result kind {kind}, not Rows")
    kind, flags, columns = struct.unpack_from(">iii", data, 0)
    pos = 12
    if flags & 0x0002:  # has more pages: paging state [bytes]
        (length,) = struct.unpack_from(">i", data, pos)
        pos += 4 + max(length, 0)
    if flags & 0x0004:  # no metadata
        raise ValueError("the Rows result carries no metadata")
    if flags & 0x0001:  # global table spec: keyspace, table once
        _, pos = read_string(data, pos)
        _, pos = read_string(data, pos)
    types = []
    for _ in range(columns):
        if not flags & 0x0001:
            _, pos = read_string(data, pos)
            _, pos = read_string(data, pos)
        _, pos = read_string(data, pos)
        type_id, pos = read_type(data, pos)
        types.append(type_id)
    (count,) = struct.unpack_from(">i", data, pos)
    pos += 4
    rows = []
    for _ in range(count):
        row = []
        for type_id in types:
            (length,) = struct.unpack_from(">i", data, pos)
            pos += 4
            raw = None if length < 0 else data[pos:pos + length]
            pos += max(length, 0)
            row.append(decode_value(type_id, raw))
        rows.append(row)
    return rows


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print("usage: scripts/cql_probe.py [HOST:PORT] [--query CQL]   (default 127.0.0.1:59042)\n")
        print(__doc__)
        return 0
    args = sys.argv[1:]
    query = None
    if "--query" in args:
        i = args.index("--query")
        if i + 1 >= len(args):
            print("usage: scripts/cql_probe.py [HOST:PORT] --query CQL", file=sys.stderr)
            return 1
        query = args[i + 1]
        args = args[:i] + args[i + 2:]
    # No address, or an empty one (an unset "$CASSANDRA_CONTACT_POINTS"): the stack's node.
    default = (os.environ.get("CASSANDRA_CONTACT_POINTS") or "127.0.0.1:59042").split(",")[0]
    target = args[0] if args and args[0] else default
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        print(f"usage: scripts/cql_probe.py [HOST:PORT], got {target!r}", file=sys.stderr)
        return 1
    if os.environ.get("SCRIPTS_DRY_RUN") == "1":  # like scripts/lib.sh's stop_if_dry_run
        print(f"dry run: scripts/cql_probe.py {target}: arguments accepted, nothing done")
        return 0
    if query is not None:
        try:
            rows = query_rows(host, int(port), query, 10.0)
        except (OSError, ValueError, struct.error) as err:
            print(f"cassandra at {target}: {err}", file=sys.stderr)
            return 1
        for row in rows:
            print("|".join(row))
        return 0
    try:
        version = release_version(host, int(port), 3.0)
    except (OSError, ValueError, struct.error) as err:
        print(f"cassandra at {target} did not answer CQL: {err}", file=sys.stderr)
        return 1
    print(f"Apache Cassandra {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
