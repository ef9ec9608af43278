//! `--group-mode`: several consumer processes, one Kafka consumer group, one set of projections.
//!
//! The default consumer is the only writer (an advisory lock, [`crate::projection_writer`])
//! and assigns every partition to itself. In group mode any number of instances with the same
//! `--group-id` subscribe to the topics and let Kafka's group protocol share the partitions
//! out (`partition.assignment.strategy=cooperative-sticky`: a rebalance moves only the
//! partitions that must move; the others keep being read). An order's changes all live in
//! one partition (the key is the order id), so the instance that owns a partition owns the
//! per-order state of its orders; only the totals rows are shared, and those only receive
//! deltas (`order_count = order_count + n`), in a fixed lock order ([`crate::apply`]).
//!
//! ```text
//! rebalance callback, ASSIGN P:  INSERT the consumer_offsets rows of P if missing (next_offset 0)
//!                                SELECT their next_offset; assign P starting there
//!                                (the partition's "expected offset": where its next batch starts)
//! rebalance callback, REVOKE P:  forget P; if a batch of P is committing, wait for its COMMIT
//!                                (a batch that has not reached COMMIT yet is abandoned there)
//! every batch transaction:       SELECT pg_try_advisory_xact_lock_shared(...)  -- no single writer
//!                                SELECT ... FROM consumer_offsets WHERE <the batch's partitions>
//!                                  ORDER BY topic, partition FOR UPDATE
//!                                -- a stored offset that is not the expected one: another member
//!                                -- applied those records meanwhile: roll back, seek to it
//! ```
//!
//! The last check is the fence: Kafka's rebalance and our transactions are not atomic, so for
//! a moment two members may both believe they own a partition. Whoever commits first moves
//! the stored offset; the other finds it moved under its row lock and rolls back. No record
//! is applied twice, whatever the timing.
//!
//! Records read across a rebalance are dropped and the owned partitions sought back to their
//! expected offsets, so a batch never holds a gap. `--replay` is refused here: a reset must
//! happen once, before the group starts (run one `consumer --replay --until-caught-up`
//! first, then start the group). Group members take the advisory lock in shared mode in
//! every batch, so a single writer and a group never write at the same time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{PgConnection, PgPool};

use crate::apply::{Applier, Writer};
use crate::config::ConsumerArgs;
use crate::consume::{
    applying, commit_to_kafka, progress_bar, read_batch, setting_up, wait_for_topics, RunState,
    SessionError,
};
use crate::dlq::{dlq_topic, DeadLetters};
use crate::kafka::{self, TopicPartition};
use crate::offsets;
use crate::projection_writer::LOCK_NAME;
use crate::record::BatchRecord;
use crate::state_cache::StateCache;

/// Longest a revocation waits for the COMMIT of a batch of its partitions.
const REVOKE_WAIT: Duration = Duration::from_secs(30);

/// Why a group member's batch must not be written.
#[derive(Debug, thiserror::Error)]
pub enum GroupFenceError {
    #[error("{0}/{1} is no longer assigned to this consumer (Kafka moved it to another group member): the batch is abandoned")]
    Revoked(String, i32),
    #[error("{topic}/{partition}: the stored offset is {stored:?}, this batch expected {expected}: another group member applied those records; seeking to the stored offset")]
    Moved {
        topic: String,
        partition: i32,
        expected: i64,
        stored: Option<i64>,
    },
    #[error("a single-instance consumer holds the projections (advisory lock `{LOCK_NAME}`): group members wait until it stops")]
    SingleWriterActive,
    #[error("cannot check the group's stored offsets: {0}")]
    Database(#[from] sqlx::Error),
}

/// The partitions Kafka assigned to this member, shared by the rebalance callback (which
/// runs inside `recv`) and the batch tasks.
#[derive(Default)]
pub struct Assignment {
    state: Mutex<AssignmentState>,
    changed: Condvar,
}

#[derive(Default)]
struct AssignmentState {
    /// Owned partition -> the stored offset its next batch starts from.
    owned: BTreeMap<TopicPartition, i64>,
    /// Partitions of the batch whose COMMIT is under way.
    committing: BTreeSet<TopicPartition>,
    /// Bumped by every assignment and revocation.
    generation: u64,
    /// A rebalance step that failed (the offsets could not be loaded): the session ends.
    failure: Option<String>,
}

impl Assignment {
    fn lock(&self) -> MutexGuard<'_, AssignmentState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Partitions now owned, starting at their stored offsets.
    pub fn assigned(&self, offsets: &BTreeMap<TopicPartition, i64>) {
        let mut state = self.lock();
        state
            .owned
            .extend(offsets.iter().map(|(tp, o)| (tp.clone(), *o)));
        state.generation += 1;
    }

    /// Partitions taken away: forgotten at once; returns once no batch of theirs is
    /// committing (or after `wait`). `true` when it had to wait.
    pub fn revoke(&self, partitions: &[TopicPartition], wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut state = self.lock();
        for tp in partitions {
            state.owned.remove(tp);
        }
        state.generation += 1;
        let mut waited = false;
        while partitions.iter().any(|tp| state.committing.contains(tp)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!("a batch of revoked partitions is still committing after {wait:?}; letting them go (the stored-offset check still fences it)");
                break;
            }
            waited = true;
            state = self
                .changed
                .wait_timeout(state, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        waited
    }

    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The owned partitions and their expected offsets.
    pub fn owned(&self) -> BTreeMap<TopicPartition, i64> {
        self.lock().owned.clone()
    }

    /// Sets the expected offset of an owned partition (after another member moved it).
    pub fn set_expected(&self, tp: &TopicPartition, next_offset: i64) {
        if let Some(expected) = self.lock().owned.get_mut(tp) {
            *expected = next_offset;
        }
    }

    fn fail(&self, why: String) {
        self.lock().failure = Some(why);
    }

    pub fn take_failure(&self) -> Option<String> {
        self.lock().failure.take()
    }

    /// Keeps the records of owned partitions at or beyond their expected offsets; the rest
    /// (partitions that moved away, records applied already) is dropped. Returns how many
    /// were dropped too.
    pub fn keep(&self, records: Vec<BatchRecord>) -> (Vec<BatchRecord>, usize) {
        let state = self.lock();
        let before = records.len();
        let kept: Vec<BatchRecord> = records
            .into_iter()
            .filter(|r| {
                state
                    .owned
                    .get(&(r.topic.clone(), r.partition))
                    .is_some_and(|expected| r.offset >= *expected)
            })
            .collect();
        let dropped = before - kept.len();
        (kept, dropped)
    }

    /// The expected offsets of `partitions`, all of which must be owned.
    pub fn expected_offsets(
        &self,
        partitions: &BTreeSet<TopicPartition>,
    ) -> Result<BTreeMap<TopicPartition, i64>, GroupFenceError> {
        let state = self.lock();
        partitions
            .iter()
            .map(|tp| match state.owned.get(tp) {
                Some(expected) => Ok((tp.clone(), *expected)),
                None => Err(GroupFenceError::Revoked(tp.0.clone(), tp.1)),
            })
            .collect()
    }

    /// Right before a batch's COMMIT: fails when one of its partitions was revoked since,
    /// else marks them committing (a revocation then waits for [`Assignment::end_commit`]).
    pub fn begin_commit(
        &self,
        partitions: &BTreeSet<TopicPartition>,
    ) -> Result<(), GroupFenceError> {
        let mut state = self.lock();
        if let Some(tp) = partitions.iter().find(|tp| !state.owned.contains_key(*tp)) {
            return Err(GroupFenceError::Revoked(tp.0.clone(), tp.1));
        }
        state.committing.extend(partitions.iter().cloned());
        Ok(())
    }

    /// After the COMMIT: with the committed next offsets when it succeeded.
    pub fn end_commit(
        &self,
        partitions: &BTreeSet<TopicPartition>,
        committed: Option<&BTreeMap<TopicPartition, i64>>,
    ) {
        let mut state = self.lock();
        for tp in partitions {
            state.committing.remove(tp);
            if let (Some(next), Some(expected)) =
                (committed.and_then(|c| c.get(tp)), state.owned.get_mut(tp))
            {
                *expected = *next;
            }
        }
        drop(state);
        self.changed.notify_all();
    }
}

/// The check at the start of every group member's batch transaction: no single writer, and
/// every partition's stored offset is the one the batch starts from (rows locked, sorted).
pub async fn check_offsets(
    tx: &mut PgConnection,
    consumer: &str,
    expected: &BTreeMap<TopicPartition, i64>,
) -> Result<(), GroupFenceError> {
    let shared: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock_shared(hashtext($1))")
        .bind(LOCK_NAME)
        .fetch_one(&mut *tx)
        .await?;
    if !shared {
        return Err(GroupFenceError::SingleWriterActive);
    }
    let topics: Vec<&str> = expected.keys().map(|(t, _)| t.as_str()).collect();
    let partitions: Vec<i32> = expected.keys().map(|(_, p)| *p).collect();
    let rows: Vec<(String, i32, i64)> = sqlx::query_as(
        "SELECT topic, partition, next_offset FROM consumer_offsets \
         WHERE consumer = $1 AND (topic, partition) IN (SELECT t, p FROM UNNEST($2::text[], $3::int[]) AS u(t, p)) \
         ORDER BY topic, partition FOR UPDATE",
    )
    .bind(consumer)
    .bind(topics)
    .bind(partitions)
    .fetch_all(&mut *tx)
    .await?;
    let stored: BTreeMap<TopicPartition, i64> =
        rows.into_iter().map(|(t, p, o)| ((t, p), o)).collect();
    verdict(expected, &stored)
}

/// The pure part of [`check_offsets`].
fn verdict(
    expected: &BTreeMap<TopicPartition, i64>,
    stored: &BTreeMap<TopicPartition, i64>,
) -> Result<(), GroupFenceError> {
    for ((topic, partition), expected) in expected {
        let found = stored.get(&(topic.clone(), *partition)).copied();
        if found != Some(*expected) {
            return Err(GroupFenceError::Moved {
                topic: topic.clone(),
                partition: *partition,
                expected: *expected,
                stored: found,
            });
        }
    }
    Ok(())
}

/// Creates the missing `consumer_offsets` rows of `partitions` (at 0: "from the log start"),
/// so the row lock of [`check_offsets`] always has a row to lock, and returns the stored
/// offsets of all of them.
pub async fn claim_offset_rows(
    pool: &PgPool,
    consumer: &str,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, i64>, sqlx::Error> {
    let topics: Vec<&str> = partitions.iter().map(|(t, _)| t.as_str()).collect();
    let numbers: Vec<i32> = partitions.iter().map(|(_, p)| *p).collect();
    sqlx::query(
        "INSERT INTO consumer_offsets (consumer, topic, partition, next_offset) \
         SELECT $1, t, p, 0 FROM UNNEST($2::text[], $3::int[]) AS u(t, p) \
         ON CONFLICT (consumer, topic, partition) DO NOTHING",
    )
    .bind(consumer)
    .bind(&topics)
    .bind(&numbers)
    .execute(pool)
    .await?;
    let unique: BTreeSet<String> = topics.iter().map(|t| t.to_string()).collect();
    let unique: Vec<String> = unique.into_iter().collect();
    let stored = offsets::load(pool, consumer, &unique).await?;
    Ok(stored
        .into_iter()
        .filter(|(tp, _)| partitions.contains(tp))
        .collect())
}

/// The rebalance callbacks: on ASSIGN the partitions start at their stored offsets; on
/// REVOKE a committing batch of theirs is waited for.
pub struct GroupContext {
    assignment: Arc<Assignment>,
    pool: PgPool,
    consumer: String,
    runtime: tokio::runtime::Handle,
}

impl ClientContext for GroupContext {}

fn partitions_of(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

fn describe(offsets: &BTreeMap<TopicPartition, i64>) -> String {
    offsets
        .iter()
        .map(|((t, p), o)| format!("{t}/{p}@{o}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        base_consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let partitions = partitions_of(tpl);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                // The callback runs inside `recv` on a runtime worker: hand the worker's
                // other tasks away while PostgreSQL answers.
                let loaded = tokio::task::block_in_place(|| {
                    self.runtime.block_on(claim_offset_rows(
                        &self.pool,
                        &self.consumer,
                        &partitions,
                    ))
                });
                let offsets = match loaded {
                    Ok(offsets) => offsets,
                    Err(error) => {
                        self.assignment.fail(format!(
                            "cannot load the stored offsets of the assigned partitions: {error}"
                        ));
                        BTreeMap::new()
                    }
                };
                for ((topic, partition), next) in &offsets {
                    if let Err(error) =
                        tpl.set_partition_offset(topic, *partition, Offset::Offset(*next))
                    {
                        self.assignment.fail(format!(
                            "cannot set the start of {topic}/{partition}: {error}"
                        ));
                    }
                }
                self.assignment.assigned(&offsets);
                if let Err(error) = base_consumer.incremental_assign(tpl) {
                    self.assignment
                        .fail(format!("cannot take the assigned partitions: {error}"));
                }
                tracing::info!("assigned {}", describe(&offsets));
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let lost = base_consumer.assignment_lost();
                let waited = tokio::task::block_in_place(|| {
                    self.assignment.revoke(&partitions, REVOKE_WAIT)
                });
                if let Err(error) = base_consumer.incremental_unassign(tpl) {
                    self.assignment
                        .fail(format!("cannot give the revoked partitions up: {error}"));
                }
                tracing::info!(
                    "revoked{} {}{}",
                    if lost { " (assignment lost)" } else { "" },
                    partitions
                        .iter()
                        .map(|(t, p)| format!("{t}/{p}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if waited {
                        " after its batch committed"
                    } else {
                        ""
                    }
                );
            }
            other => {
                self.assignment
                    .fail(format!("the consumer group's rebalance failed: {other:?}"));
            }
        }
    }
}

/// Seeks every owned partition back to its expected offset (after records were dropped).
fn seek_to_expected(
    consumer: &StreamConsumer<GroupContext>,
    assignment: &Assignment,
) -> anyhow::Result<()> {
    for ((topic, partition), expected) in assignment.owned() {
        if let Err(error) = consumer.seek(
            &topic,
            partition,
            Offset::Offset(expected),
            Duration::from_secs(5),
        ) {
            // A partition assigned a moment ago is not fetching yet, and starts at the
            // expected offset anyway.
            tracing::debug!("seek {topic}/{partition} to {expected}: {error}");
        }
    }
    Ok(())
}

/// Whether the stored offsets of every partition reached `ends` (the whole group's work).
async fn group_caught_up(
    pool: &PgPool,
    consumer: &str,
    ends: &BTreeMap<TopicPartition, i64>,
) -> anyhow::Result<bool> {
    let topics: BTreeSet<String> = ends.keys().map(|(t, _)| t.clone()).collect();
    let topics: Vec<String> = topics.into_iter().collect();
    let stored = offsets::load(pool, consumer, &topics).await?;
    Ok(ends
        .iter()
        .all(|(tp, end)| *end == 0 || stored.get(tp).copied().unwrap_or(0) >= *end))
}

/// One group session: join the group, apply the batches of whatever partitions Kafka hands
/// this member, until stopped (or, with `--until-caught-up`, until the group's stored
/// offsets reach the end offsets seen at start).
pub(crate) async fn session(
    pool: &PgPool,
    args: &ConsumerArgs,
    run: &mut RunState,
    first: bool,
) -> Result<(), SessionError> {
    let consumer_name = args.consumer_name();
    let topics = args.topics();
    let runtime = tokio::runtime::Handle::current();
    if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err(setting_up(anyhow::anyhow!(
            "--group-mode needs tokio's multi-thread runtime (its rebalance callback blocks a worker)"
        )));
    }
    let assignment = Arc::new(Assignment::default());
    let context = GroupContext {
        assignment: assignment.clone(),
        pool: pool.clone(),
        consumer: consumer_name.clone(),
        runtime,
    };
    let consumer = kafka::group_consumer(&args.bootstrap_servers, &consumer_name, context)
        .map_err(setting_up)?;
    let marks = wait_for_topics(&consumer, &topics, args.until_caught_up && first)
        .await
        .map_err(setting_up)?;
    for topic in &topics {
        kafka::ensure_topic(&args.bootstrap_servers, &dlq_topic(topic))
            .await
            .map_err(setting_up)?;
    }
    let dead_letters =
        DeadLetters::new(kafka::producer(&args.bootstrap_servers).map_err(setting_up)?);
    let topic_names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topic_names)
        .context("cannot subscribe to the topics")
        .map_err(setting_up)?;
    let ends = run
        .ends
        .get_or_insert_with(|| {
            marks
                .iter()
                .map(|(tp, (_, high))| (tp.clone(), *high))
                .collect()
        })
        .clone();
    let stored = offsets::load(pool, &consumer_name, &topics)
        .await
        .context("cannot load the stored offsets")
        .map_err(setting_up)?;
    let to_read: u64 = marks
        .iter()
        .map(|(tp, (low, high))| {
            (high - stored.get(tp).copied().unwrap_or(0).max(*low)).max(0) as u64
        })
        .sum();
    tracing::info!(
        "consumer {consumer_name} (group mode, pid {}): joining the group for {topics:?} ({} partitions, {to_read} record(s) behind)",
        std::process::id(),
        marks.len()
    );
    let progress = run
        .progress
        .get_or_insert_with(|| progress_bar(args, to_read))
        .clone();
    let mut applier = Some(Applier {
        pool: pool.clone(),
        dead_letters,
        // Other members write states too: a state is only trusted while this member owns
        // the partition without a break (forgotten at every new assignment).
        cache: StateCache::new(false),
        consumer: consumer_name.clone(),
        writer: Writer::Group(assignment.clone()),
        batches: 0,
        conflict_retries: 0,
    });
    let mut decoder = crate::record::RecordDecoder::new(&args.schema_registry_url);
    let batch_size = args.batch_size as usize;
    let mut cache_generation = assignment.generation();
    let mut read_generation = assignment.generation();
    let mut next = read_batch(&consumer, args, &mut decoder, batch_size).await;
    let mut last_check = Instant::now();
    loop {
        if let Some(failure) = assignment.take_failure() {
            return Err(applying(anyhow::anyhow!(failure)));
        }
        let Some(batch) = next.take() else {
            tracing::info!("stopping (SIGINT or SIGTERM)");
            return Ok(());
        };
        // Records read across a rebalance may hold a gap: drop them, seek back.
        let generation = assignment.generation();
        let batch = if generation != read_generation {
            seek_to_expected(&consumer, &assignment).map_err(applying)?;
            Vec::new()
        } else {
            batch
        };
        let (batch, dropped) = assignment.keep(batch);
        if dropped > 0 {
            tracing::debug!(
                "dropped {dropped} record(s) of partitions not owned or applied already"
            );
        }
        if batch.is_empty() {
            if args.until_caught_up && last_check.elapsed() > Duration::from_millis(300) {
                last_check = Instant::now();
                if group_caught_up(pool, &consumer_name, &ends)
                    .await
                    .map_err(applying)?
                {
                    return Ok(());
                }
            }
            read_generation = assignment.generation();
            next = read_batch(&consumer, args, &mut decoder, batch_size).await;
            continue;
        }
        let mut owned_applier = applier
            .take()
            .context("the applier was lost")
            .map_err(applying)?;
        if cache_generation != generation {
            owned_applier.cache.forget_all();
            cache_generation = generation;
        }
        let apply = tokio::spawn(async move {
            let done = owned_applier.apply(&batch).await;
            (owned_applier, done)
        });
        read_generation = assignment.generation();
        next = read_batch(&consumer, args, &mut decoder, batch_size).await;
        let (returned_applier, done) = apply
            .await
            .context("the batch task failed")
            .map_err(applying)?;
        applier = Some(returned_applier);
        let done = match done {
            Ok(done) => done,
            Err(error) => {
                let Some(fence) = error
                    .chain()
                    .find_map(|c| c.downcast_ref::<GroupFenceError>())
                else {
                    return Err(applying(error));
                };
                match fence {
                    GroupFenceError::Revoked(..) => tracing::info!("{fence}"),
                    GroupFenceError::Moved {
                        topic, partition, ..
                    } => {
                        tracing::warn!("{fence}");
                        let tp = (topic.clone(), *partition);
                        let stored =
                            claim_offset_rows(pool, &consumer_name, std::slice::from_ref(&tp))
                                .await
                                .context("cannot reload the stored offset")
                                .map_err(applying)?;
                        if let Some(next_offset) = stored.get(&tp) {
                            assignment.set_expected(&tp, *next_offset);
                        }
                    }
                    _ => return Err(applying(error)),
                }
                // What was read meanwhile may now hold a gap: drop it, seek back.
                next = Some(Vec::new());
                seek_to_expected(&consumer, &assignment).map_err(applying)?;
                read_generation = assignment.generation();
                continue;
            }
        };
        run.backoff.reset();
        let summary = &mut run.summary;
        summary.records += done.records;
        summary.applied += done.applied;
        summary.duplicates += done.duplicates;
        summary.tombstones += done.tombstones;
        summary.dead_letters += done.dead_letters;
        commit_to_kafka(&consumer, &done.next_offsets);
        progress.inc(done.records);
        if done.dead_letters > 0 {
            tracing::warn!(
                "{} record(s) sent to the dead-letter topic",
                done.dead_letters
            );
        }
        if !args.until_caught_up && run.last_log.elapsed() > Duration::from_secs(10) {
            tracing::info!(
                "{} records: {} applied, {} duplicates, {} dead letters; owning {}",
                summary.records,
                summary.applied,
                summary.duplicates,
                summary.dead_letters,
                describe(&assignment.owned())
            );
            run.last_log = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        ("t".to_string(), p)
    }

    #[test]
    fn a_moved_offset_refuses_the_batch() {
        let expected = BTreeMap::from([(tp(0), 10), (tp(1), 20)]);
        assert!(verdict(&expected, &expected.clone()).is_ok());
        let moved = BTreeMap::from([(tp(0), 10), (tp(1), 25)]);
        assert!(matches!(
            verdict(&expected, &moved),
            Err(GroupFenceError::Moved {
                partition: 1,
                expected: 20,
                stored: Some(25),
                ..
            })
        ));
        let forgotten = BTreeMap::from([(tp(0), 10)]);
        assert!(matches!(
            verdict(&expected, &forgotten),
            Err(GroupFenceError::Moved { stored: None, .. })
        ));
    }

    #[test]
    fn a_revoked_partition_cannot_commit_and_a_commit_moves_the_expected_offset() {
        let assignment = Assignment::default();
        assignment.assigned(&BTreeMap::from([(tp(0), 5), (tp(1), 7)]));
        let both: BTreeSet<TopicPartition> = [tp(0), tp(1)].into();
        assert!(assignment.begin_commit(&both).is_ok());
        assignment.end_commit(&both, Some(&BTreeMap::from([(tp(0), 9), (tp(1), 8)])));
        assert_eq!(assignment.owned(), BTreeMap::from([(tp(0), 9), (tp(1), 8)]));
        assert!(!assignment.revoke(&[tp(1)], Duration::from_millis(10)));
        assert!(matches!(
            assignment.begin_commit(&both),
            Err(GroupFenceError::Revoked(_, 1))
        ));
        assert!(assignment.expected_offsets(&both).is_err());
    }

    #[test]
    fn a_revocation_waits_for_the_commit_in_progress() {
        let assignment = Arc::new(Assignment::default());
        assignment.assigned(&BTreeMap::from([(tp(0), 0)]));
        let one: BTreeSet<TopicPartition> = [tp(0)].into();
        assignment.begin_commit(&one).expect("owned");
        let committer = {
            let assignment = assignment.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                assignment.end_commit(&[tp(0)].into(), Some(&BTreeMap::from([(tp(0), 3)])));
            })
        };
        let started = Instant::now();
        assert!(assignment.revoke(&[tp(0)], Duration::from_secs(5)));
        assert!(started.elapsed() >= Duration::from_millis(90));
        committer.join().expect("committer");
        assert!(assignment.owned().is_empty());
    }
}
