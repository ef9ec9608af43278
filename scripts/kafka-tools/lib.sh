# shellcheck shell=bash
# Kafka's own command-line tools for scripts/check_env and scripts/workshop (sourced, not run;
# source scripts/lib.sh first).
#
# Native mode has no Kafka CLI on PATH: the tools' jars come from Maven Central
# (scripts/kafka-tools/pom.xml, fetched once into .playground/kafka-tools/lib; ~2 s from the
# local Maven cache) and run on the machine's Java 17, about 1 s per call.
# Docker mode runs the same tools inside the broker's container (apache/kafka ships them).
#
#   kafka_end_offsets            every non-internal topic's partitions: `topic:partition:end-offset`
#   kafka_read_topic TOPIC [MS] [ISOLATION]
#                                every record of TOPIC: `offset<TAB>key<TAB>value` (null for a tombstone),
#                                stopping once nothing new came for MS milliseconds (default 3000);
#                                ISOLATION read_uncommitted (the Java default) or read_committed
#   kafka_tools_hint             what to do when the tools cannot run

KAFKA_TOOLS_DIR=$PLAY/kafka-tools
KAFKA_TOOLS_POM=$ROOT/scripts/kafka-tools/pom.xml

kafka_tools_mode() { if [[ -f $PLAY/mode && $(cat "$PLAY/mode") == docker ]]; then echo docker; else echo native; fi; }

kafka_tools_hint() {
  if [[ $(kafka_tools_mode) == docker ]]; then
    echo "docker compose -f $ROOT/docker-compose.yml ps kafka   (the tools run inside the kafka container)"
  else
    echo "install Java 17 and Maven (apt-get install -y openjdk-17-jre-headless maven); the jars come from Maven Central: mvn -f scripts/kafka-tools/pom.xml dependency:copy-dependencies -DoutputDirectory=.playground/kafka-tools/lib"
  fi
}

kafka_tools_jars() { # fetch the jars once (again when the pom changes)
  local lib=$KAFKA_TOOLS_DIR/lib stamp
  stamp=$(md5sum "$KAFKA_TOOLS_POM" | cut -c1-32)
  [[ -f $lib/.stamp && $(cat "$lib/.stamp") == "$stamp" ]] && return 0
  command -v java >/dev/null 2>&1 || { echo "java not found" >&2; return 1; }
  command -v mvn >/dev/null 2>&1 || { echo "mvn not found" >&2; return 1; }
  rm -rf "$lib"; mkdir -p "$lib"
  mvn -q -B -f "$KAFKA_TOOLS_POM" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$lib" >"$KAFKA_TOOLS_DIR/mvn.log" 2>&1 \
    || { echo "mvn could not fetch the Kafka tools (see $KAFKA_TOOLS_DIR/mvn.log)" >&2; return 1; }
  echo "$stamp" >"$lib/.stamp"
}

kafka_tools_java() { # a Kafka tool's main class with the fetched jars; a quick-starting JVM
  kafka_tools_jars || return 1
  java -Xms32m -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ROOT/scripts/kafka-tools/log4j2.properties" \
    -cp "$KAFKA_TOOLS_DIR/lib/*" "$@"
}

kafka_end_offsets() {
  if [[ $(kafka_tools_mode) == docker ]]; then
    docker compose -f "$ROOT/docker-compose.yml" exec -T kafka \
      /opt/kafka/bin/kafka-get-offsets.sh --bootstrap-server "127.0.0.1:$KAFKA_PORT" --exclude-internal-topics
  else
    kafka_tools_java org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$KAFKA_BOOTSTRAP_DEFAULT" \
      --exclude-internal-topics
  fi | sort -t: -k1,1 -k2,2n
}

kafka_read_topic() {
  local topic=$1 idle_ms=${2:-3000} isolation=${3:-read_uncommitted}
  local args=(--bootstrap-server "$KAFKA_BOOTSTRAP_DEFAULT" --topic "$topic" --from-beginning
    --isolation-level "$isolation"
    --timeout-ms "$idle_ms" --group "pgcdc-inspect-$$-$RANDOM"
    --formatter-property print.offset=true --formatter-property print.key=true --formatter-property print.value=true
    --formatter-property print.partition=true --formatter-property key.separator=$'\t' --formatter-property null.literal=null)
  if [[ $(kafka_tools_mode) == docker ]]; then
    args[1]="127.0.0.1:$KAFKA_PORT"
    docker compose -f "$ROOT/docker-compose.yml" exec -T kafka /opt/kafka/bin/kafka-console-consumer.sh "${args[@]}" 2>/dev/null
  else
    kafka_tools_java org.apache.kafka.tools.consumer.ConsoleConsumer "${args[@]}" 2>/dev/null
  fi
  return 0
}
