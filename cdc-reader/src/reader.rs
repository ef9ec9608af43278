//! Putting the reader together: connect, prepare slot and publication, stream, shut down.
//!
//! This is what `cargo run -p cdc-reader` runs; the pieces it calls are each in their own
//! module (see the crate's module map).

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::catalog::Catalog;
use crate::changes::ChangeTranslator;
use crate::config::{DecimalHandlingArg, ReaderArgs, SinkKind};
use crate::envelope::{DecimalHandling, EnvelopeConfig};
use crate::lsn::Lsn;
use crate::outbox::OutboxConfig;
use crate::replication::connection::{ConnectionTarget, ReplicationConnection};
use crate::replication::slot::{self, PublishedTables};
use crate::sink::kafka::{KafkaSink, KafkaSinkConfig};
use crate::sink::stdout::StdoutSink;
use crate::sink::Sink;
use crate::stream::{Stream, StreamEnd, StreamSettings, StreamStats};
use crate::ReaderError;

/// What a run did, for the last log line.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub end: StreamEnd,
    pub started_at: Lsn,
    pub stats: StreamStats,
}

/// The envelope settings the flags ask for.
pub fn envelope_config(args: &ReaderArgs) -> EnvelopeConfig {
    EnvelopeConfig {
        topic_prefix: args.topic_prefix.clone(),
        schemas_enabled: !args.no_schemas,
        decimal_handling: match args.decimal_handling {
            DecimalHandlingArg::Precise => DecimalHandling::Precise,
            DecimalHandlingArg::Double => DecimalHandling::Double,
            DecimalHandlingArg::String => DecimalHandling::String,
        },
        tombstones_on_delete: !args.no_tombstones,
        ..EnvelopeConfig::default()
    }
}

/// The Outbox Event Router's settings, or None when `--outbox-table none`.
pub fn outbox_config(args: &ReaderArgs) -> Option<OutboxConfig> {
    if args.outbox_table.eq_ignore_ascii_case("none") {
        return None;
    }
    let table = if args.outbox_table.contains('.') {
        args.outbox_table.clone()
    } else {
        format!("public.{}", args.outbox_table)
    };
    Some(OutboxConfig {
        table,
        topic_replacement: args.outbox_topic_replacement.clone(),
        ..OutboxConfig::default()
    })
}

/// Fails early, with the fix, when Kafka does not answer.
fn check_kafka(bootstrap: &str) -> Result<(), ReaderError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| ReaderError::Kafka(format!("bad Kafka settings: {e}")))?;
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| {
            ReaderError::Kafka(format!(
            "Kafka at {bootstrap} does not answer ({e}). Start it with `scripts/stack up`, set \
             KAFKA_BOOTSTRAP_SERVERS, or use --sink stdout"
        ))
        })?;
    Ok(())
}

/// Runs the reader until `shutdown` resolves (or `--until-lsn` is reached).
pub async fn run(
    args: ReaderArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<RunSummary, ReaderError> {
    match args.sink {
        SinkKind::Kafka => {
            check_kafka(&args.kafka_bootstrap_servers)?;
            let mut sink = KafkaSink::new(KafkaSinkConfig {
                bootstrap_servers: args.kafka_bootstrap_servers.clone(),
                partitions: args.topic_partitions,
                replication_factor: args.topic_replication_factor,
                compression: args.kafka_compression.clone(),
                properties: args.kafka_properties.clone(),
            })?;
            run_with_sink(&args, &mut sink, shutdown).await
        }
        SinkKind::Stdout => {
            let mut sink = StdoutSink::new(args.pretty);
            run_with_sink(&args, &mut sink, shutdown).await
        }
    }
}

/// Runs the reader into any sink.
pub async fn run_with_sink<S: Sink>(
    args: &ReaderArgs,
    sink: &mut S,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<RunSummary, ReaderError> {
    let url = &args.database.database_url;
    let target = ConnectionTarget::from_url(url)?;
    let mut connection = ReplicationConnection::connect(&target, "cdc-reader")
        .await
        .map_err(|e| slot::explain_connect_error(&target.user, &target.describe(), e))?;
    slot::check_wal_level(&mut connection).await?;
    let tables = if args.all_tables {
        PublishedTables::All
    } else {
        PublishedTables::List(args.tables.clone())
    };
    slot::ensure_publication(&mut connection, &args.publication_name, &tables).await?;

    let (start, created) = match slot::slot_state(&mut connection, &args.slot_name).await? {
        Some(state) => {
            tracing::info!(slot = %args.slot_name, confirmed_flush_lsn = %state.confirmed_flush_lsn, "resuming from the slot");
            (state.confirmed_flush_lsn, false)
        }
        None => {
            let created = slot::create_slot(&mut connection, &args.slot_name, false).await?;
            tracing::info!(slot = %args.slot_name, consistent_point = %created.consistent_point, "created the slot");
            (created.consistent_point, true)
        }
    };

    let catalog = Catalog::connect(url).await?;
    let mut config = envelope_config(args);
    config.database = target.database.clone();
    let mut translator = ChangeTranslator::new(config, catalog, outbox_config(args));
    let command =
        slot::start_replication_command(&args.slot_name, start, &args.publication_name, true);
    let (reader, writer) = connection.start_streaming(&command).await?;
    tracing::info!(slot = %args.slot_name, publication = %args.publication_name, from = %start, "streaming");

    let settings = StreamSettings {
        status_interval: args.status_interval,
        until_lsn: args.until_lsn,
    };
    let mut stream = Stream::new(reader, writer, sink, &mut translator, start, settings);
    let outcome = stream.run(shutdown).await;
    let stats = stream.stats.clone();
    drop(stream);

    if created && args.drop_slot_on_exit {
        let mut connection = ReplicationConnection::connect(&target, "cdc-reader").await?;
        slot::drop_slot(&mut connection, &args.slot_name).await?;
        tracing::info!(slot = %args.slot_name, "dropped the slot this run created (--drop-slot-on-exit)");
    }
    let end = outcome?;
    Ok(RunSummary {
        end,
        started_at: start,
        stats,
    })
}
