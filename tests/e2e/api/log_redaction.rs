//! API secrets never reach the server's log: the debug access log of the real binary, for
//! `secret` however its name is spelled (any case, percent-encoded).

use crate::crash::harness::Env;
use crate::helpers::wait::until;

#[tokio::test]
async fn secrets_in_the_query_are_redacted_in_the_access_log_however_named() {
    let env = Env::new().await;
    let server = env
        .serve_with(&[("TOCSIN__LOG__LEVEL", "warn,tocsin=debug")])
        .await;
    let client = reqwest::Client::new();
    let spellings = [
        "secret=TopSecretPlain1",
        "SECRET=TopSecretUpper2",
        "%73ecret=TopSecretEncoded3",
        "%53%45%43%52%45%54=TopSecretEncoded4",
    ];
    for (i, secret) in spellings.iter().enumerate() {
        let url = format!("http://{}/credits?from=%2ALOGTST{i}&{secret}", server.http);
        let status = client.get(url).send().await.unwrap().status();
        assert_eq!(status, 401);
    }
    until("the four requests are in the access log", || async {
        server.log_tail().matches("LOGTST").count() >= spellings.len()
    })
    .await;
    let log = server.log_tail();
    assert!(
        !log.contains("TopSecret"),
        "a secret reached the log:\n{log}"
    );
    assert_eq!(log.matches("=***").count(), spellings.len(), "{log}");
}
