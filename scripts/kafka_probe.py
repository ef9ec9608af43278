#!/usr/bin/env python3
"""Ask a Kafka broker for its metadata, speaking the wire protocol directly (no client needed).

scripts/stack uses this to know that the broker really answers, before any Rust is built.
It sends one MetadataRequest v4 (the oldest version Kafka 4.x still accepts) for all topics and
prints the brokers and the cluster id. Exit 0 when the broker answered, 1 otherwise.
HOST:PORT may be a comma-separated list (a three-broker stack): the first that answers counts.
With `--partitions REGEX`, it prints, for each topic matching REGEX, each partition's leader,
replicas and in-sync replicas instead (scripts/stack status with three brokers).

Wire format (big-endian):
    request  = int32 size, int16 api_key(3), int16 api_version(4), int32 correlation_id,
               int16+bytes client_id, int32 topics(-1 = all), int8 allow_auto_topic_creation
    response = int32 size, int32 correlation_id, int32 throttle_ms,
               int32 n_brokers, n * (int32 node_id, string host, int32 port, nullable string rack),
               nullable string cluster_id, int32 controller_id, ...
"""
import re
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
    pos += 4  # controller_id
    (n_topics,) = struct.unpack_from(">i", data, pos)
    pos += 4
    topics = []
    for _ in range(n_topics):
        (_error,) = struct.unpack_from(">h", data, pos)
        name, pos = read_string(data, pos + 2)
        pos += 1  # is_internal
        (n_partitions,) = struct.unpack_from(">i", data, pos)
        pos += 4
        partitions = []
        for _ in range(n_partitions):
            _perr, index, leader = struct.unpack_from(">hii", data, pos)
            pos += 10
            lists = []
            for _ in range(2):  # replicas, isr
                (count,) = struct.unpack_from(">i", data, pos)
                pos += 4
                lists.append(list(struct.unpack_from(f">{count}i", data, pos)))
                pos += 4 * count
            partitions.append((index, leader, lists[0], lists[1]))
        topics.append((name, sorted(partitions)))
    return brokers, cluster_id, sorted(topics)


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print("usage: scripts/kafka_probe.py [HOST:PORT]   (default 127.0.0.1:59092)\n")
        print(__doc__)
        return 0
    args = sys.argv[1:]
    pattern = None
    if "--partitions" in args:
        at = args.index("--partitions")
        pattern = re.compile(args[at + 1] if at + 1 < len(args) else ".")
        del args[at:at + 2]
    target = args[0] if args else "127.0.0.1:59092"
    answer, errors = None, []
    for one in target.split(","):
        host, _, port = one.rpartition(":")
        try:
            answer = probe(host, int(port), 3.0)
            break
        except (OSError, ValueError, struct.error) as err:
            errors.append(f"{one}: {err}")
    if answer is None:
        print(f"kafka at {target} did not answer a metadata request: {'; '.join(errors)}", file=sys.stderr)
        return 1
    brokers, cluster_id, topics = answer
    if pattern is not None:
        for name, partitions in topics:
            if name.startswith("__") or not pattern.search(name):
                continue
            for index, leader, replicas, isr in partitions:
                print(f"{name}/{index}: leader {leader}, replicas {replicas}, in sync {isr}")
        return 0
    if not brokers:
        print(f"kafka at {target} answered but lists no broker yet", file=sys.stderr)
        return 1
    print(f"cluster {cluster_id}, brokers: {', '.join(brokers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
