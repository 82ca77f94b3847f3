//! The published contract is an artifact of the build: the OpenAPI document the server serves
//! must equal the committed `docs/openapi.json`, so any change to the API shows up in review.
//! After an intended change: `BOXOFFICE_BLESS=1 cargo test --test contract` rewrites the file.

use boxoffice::cli::ServeArgs;
use boxoffice::server::Server;

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServeArgs::for_tests(dir.path())).await.expect("server starts");
    let served: serde_json::Value =
        reqwest::get(format!("http://{}/openapi.json", server.addr)).await.unwrap().json().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var("BOXOFFICE_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, serde_json::to_string_pretty(&served).unwrap() + "\n").unwrap();
    }
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default()).unwrap_or(serde_json::Value::Null);
    assert!(
        served == committed,
        "the served /openapi.json differs from docs/openapi.json; if the change is intended, run \
         BOXOFFICE_BLESS=1 cargo test --test contract and commit the file"
    );
    // Every error code the service can answer is listed, so clients can switch on them.
    let codes = &served["components"]["schemas"]["Code"]["enum"];
    for c in boxoffice::domain::Code::ALL {
        assert!(codes.as_array().unwrap().iter().any(|v| v == c.as_str()), "{c} missing from the Code schema");
    }
    server.stop().await;
}
