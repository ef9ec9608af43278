//! The private stack the fault tests use: it starts, and each fault command returns with the
//! server answering again.

use db::private_stack::PrivateStack;

async fn answers(url: &str) -> i64 {
    let pool = db::connect(url, 1)
        .await
        .expect("the private PostgreSQL answers");
    sqlx::query_scalar("SELECT 1::bigint")
        .fetch_one(&pool)
        .await
        .expect("SELECT 1")
}

#[tokio::test]
async fn restart_and_crash_come_back() {
    let stack = PrivateStack::up("private_stack");
    let url = stack.database_url("playground");
    assert_eq!(answers(&url).await, 1);
    stack.restart_postgres("immediate");
    assert_eq!(answers(&url).await, 1);
    stack.crash_postgres();
    assert_eq!(answers(&url).await, 1);
    stack.restart_kafka();
}
