//! Kafka goes away while the reader runs, then comes back: the reader waits, confirms nothing
//! that Kafka does not have, and delivers everything once Kafka is back.
//!
//! The test starts a broker of its own (the jars `scripts/stack up` fetched, in
//! `.playground/kafka/lib`), on free ports, so stopping it disturbs nobody else.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{confirmed_flush_lsn, current_wal_lsn, reader_args, slot_name, unique_prefix};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A throwaway single-node KRaft broker.
struct PrivateKafka {
    dir: PathBuf,
    port: u16,
    process: Option<Child>,
}

impl PrivateKafka {
    fn classpath() -> String {
        let play = std::env::var("PLAYGROUND_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join(".playground"));
        format!("{}/*", play.join("kafka/lib").display())
    }

    fn java(&self) -> Command {
        let mut command = Command::new("java");
        command
            .arg("-Xmx384m")
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                repo_root()
                    .join("scripts/kafka/log4j2.properties")
                    .display()
            ))
            .args(["-cp", &Self::classpath()]);
        command
    }

    fn format(name: &str) -> PrivateKafka {
        let dir = std::env::temp_dir().join(format!("pgcdc-{}", db::testing::unique_name(name)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (port, controller) = (free_port(), free_port());
        let properties = format!(
            "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.bootstrap.servers=127.0.0.1:{controller}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port}\ncontroller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\nlistener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
             log.dirs={}\nnum.partitions=1\noffsets.topic.replication.factor=1\noffsets.topic.num.partitions=1\n\
             transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n\
             share.coordinator.state.topic.replication.factor=1\nshare.coordinator.state.topic.min.isr=1\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("server.properties"), properties).unwrap();
        let kafka = PrivateKafka {
            dir,
            port,
            process: None,
        };
        let status = kafka
            .java()
            .args([
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                "pgcdcOutageTestCluster",
                "-c",
            ])
            .arg(kafka.dir.join("server.properties"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("java runs");
        assert!(status.success(), "formatting the private broker's storage");
        kafka
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("kafka.log")).unwrap();
        let child = self
            .java()
            .arg("kafka.Kafka")
            .arg(self.dir.join("server.properties"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the private broker");
        self.process = Some(child);
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while consumer
            .fetch_metadata(None, Duration::from_secs(2))
            .map(|m| m.brokers().is_empty())
            .unwrap_or(true)
        {
            assert!(
                Instant::now() < deadline,
                "the private broker did not come up"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn count_records(bootstrap: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .map(|(low, high)| high - low)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_waits_out_a_kafka_outage_and_loses_nothing() {
    let name = "reader_kafka_outage";
    let prefix = unique_prefix(name);
    let mut kafka = PrivateKafka::format(name);
    kafka.start();
    let (url, pool) = db::testing::fresh_database(name).await.unwrap();
    let bootstrap = kafka.bootstrap();
    let mut args = reader_args(name, &prefix, &url, &[]);
    args.kafka_bootstrap_servers = bootstrap.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(cdc_reader::reader::run(args, async {
        let _ = stopped.await;
    }));
    let slot = slot_name(name);
    common::wait_until_streaming(&pool, &slot).await;
    let topic = format!("{prefix}.public.orders");

    let insert = |n: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query("INSERT INTO orders (customer_id, total) SELECT g, 1.00 FROM generate_series(1, $1) g")
                .bind(n)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    insert(50).await;
    let before_outage = current_wal_lsn(&pool).await.0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while confirmed_flush_lsn(&pool, &slot).await < before_outage {
        assert!(
            Instant::now() < deadline,
            "the first rows were never confirmed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Kafka goes away; the database keeps changing.
    kafka.stop();
    let confirmed_at_outage = confirmed_flush_lsn(&pool, &slot).await;
    insert(100).await;
    let written = current_wal_lsn(&pool).await.0;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let confirmed_during = confirmed_flush_lsn(&pool, &slot).await;
    assert!(
        confirmed_during < written,
        "the slot moved to {confirmed_during} past the undelivered rows (written up to {written}, \
         confirmed {confirmed_at_outage} when Kafka stopped)"
    );
    assert!(
        !reader.is_finished(),
        "the reader waits for Kafka instead of giving up"
    );

    // Kafka is back: everything arrives, and the slot moves on.
    kafka.start();
    let deadline = Instant::now() + Duration::from_secs(90);
    while confirmed_flush_lsn(&pool, &slot).await < written {
        assert!(
            Instant::now() < deadline,
            "the slot never caught up after Kafka came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        count_records(&bootstrap, &topic),
        150,
        "every row once (the reader never restarted)"
    );
    let _ = stop.send(());
    reader.await.unwrap().expect("clean shutdown");
    common::drop_slot(&pool, &common::slot_name(name)).await;
}
