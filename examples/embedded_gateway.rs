//! Run the gateway in-process on a throw-away SQLite directory, with one account holding
//! 100 credits, and print where it listens. Stop it with Ctrl-C.
//!
//! ```sh
//! cargo run --example embedded_gateway
//! ```

use std::collections::HashMap;

use tocsin::config::Settings;
use tocsin::domain::{AccountName, UnixMs};
use tocsin::startup::Application;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let vars = HashMap::from([
        (
            "TOCSIN__SERVER__HTTP_ADDR".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        (
            "TOCSIN__SERVER__METRICS_ADDR".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        (
            "TOCSIN__STORAGE__DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
    ]);
    let settings = Settings::load_from(&vars)?;
    tocsin::telemetry::init(&settings.log);

    let app = Application::build(settings).await?;
    let store = &app.state().store;
    let account = store
        .create_account(
            &AccountName::parse("demo").map_err(anyhow::Error::msg)?,
            UnixMs::now(),
        )
        .await?;
    let balance = store
        .add_credits(account.id, 100, "demo credits", UnixMs::now())
        .await?;

    println!("account demo holds {balance} credits");
    println!("health:  curl http://{}/health", app.http_addr());
    println!("metrics: curl http://{}/metrics", app.metrics_addr());
    app.run_until_stopped(tocsin::shutdown::wait_for_signal())
        .await
}
