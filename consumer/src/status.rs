//! `cargo run -p consumer -- status`: where the projections are, as
//! `kafka-consumer-groups --describe` shows a group, but from the positions that count (the
//! ones stored in PostgreSQL with the projections).
//!
//! ```text
//! consumer order-projections-cdc
//! TOPIC                     PARTITION  STORED-OFFSET  LOG-END-OFFSET  LAG
//! dbserver1.public.orders           0          18342           18400   58
//! order_totals: 97 rows, order_status_totals: 4 rows, ...
//! ```

use anyhow::Context;

use crate::config::ConsumerArgs;
use crate::{kafka, offsets, store};

/// One partition's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    /// `None`: nothing stored yet (the consumer would start at the earliest offset).
    pub stored_offset: Option<i64>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

impl PartitionStatus {
    pub fn lag(&self) -> i64 {
        (self.log_end_offset - self.stored_offset.unwrap_or(self.log_start_offset)).max(0)
    }
}

/// The status of every partition of the consumer's topics.
pub async fn partitions(
    database_url: &str,
    args: &ConsumerArgs,
) -> anyhow::Result<Vec<PartitionStatus>> {
    let pool = db::connect(database_url, 1).await?;
    store::require_tables(&pool).await?;
    let consumer_name = args.consumer_name();
    let topics = args.topics();
    let stored = offsets::load(&pool, &consumer_name, &topics)
        .await
        .context("cannot load the stored offsets")?;
    pool.close().await;
    let consumer = kafka::base_consumer(&args.bootstrap_servers)?;
    let marks = kafka::watermarks(&consumer, &topics)?;
    Ok(marks
        .into_iter()
        .map(|((topic, partition), (low, high))| PartitionStatus {
            stored_offset: stored.get(&(topic.clone(), partition)).copied(),
            topic,
            partition,
            log_start_offset: low,
            log_end_offset: high,
        })
        .collect())
}

/// Prints the status table and the projections' row counts.
pub async fn print(database_url: &str, args: &ConsumerArgs) -> anyhow::Result<()> {
    let lines = partitions(database_url, args).await?;
    println!(
        "consumer {} (database {})",
        args.consumer_name(),
        db::describe(database_url)
    );
    println!(
        "{:<32} {:>9} {:>14} {:>15} {:>10}",
        "TOPIC", "PARTITION", "STORED-OFFSET", "LOG-END-OFFSET", "LAG"
    );
    for line in &lines {
        let stored = line
            .stored_offset
            .map(|o| o.to_string())
            .unwrap_or_else(|| "-".to_string());
        println!(
            "{:<32} {:>9} {:>14} {:>15} {:>10}",
            line.topic,
            line.partition,
            stored,
            line.log_end_offset,
            line.lag()
        );
    }
    let pool = db::connect(database_url, 1).await?;
    for (table, rows) in store::row_counts(&pool).await? {
        println!("{table}: {rows} rows");
    }
    pool.close().await;
    Ok(())
}
