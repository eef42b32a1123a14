//! The command line as a user runs it: keys, apps, migrate, rotate, serve.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use atlasgate::store::Store;
use atlasgate::vault::{Cipher, Keyring};
use base64::Engine;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::helpers::{backends, TestDb};

fn atlasgate(args: &[&str], env: &[(&str, &str)]) -> Command {
    let dir = std::env::temp_dir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atlasgate"));
    cmd.args(args)
        .env_clear()
        .current_dir(dir)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let out: Output = atlasgate(args, env).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "atlasgate {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn keys_generate_prints_a_usable_key() {
    let out = ok(&["keys", "generate"], &[]);
    let line = out.trim();
    let (id, b64) = line.split_once(':').unwrap();
    assert!(id.starts_with('k'));
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
            .len(),
        32
    );
    Keyring::parse(line).unwrap();
    assert_ne!(
        line,
        ok(&["keys", "generate"], &[]).trim(),
        "keys are random"
    );
}

fn value_after<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.split_once(label).map(|(_, v)| v.trim()))
        .unwrap_or_else(|| panic!("no `{label}` in:\n{out}"))
}

#[tokio::test]
async fn apps_create_and_list_then_rotate_keys() {
    for backend in backends() {
        let db = TestDb::create(backend).await;
        let k1 = Keyring::generate()
            .to_env_value()
            .expose_secret()
            .to_string();
        let env = [
            ("ATLASGATE_DATABASE_URL", db.url.as_str()),
            ("ATLASGATE_ENCRYPTION_KEYS", k1.as_str()),
        ];

        assert!(ok(&["migrate"], &env).contains("database is current"));

        let out = ok(
            &[
                "apps",
                "create",
                "--name",
                "cli-app",
                "--webhook-url",
                "https://h.example/x",
                "--return-origin",
                "https://h.example",
                "--return-origin",
                "http://localhost:8000",
            ],
            &env,
        );
        let key = value_after(&out, "store it now):").to_string();
        let secret = value_after(&out, "(shown once):").to_string();
        assert!(
            key.starts_with("agk_") && secret.starts_with("whsec_"),
            "{out}"
        );

        let out = ok(&["apps", "create", "--name", "no-hook"], &env);
        assert!(!out.contains("whsec_"));

        let list = ok(&["apps", "list"], &env);
        assert!(
            list.contains("cli-app")
                && list.contains("no-hook")
                && list.contains("https://h.example"),
            "{list}"
        );
        assert!(!list.contains(&key) && !list.contains(&secret));

        // Invalid input is refused with the reason.
        let out = atlasgate(
            &[
                "apps",
                "create",
                "--name",
                "bad",
                "--return-origin",
                "https://x.example/path",
            ],
            &env,
        )
        .output()
        .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("--return-origin"));

        let store = Store::connect(&db.url).await.unwrap();
        let hash: String =
            sqlx::query_scalar("SELECT api_key_hash FROM apps WHERE name = 'cli-app'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(hash, hex::encode(Sha256::digest(key.as_bytes())));

        // Rotate to a new first key, then the old one can be dropped.
        let k2 = Keyring::generate()
            .to_env_value()
            .expose_secret()
            .to_string();
        let both = format!("{k2},{k1}");
        let env2 = [
            ("ATLASGATE_DATABASE_URL", db.url.as_str()),
            ("ATLASGATE_ENCRYPTION_KEYS", both.as_str()),
        ];
        let out = ok(&["keys", "rotate"], &env2);
        assert!(
            out.contains("re-encrypted 1 of 1") && out.contains("0 value(s) left"),
            "{out}"
        );
        let new_only = Cipher::from_keyring(&k2).unwrap();
        let id: String = sqlx::query_scalar("SELECT id FROM apps WHERE name = 'cli-app'")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let got = atlasgate::apps::webhook_secret(&store, &new_only, &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.expose_secret(), secret);
        store.close().await;
    }
}

#[tokio::test]
async fn serve_prints_the_address_first_and_stops_on_sigterm() {
    let db = TestDb::create(atlasgate::store::Backend::Sqlite).await;
    let keys = Keyring::generate()
        .to_env_value()
        .expose_secret()
        .to_string();
    let env = [
        ("ATLASGATE_DATABASE_URL", db.url.as_str()),
        ("ATLASGATE_ENCRYPTION_KEYS", keys.as_str()),
        ("ATLASSIAN_CLIENT_ID", "atlasgate-dev"),
        ("ATLASSIAN_CLIENT_SECRET", "atlasgate-dev-secret"),
        ("ATLASGATE_LISTEN", "127.0.0.1:0"),
        ("ATLASGATE_LOG_FORMAT", "json"),
    ];
    let mut child = atlasgate(&["serve"], &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_string();
    assert!(addr.starts_with("http://127.0.0.1:"));

    let resp = reqwest::get(format!("{addr}/readyz")).await.unwrap();
    assert_eq!(resp.status(), 200);
    // serve migrated the database on start.
    let store = Store::connect(&db.url).await.unwrap();
    assert!(store.pending_migrations().await.unwrap().is_empty());
    store.close().await;

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = crate::helpers::wait_exit(&mut child, 20).expect("serve did not stop on SIGTERM");
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("request finished"))
        .unwrap_or_else(|| panic!("{logs}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert!(
        v["span"]["request_id"].is_string(),
        "json log lines carry the request id: {line}"
    );
    assert!(!logs.contains(keys.split(':').nth(1).unwrap()));
}
