//! Putting the reader together: connect, prepare slot and publication, stream, shut down, and
//! connect again when PostgreSQL goes away.
//!
//! This is what `cargo run -p cdc-reader` runs; the pieces it calls are each in their own
//! module (see the crate's module map).
//!
//! ```text
//! run ─> session ──(error)──> retry::Retrier ──fatal──> stop with the fix
//!          ^                        │ retriable: log, wait (100ms, 200ms, ... 10s)
//!          └────────────────────────┘ new session: resume from the slot's confirmed_flush_lsn
//! ```

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use crate::catalog::Catalog;
use crate::changes::ChangeTranslator;
use crate::config::{DecimalHandlingArg, ReaderArgs, RecordFormat, SinkKind, SnapshotMode};
use crate::delivery::DeliveryTracker;
use crate::envelope::{DecimalHandling, EnvelopeConfig};
use crate::incremental::IncrementalSnapshots;
use crate::lsn::Lsn;
use crate::outbox::OutboxConfig;
use crate::replication::connection::{ConnectionError, ConnectionTarget, ReplicationConnection};
use crate::replication::slot::{self, PublishedTables, SlotError};
use crate::retry::{GiveUp, Retrier, RetryPolicy};
use crate::sink::avro::AvroSink;
use crate::sink::kafka::{KafkaSink, KafkaSinkConfig};
use crate::sink::stdout::StdoutSink;
use crate::sink::transforming::TransformingSink;
use crate::sink::{Ack, Sink};
use crate::snapshot;
use crate::snapshot_parallel;
use crate::stream::{Stream, StreamEnd, StreamSettings, StreamStats};
use crate::transforms::TransformChain;
use crate::ReaderError;
use schema_registry::{AvroEncoder, RegistryClient};
use tokio::sync::mpsc;

/// What a run did, for the last log line.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub end: StreamEnd,
    pub started_at: Lsn,
    pub stats: StreamStats,
    /// Replication sessions started after a lost connection.
    pub reconnects: u64,
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

/// `--signal-data-collection` names a table that exists (else: how to create it).
async fn check_signal_table(
    connection: &mut ReplicationConnection,
    table: &str,
) -> Result<(), ReaderError> {
    let rows = connection
        .simple_query(&format!(
            "SELECT to_regclass({}) IS NOT NULL AS present",
            slot::quote_literal(&slot::quote_table(table))
        ))
        .await?;
    if rows.first().and_then(|r| r.get("present")) == Some("t") {
        return Ok(());
    }
    Err(snapshot::SnapshotError::Incremental(format!(
        "the signal table {table} (--signal-data-collection) does not exist: create it with `{}`",
        crate::incremental::sql::create_signal_table_sql(table)
    ))
    .into())
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
    let transforms = TransformChain::from_args(&args)?;
    let avro = match args.format {
        RecordFormat::Json => None,
        RecordFormat::Avro => Some(avro_encoder(&args).await?),
    };
    if let Some(listen) = args.metrics_listen {
        db::metrics::serve(listen, "cdc-reader")
            .await
            .map_err(|e| ReaderError::Stream(format!("{e:#}")))?;
        tokio::spawn(crate::metrics::watch_slot(
            args.database.database_url.clone(),
            args.slot_name.clone(),
        ));
    }
    match args.sink {
        SinkKind::Kafka => {
            check_kafka(&args.kafka_bootstrap_servers)?;
            let sink = KafkaSink::new(KafkaSinkConfig {
                bootstrap_servers: args.kafka_bootstrap_servers.clone(),
                partitions: args.topic_partitions,
                replication_factor: args.topic_replication_factor,
                compression: args.kafka_compression.clone(),
                properties: args.kafka_properties.clone(),
            })?;
            match avro {
                // --unwrap, --route-* run first, on the JSON records; then Avro.
                Some(encoder) => {
                    let mut sink = TransformingSink::new(AvroSink::new(sink, encoder), transforms);
                    run_with_sink(&args, &mut sink, shutdown).await
                }
                None => {
                    let mut sink = TransformingSink::new(sink, transforms);
                    run_with_sink(&args, &mut sink, shutdown).await
                }
            }
        }
        SinkKind::Stdout => {
            if avro.is_some() {
                return Err(ReaderError::Registry(
                    "--format avro writes binary records: use it with --sink kafka (topic-peek shows them as JSON)".into(),
                ));
            }
            let mut sink = TransformingSink::new(StdoutSink::new(args.pretty), transforms);
            run_with_sink(&args, &mut sink, shutdown).await
        }
    }
}

/// `--format avro`: the encoder for the registry, which must answer now (one line with the fix
/// when it does not). Avro needs the schemas, so `--no-schemas` is refused.
async fn avro_encoder(args: &ReaderArgs) -> Result<AvroEncoder, ReaderError> {
    if args.no_schemas {
        return Err(ReaderError::Registry(
            "--format avro needs the records' schemas: drop --no-schemas".into(),
        ));
    }
    let client = RegistryClient::new(&args.schema_registry_url);
    client
        .check_reachable()
        .await
        .map_err(|e| ReaderError::Registry(e.to_string()))?;
    Ok(AvroEncoder::new(client))
}

/// The retry settings the flags ask for.
pub fn retry_policy(args: &ReaderArgs) -> RetryPolicy {
    RetryPolicy::from_flags(
        args.max_retries,
        args.retry_backoff,
        args.retry_backoff_max,
        args.connection_timeout,
    )
}

/// What carries over from one replication session to the next.
#[derive(Debug, Default)]
struct RunState {
    /// The first session got through the one-time checks (wal_level, publication, state
    /// table): later sessions skip them.
    prepared: bool,
    /// A replication connection of this run held the slot (created it, or streamed from it):
    /// a busy slot is then most likely our own old walsender, not another reader.
    held_slot: bool,
    /// This run streamed from the slot (or finished a snapshot on it): a missing slot now
    /// means somebody dropped it.
    slot_in_use: bool,
    /// This run created the slot (for --drop-slot-on-exit).
    created_slot: bool,
    /// The snapshot this run was to take is delivered.
    snapshot_done: bool,
    started_at: Option<Lsn>,
    stats: StreamStats,
    reconnects: u64,
}

/// Runs the reader into any sink: replication sessions, one after another, until shutdown,
/// `--until-lsn`, or an error retrying cannot fix. A session connects, resumes from the slot
/// and streams; when PostgreSQL goes away it ends with an error, and [`Retrier`] says whether
/// and when to start the next one. The sink, its acknowledgement channel and the delivery
/// tracker live across sessions.
pub async fn run_with_sink<S: Sink>(
    args: &ReaderArgs,
    sink: &mut S,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<RunSummary, ReaderError> {
    let target = ConnectionTarget::from_url(&args.database.database_url)?;
    let mut acks = sink.take_acks();
    let mut tracker = DeliveryTracker::new(Lsn::ZERO);
    let mut state = RunState::default();
    let mut retrier = Retrier::new(retry_policy(args));
    tokio::pin!(shutdown);
    let outcome = loop {
        let frames_before = state.stats.frames_received;
        let result = session(
            args,
            &target,
            sink,
            &mut acks,
            &mut tracker,
            &mut state,
            shutdown.as_mut(),
        )
        .await;
        if state.stats.frames_received > frames_before {
            retrier.recovered(); // that session streamed: the next failure starts afresh
        }
        let error = match result {
            Ok(StreamEnd::ServerEnded) => {
                tracing::warn!("the server ended the replication stream (is it shutting down?)");
                ReaderError::Connection(ConnectionError::Closed)
            }
            Ok(end) => break Ok(end),
            Err(error) => error,
        };
        crate::metrics::error(error.kind());
        match retrier.decide(&error, state.held_slot, Instant::now()) {
            Ok(wait) => {
                tracing::warn!(
                    attempt = wait.attempt,
                    max_retries = %retrier.policy().limit(),
                    %error,
                    "lost PostgreSQL: retrying in {:?}, waiting for {}; then reconnecting and \
                     resuming from the slot",
                    wait.delay,
                    wait.waiting_for
                );
                tokio::select! {
                    _ = shutdown.as_mut() => break Ok(StreamEnd::Shutdown),
                    _ = tokio::time::sleep(wait.delay) => {}
                }
                state.reconnects += 1;
            }
            Err(GiveUp::OutOfRetries(max)) => {
                tracing::error!(
                    max_retries = max,
                    "giving up: {max} reconnect attempts in a row failed (--max-retries)"
                );
                break Err(error);
            }
            Err(GiveUp::Fatal | GiveUp::SlotStaysBusy) => break Err(error),
        }
    };

    if state.created_slot && args.drop_slot_on_exit {
        let dropped = async {
            let mut connection = ReplicationConnection::connect_with_timeout(
                &target,
                "cdc-reader",
                args.connection_timeout,
            )
            .await?;
            slot::drop_slot(&mut connection, &args.slot_name).await
        }
        .await;
        match dropped {
            Ok(()) => {
                tracing::info!(slot = %args.slot_name, "dropped the slot this run created (--drop-slot-on-exit)")
            }
            Err(drop_error) if outcome.is_err() => {
                tracing::warn!(slot = %args.slot_name, error = %drop_error, "could not drop the slot this run created")
            }
            Err(drop_error) => return Err(drop_error.into()),
        }
    }
    let end = outcome?;
    if state.reconnects > 0 {
        tracing::info!(
            reconnects = state.reconnects,
            stale_acks = tracker.stale_acks(),
            "this run rode out lost connections"
        );
    }
    Ok(RunSummary {
        end,
        started_at: state.started_at.unwrap_or(Lsn::ZERO),
        stats: state.stats,
        reconnects: state.reconnects,
    })
}

fn stream_settings(args: &ReaderArgs) -> StreamSettings {
    StreamSettings {
        status_interval: args.status_interval,
        until_lsn: args.until_lsn,
        heartbeat_interval: args.heartbeat_interval,
        heartbeat_action_query: args.heartbeat_action_query.clone(),
        topic_prefix: args.topic_prefix.clone(),
        schemas_enabled: !args.no_schemas,
        connection_timeout: args.connection_timeout,
    }
}

/// One replication session: connect (replication and catalog connections), find or create the
/// slot, take the snapshot when one is due, stream from the slot's confirmed_flush_lsn.
///
/// A connection lost during the initial snapshot needs nothing special: the next session finds
/// the snapshot unfinished, drops the slot this reader created and starts over (the rows
/// already sent come again).
async fn session<S: Sink, F: std::future::Future<Output = ()>>(
    args: &ReaderArgs,
    target: &ConnectionTarget,
    sink: &mut S,
    acks: &mut mpsc::UnboundedReceiver<Ack>,
    tracker: &mut DeliveryTracker,
    state: &mut RunState,
    shutdown: std::pin::Pin<&mut F>,
) -> Result<StreamEnd, ReaderError> {
    let url = &args.database.database_url;
    let timeout = args.connection_timeout;
    let mut connection = ReplicationConnection::connect_with_timeout(target, "cdc-reader", timeout)
        .await
        .map_err(|e| slot::explain_connect_error(&target.user, &target.describe(), e))?;
    let snapshots = args.snapshot_mode != SnapshotMode::NoData;
    let catalog = if state.prepared {
        Catalog::connect_with_timeout(url, timeout).await?
    } else {
        slot::check_wal_level(&mut connection).await?;
        let tables = if args.all_tables {
            PublishedTables::All
        } else {
            // The signal table is published too: its inserted rows are the signals.
            PublishedTables::List(
                args.tables
                    .iter()
                    .chain(&args.signal_data_collection)
                    .cloned()
                    .collect(),
            )
        };
        if let Some(signal_table) = &args.signal_data_collection {
            check_signal_table(&mut connection, signal_table).await?;
        }
        slot::ensure_publication(&mut connection, &args.publication_name, &tables).await?;
        let catalog = Catalog::connect_with_timeout(url, timeout).await?;
        if snapshots {
            snapshot::ensure_state_table(catalog.client()).await?;
        }
        state.prepared = true;
        catalog
    };

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
    } else if existing.is_none() && state.slot_in_use {
        return Err(SlotError::Dropped(args.slot_name.clone()).into());
    }

    let resumed = existing.is_some();
    // (start LSN, snapshot to take: Some(exported snapshot name or None))
    let (start, snapshot_plan) = match existing {
        Some(slot_state) => {
            tracing::info!(slot = %args.slot_name, confirmed_flush_lsn = %slot_state.confirmed_flush_lsn, "resuming from the slot");
            let plan = (args.snapshot_mode == SnapshotMode::Always && !state.snapshot_done)
                .then_some(None);
            (slot_state.confirmed_flush_lsn, plan)
        }
        None => {
            if snapshots {
                snapshot::mark_started(catalog.client(), &args.slot_name).await?;
            }
            let created = slot::create_slot(&mut connection, &args.slot_name, snapshots).await?;
            state.created_slot = true;
            state.held_slot = true;
            tracing::info!(slot = %args.slot_name, consistent_point = %created.consistent_point, "created the slot");
            (
                created.consistent_point,
                snapshots.then_some(created.snapshot_name),
            )
        }
    };
    state.started_at.get_or_insert(start);
    // initial_only on a slot whose snapshot is done: nothing to stream.
    if args.snapshot_mode == SnapshotMode::InitialOnly && snapshot_plan.is_none() {
        tracing::info!(
            "snapshot mode initial_only and the snapshot is already done: nothing to do"
        );
        return Ok(StreamEnd::ReachedTarget);
    }

    // Whatever was in flight in an earlier session comes again from the server.
    tracker.restart_at(start);
    let mut config = envelope_config(args);
    config.database = target.database.clone();
    let mut translator = ChangeTranslator::new(config, catalog, outbox_config(args))
        .with_transaction_metadata(args.provide_transaction_metadata)
        .with_skipped_operations(args.record_options.skipped_operations);
    if resumed {
        translator = translator.resuming_at(start);
    }
    let settings = stream_settings(args);

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
        // The snapshot's `source.ts_ms`: when it began.
        let started_us = crate::changes::now_micros();
        let parallel = if args.snapshot_max_threads > 1 {
            let builders = described
                .iter()
                .map(|table| {
                    translator.snapshot_row_builder(table.relation.id, start, tx_id, started_us)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let client = translator.catalog().client();
            // The slot's exported snapshot, or (snapshot mode always) one exported now.
            let name = match snapshot_name.clone() {
                Some(name) => name,
                None => snapshot::export(client).await?,
            };
            let reads = snapshot_parallel::start(
                client,
                url,
                timeout,
                &name,
                &described,
                builders,
                args.snapshot_max_threads as usize,
            )
            .await?;
            Some(reads)
        } else {
            None
        };
        let mut stream = Stream::new(sink, acks, &mut translator, tracker, settings.clone());
        let rows = stream
            .snapshot_with(&described, start, tx_id, started_us, parallel)
            .await?;
        drop(stream);
        snapshot::finish(translator.catalog().client()).await?;
        snapshot::mark_completed(translator.catalog().client(), &args.slot_name).await?;
        state.snapshot_done = true;
        state.slot_in_use = true;
        tracing::info!(rows, tables = described.len(), at = %start, "snapshot delivered");
        state.stats.add(&StreamStats {
            changes: rows,
            records_sent: rows,
            confirmed: start,
            ..StreamStats::default()
        });
        if args.snapshot_mode == SnapshotMode::InitialOnly {
            return Ok(StreamEnd::ReachedTarget);
        }
    }

    let command =
        slot::start_replication_command(&args.slot_name, start, &args.publication_name, true);
    let explain =
        |error| slot::explain_stream_error(&args.slot_name, &args.publication_name, error);
    let (reader, writer) = connection
        .start_streaming(&command)
        .await
        .map_err(explain)?;
    state.slot_in_use = true;
    state.held_slot = true;
    tracing::info!(slot = %args.slot_name, publication = %args.publication_name, from = %start, "streaming");

    let incremental = match &args.signal_data_collection {
        Some(signal_table) => Some(
            IncrementalSnapshots::start(
                translator.catalog().client(),
                &args.slot_name,
                signal_table,
                args.incremental_snapshot_chunk_size as usize,
                (!args.all_tables).then(|| args.tables.clone()),
            )
            .await?,
        ),
        None => None,
    };
    let mut stream =
        Stream::new(sink, acks, &mut translator, tracker, settings).with_incremental(incremental);
    let outcome = stream.run(reader, writer, shutdown).await;
    state.stats.add(&stream.stats);
    outcome.map_err(|error| match error {
        ReaderError::Connection(error) => explain(error).into(),
        other => other,
    })
}
