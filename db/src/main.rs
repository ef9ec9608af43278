//! `cargo run -p db -- migrate | reset --yes | status`: prepare the playground schema.
//!
//! The first step of the pipeline: the tables the producer writes and the projections fill.
//! The SQL lives in `db/migrations/`; this binary only applies it.

use anyhow::bail;
use clap::{Parser, Subcommand};
use db::DatabaseArgs;

#[derive(Debug, Parser)]
#[command(
    name = "db",
    about = "Apply, reset or inspect the playground schema",
    version
)]
struct Cli {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply every migration in db/migrations/ not applied yet (safe to run twice).
    Migrate,
    /// Drop the playground schema (all tables and rows) and migrate again.
    Reset {
        /// Confirm that every row in the playground tables may be deleted.
        #[arg(long, env = "DB_RESET_YES")]
        yes: bool,
    },
    /// Show which migrations are applied and how many rows each table holds.
    Status,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    db::init_tracing();
    let cli = Cli::parse();
    db::check_args::exit_if_only_checking("db");
    let url = &cli.database.database_url;
    let pool = db::connect(url, 2).await?;
    match cli.command {
        Command::Migrate => {
            db::migrate(&pool, url).await?;
            println!("schema is up to date in {}", db::describe(url));
        }
        Command::Reset { yes } => {
            if !yes {
                bail!(
                    "reset deletes every row of the playground tables in {}; run it again with --yes",
                    db::describe(url)
                );
            }
            db::reset(&pool, url).await?;
            println!("schema dropped and recreated in {}", db::describe(url));
        }
        Command::Status => {
            let applied: Vec<(i64, String)> = sqlx::query_as(
                "SELECT version, description FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
            println!("database {}", db::describe(url));
            for migration in db::MIGRATOR.iter() {
                let done = applied.iter().any(|(v, _)| *v == migration.version);
                let mark = if done { "applied" } else { "pending" };
                println!(
                    "  migration {:>4} {:<30} {mark}",
                    migration.version, migration.description
                );
            }
            for table in db::PLAYGROUND_TABLES {
                let count: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM public.{table}"
                )))
                .fetch_one(&pool)
                .await
                .ok();
                match count {
                    Some(n) => println!("  table {table:<14} {n} rows"),
                    None => {
                        println!("  table {table:<14} missing (run `cargo run -p db -- migrate`)")
                    }
                }
            }
        }
    }
    pool.close().await;
    Ok(())
}
