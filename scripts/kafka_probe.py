#!/usr/bin/env python3
"""Ask a Kafka broker for its metadata, speaking the wire protocol directly (no client needed).

scripts/stack uses this to know that the broker really answers, before any Rust is built.
It sends one MetadataRequest v4 (the oldest version Kafka 4.x still accepts) for all topics and
prints the brokers and the cluster id. Exit 0 when the broker answered, 1 otherwise.

Wire format (big-endian):
    request  = int32 size, int16 api_key(3), int16 api_version(4), int32 correlation_id,
               int16+bytes client_id, int32 topics(-1 = all), int8 allow_auto_topic_creation
    response = int32 size, int32 correlation_id, int32 throttle_ms,
               int32 n_brokers, n * (int32 node_id, string host, int32 port, nullable string rack),
               nullable string cluster_id, int32 controller_id, ...
"""
import socket
import struct
import sys


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


def read_string(data, pos):
    (length,) = struct.unpack_from(">h", data, pos)
    pos += 2
    if length < 0:
        return None, pos
    return data[pos:pos + length].decode(), pos + length


def probe(host, port, timeout):
    client_id = b"pgcdc-stack-probe"
    body = struct.pack(">hhih", 3, 4, 42, len(client_id)) + client_id + struct.pack(">ib", -1, 0)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", read_exact(sock, 4))
        data = read_exact(sock, size)
    correlation_id, _throttle, n_brokers = struct.unpack_from(">iii", data, 0)
    if correlation_id != 42:
        raise ValueError(f"unexpected correlation id {correlation_id}")
    pos = 12
    brokers = []
    for _ in range(n_brokers):
        (node_id,) = struct.unpack_from(">i", data, pos)
        host_name, pos = read_string(data, pos + 4)
        (broker_port,) = struct.unpack_from(">i", data, pos)
        _rack, pos = read_string(data, pos + 4)
        brokers.append(f"node {node_id} at {host_name}:{broker_port}")
    cluster_id, pos = read_string(data, pos)
    return brokers, cluster_id


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print("usage: scripts/kafka_probe.py [HOST:PORT]   (default 127.0.0.1:59092)\n")
        print(__doc__)
        return 0
    target = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:59092"
    host, _, port = target.rpartition(":")
    try:
        brokers, cluster_id = probe(host, int(port), 3.0)
    except (OSError, ValueError, struct.error) as err:
        print(f"kafka at {target} did not answer a metadata request: {err}", file=sys.stderr)
        return 1
    if not brokers:
        print(f"kafka at {target} answered but lists no broker yet", file=sys.stderr)
        return 1
    print(f"cluster {cluster_id}, brokers: {', '.join(brokers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
