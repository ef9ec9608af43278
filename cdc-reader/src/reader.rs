//! Putting the reader together: connect, prepare slot and publication, stream, shut down.
//!
//! This is what `cargo run -p cdc-reader` runs; the pieces it calls are each in their own
//! module (see the crate's module map).

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::catalog::Catalog;
use crate::changes::ChangeTranslator;
use crate::config::{DecimalHandlingArg, ReaderArgs, SinkKind, SnapshotMode};
use crate::envelope::{DecimalHandling, EnvelopeConfig};
use crate::lsn::Lsn;
use crate::outbox::OutboxConfig;
use crate::replication::connection::{ConnectionTarget, ReplicationConnection};
use crate::replication::slot::{self, PublishedTables};
use crate::sink::kafka::{KafkaSink, KafkaSinkConfig};
use crate::sink::stdout::StdoutSink;
use crate::sink::Sink;
use crate::snapshot;
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
    let mut config = EnvelopeConfig {
        topic_prefix: args.topic_prefix.clone(),
        schemas_enabled: !args.no_schemas,
        decimal_handling: match args.decimal_handling {
            DecimalHandlingArg::Precise => DecimalHandling::Precise,
            DecimalHandlingArg::Double => DecimalHandling::Double,
            DecimalHandlingArg::String => DecimalHandling::String,
        },
        tombstones_on_delete: !args.no_tombstones,
        ..EnvelopeConfig::default()
    };
    args.record_options.apply_to(&mut config);
    config
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

/// The tables to snapshot: `--tables`, or every table of the publication with `--all-tables`.
async fn snapshot_tables(
    connection: &mut ReplicationConnection,
    args: &ReaderArgs,
) -> Result<Vec<String>, ReaderError> {
    if !args.all_tables {
        return Ok(args
            .tables
            .iter()
            .map(|t| {
                if t.contains('.') {
                    t.clone()
                } else {
                    format!("public.{t}")
                }
            })
            .collect());
    }
    let rows = connection
        .simple_query(&format!(
            "SELECT schemaname || '.' || tablename AS name FROM pg_publication_tables WHERE pubname = {} ORDER BY 1",
            slot::quote_literal(&args.publication_name)
        ))
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.get("name").map(str::to_string))
        .collect())
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

    let catalog = Catalog::connect(url).await?;
    let snapshots = args.snapshot_mode != SnapshotMode::NoData;
    if snapshots {
        snapshot::ensure_state_table(catalog.client()).await?;
    }
    let mut existing = slot::slot_state(&mut connection, &args.slot_name).await?;
    if existing.is_some()
        && matches!(
            args.snapshot_mode,
            SnapshotMode::Initial | SnapshotMode::InitialOnly
        )
        && snapshot::unfinished(catalog.client(), &args.slot_name).await?
    {
        // Our own slot, whose snapshot was interrupted: start over (see snapshot.rs).
        tracing::warn!(slot = %args.slot_name, "the last snapshot did not finish; dropping the slot it created and snapshotting again");
        slot::drop_slot(&mut connection, &args.slot_name).await?;
        existing = None;
    }

    // (start LSN, created now, snapshot to take: Some(exported snapshot name or None))
    let (start, created, snapshot_plan) = match existing {
        Some(state) => {
            tracing::info!(slot = %args.slot_name, confirmed_flush_lsn = %state.confirmed_flush_lsn, "resuming from the slot");
            let plan = (args.snapshot_mode == SnapshotMode::Always).then_some(None);
            (state.confirmed_flush_lsn, false, plan)
        }
        None => {
            if snapshots {
                snapshot::mark_started(catalog.client(), &args.slot_name).await?;
            }
            let created = slot::create_slot(&mut connection, &args.slot_name, snapshots).await?;
            tracing::info!(slot = %args.slot_name, consistent_point = %created.consistent_point, "created the slot");
            (
                created.consistent_point,
                true,
                snapshots.then_some(created.snapshot_name),
            )
        }
    };
    // initial_only on a slot whose snapshot is done: nothing to stream.
    if args.snapshot_mode == SnapshotMode::InitialOnly && snapshot_plan.is_none() {
        tracing::info!(
            "snapshot mode initial_only and the snapshot is already done: nothing to do"
        );
        return Ok(RunSummary {
            end: StreamEnd::ReachedTarget,
            started_at: start,
            stats: StreamStats::default(),
        });
    }

    let mut config = envelope_config(args);
    config.database = target.database.clone();
    let mut translator = ChangeTranslator::new(config, catalog, outbox_config(args))
        .with_transaction_metadata(args.provide_transaction_metadata)
        .with_skipped_operations(args.record_options.skipped_operations);
    let settings = StreamSettings {
        status_interval: args.status_interval,
        until_lsn: args.until_lsn,
        heartbeat_interval: args.heartbeat_interval,
        heartbeat_action_query: args.heartbeat_action_query.clone(),
        topic_prefix: args.topic_prefix.clone(),
        schemas_enabled: !args.no_schemas,
    };

    let mut acks = sink.take_acks();
    if let Some(snapshot_name) = snapshot_plan {
        let tables = snapshot_tables(&mut connection, args).await?;
        let tx_id =
            snapshot::begin(translator.catalog().client(), snapshot_name.as_deref()).await?;
        let mut described = Vec::with_capacity(tables.len());
        for table in &tables {
            let table = snapshot::describe(translator.catalog(), table).await?;
            translator.install_table(table.relation.clone(), &table.facts);
            described.push(table);
        }
        let mut stream = Stream::new(sink, &mut acks, &mut translator, start, settings.clone());
        let rows = stream.snapshot(&described, start, tx_id).await?;
        drop(stream);
        snapshot::finish(translator.catalog().client()).await?;
        snapshot::mark_completed(translator.catalog().client(), &args.slot_name).await?;
        tracing::info!(rows, tables = described.len(), at = %start, "snapshot delivered");
        if args.snapshot_mode == SnapshotMode::InitialOnly {
            let stats = StreamStats {
                changes: rows,
                records_sent: rows,
                confirmed: start,
                ..StreamStats::default()
            };
            return Ok(RunSummary {
                end: StreamEnd::ReachedTarget,
                started_at: start,
                stats,
            });
        }
    }

    let command =
        slot::start_replication_command(&args.slot_name, start, &args.publication_name, true);
    let (reader, writer) = connection.start_streaming(&command).await?;
    tracing::info!(slot = %args.slot_name, publication = %args.publication_name, from = %start, "streaming");

    let mut stream = Stream::new(sink, &mut acks, &mut translator, start, settings);
    let outcome = stream.run(reader, writer, shutdown).await;
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
