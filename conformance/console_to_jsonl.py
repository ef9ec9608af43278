#!/usr/bin/env python3
"""Turn Kafka ConsoleConsumer output into the conformance recording format (JSON lines).

conformance/record consumes each Debezium topic with ConsoleConsumer (ConsoleConsumer cannot
print the topic name, so one file per topic) and calls this with `topic=file` arguments. Each
input line is, tab-separated (JsonConverter output never contains a raw tab or newline):

    CreateTime:1795448399268  Partition:0  Offset:0  k1:v1,k2:v2 (or NO_HEADERS)  <key JSON>  <value JSON>

Each output line is one record:

    {"topic": ..., "partition": 0, "offset": 0, "headers": {...}, "key": <JSON or null>, "value": <JSON or null>}

Records of all topics are merged into the order Debezium produced them: by producer timestamp,
then by the WAL position (source.lsn; a tombstone takes its delete's), then by topic and offset.
Key and value are copied as Kafka holds them, byte for byte (Jackson's number forms such as
`1.0E300` included), not re-serialized.
"""
import json
import sys


def parse_line(topic, line):
    fields = line.rstrip("\n").split("\t")
    if len(fields) != 6:
        raise SystemExit(f"{topic}: expected 6 tab-separated fields, got {len(fields)}: {line[:200]!r}")
    created, partition, offset, headers, key, value = fields
    header_map = {}
    if headers != "NO_HEADERS":
        for pair in headers.split(","):
            name, _, header_value = pair.partition(":")
            header_map[name] = header_value
    return {
        "topic": topic,
        "partition": int(partition.removeprefix("Partition:")),
        "offset": int(offset.removeprefix("Offset:")),
        "headers": header_map,
        "key": key,
        "value": value,
        "_parsed_value": json.loads(value),
        "_created": int(created.split(":", 1)[1]),
    }


def source_lsn(record):
    value = record["_parsed_value"]
    if isinstance(value, dict):
        source = (value.get("payload") or {}).get("source") or {}
        return source.get("lsn")
    return None


def main(args):
    records = []
    for arg in args:
        topic, _, path = arg.partition("=")
        previous_lsn = 0
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    continue
                record = parse_line(topic, line)
                lsn = source_lsn(record)
                previous_lsn = lsn if lsn is not None else previous_lsn
                record["_lsn"] = previous_lsn
                records.append(record)
    records.sort(key=lambda r: (r["_created"], r["_lsn"], r["topic"], r["offset"]))
    for record in records:
        json.loads(record["key"])  # fail here, not in a reader, on anything that is not JSON
        head = {name: record[name] for name in ("topic", "partition", "offset", "headers")}
        print(json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
              + f',"key":{record["key"]},"value":{record["value"]}}}')


if __name__ == "__main__":
    main(sys.argv[1:])
