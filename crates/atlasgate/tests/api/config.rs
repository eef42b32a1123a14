//! Configuration: layering, strictness, and the complete problem list of
//! `check-config` / a refused `serve` (run as real processes, clean env).

use std::process::{Command, Output, Stdio};

use atlasgate::config::{parse_file, Overrides, Settings, Status};
use atlasgate::vault::Keyring;
use secrecy::ExposeSecret;

fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    }
}

fn status_of<'a>(r: &'a atlasgate::config::Resolved, name: &str) -> &'a Status {
    &r.report
        .entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} not in report"))
        .status
}

#[test]
fn flag_beats_env_beats_file() {
    let file = parse_file(
        "listen = \"127.0.0.1:1001\"\npublic_url = \"http://file.example\"\nrefresh_margin = 100\n[atlassian]\nauth_url = \"http://file-auth.example\"\n",
    )
    .unwrap();
    let env = [
        ("ATLASGATE_LISTEN", "127.0.0.1:1002"),
        ("ATLASGATE_PUBLIC_URL", "http://env.example"),
    ];
    let flags = Overrides {
        listen: Some("127.0.0.1:1003".into()),
        ..Default::default()
    };
    let settings = Settings::merge(&flags, &env_of(&env), file);
    let r = settings.resolve();
    assert_eq!(
        status_of(&r, "ATLASGATE_LISTEN"),
        &Status::Ok("127.0.0.1:1003".into())
    );
    assert_eq!(
        status_of(&r, "ATLASGATE_PUBLIC_URL"),
        &Status::Ok("http://env.example".into())
    );
    assert_eq!(
        status_of(&r, "ATLASSIAN_AUTH_URL"),
        &Status::Ok("http://file-auth.example".into())
    );
    assert_eq!(
        status_of(&r, "ATLASGATE_REFRESH_MARGIN"),
        &Status::Ok("100 seconds".into())
    );
    // Untouched settings keep their documented defaults.
    assert_eq!(
        status_of(&r, "ATLASSIAN_API_URL"),
        &Status::Ok("https://api.atlassian.com".into())
    );
    assert_eq!(
        status_of(&r, "ATLASGATE_DATABASE_URL"),
        &Status::Ok("sqlite://atlasgate.db".into())
    );
}

#[test]
fn unknown_keys_are_an_error_naming_the_key() {
    let err = parse_file("listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n").unwrap_err();
    assert!(err.contains("listen_addr"), "{err}");
    let err = parse_file("[atlassian]\nclient_idd = \"x\"\n").unwrap_err();
    assert!(err.contains("client_idd"), "{err}");
    let err =
        parse_file("[profiles.jira]\nscopes = [\"offline_access\"]\nscope = \"x\"\n").unwrap_err();
    assert!(err.contains("scope"), "{err}");
}

#[test]
fn profiles_are_built_in_and_can_be_redefined_or_added() {
    let file = parse_file(
        "[profiles.jira]\nscopes = [\"offline_access\", \"read:me\", \"read:jira-work\"]\n[profiles.mini]\nscopes = [\"offline_access\", \"read:me\"]\n",
    )
    .unwrap();
    let keys = Keyring::generate()
        .to_env_value()
        .expose_secret()
        .to_string();
    let env = [
        ("ATLASGATE_ENCRYPTION_KEYS", keys.as_str()),
        ("ATLASSIAN_CLIENT_ID", "id"),
        ("ATLASSIAN_CLIENT_SECRET", "secret"),
    ];
    let config = Settings::merge(&Overrides::default(), &env_of(&env), file)
        .resolve()
        .into_config()
        .unwrap();
    assert_eq!(
        config.profiles["jira"].scopes,
        ["offline_access", "read:me", "read:jira-work"]
    );
    assert_eq!(
        config.profiles["mini"].scopes,
        ["offline_access", "read:me"]
    );
    let confluence = &config.profiles["confluence"].scopes;
    assert!(confluence.contains(&"read:page:confluence".to_string()));
    let atlassian = &config.profiles["atlassian"].scopes;
    assert!(
        atlassian.contains(&"manage:jira-webhook".to_string())
            && atlassian.contains(&"read:space:confluence".to_string())
    );

    // A profile without offline_access could never be refreshed.
    let file = parse_file("[profiles.bad]\nscopes = [\"read:me\"]\n").unwrap();
    let r = Settings::merge(&Overrides::default(), &env_of(&env), file).resolve();
    assert!(
        matches!(status_of(&r, "profiles.bad"), Status::Invalid(why) if why.contains("offline_access"))
    );
}

#[test]
fn builtin_jira_scopes_are_known_to_atlassim() {
    for (_, p) in atlasgate::config::builtin_profiles() {
        for s in &p.scopes {
            assert!(
                atlassim::scopes::ALL_SCOPES.contains(&s.as_str()),
                "{s} is not a scope atlassim knows"
            );
        }
    }
}

// ------------------------------------------------------------ as processes

fn atlasgate(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> Command {
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

fn run(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> Output {
    atlasgate(args, env, dir).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn line_of<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.trim_start().starts_with(name))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{out}"))
}

#[test]
fn check_config_lists_every_missing_setting_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["check-config"], &[], dir.path());
    let (stdout, _) = text(&out);
    assert!(!out.status.success());
    for name in [
        "ATLASGATE_ENCRYPTION_KEYS",
        "ATLASSIAN_CLIENT_ID",
        "ATLASSIAN_CLIENT_SECRET",
    ] {
        assert!(
            line_of(&stdout, name).contains("missing"),
            "{name}:\n{stdout}"
        );
    }
    for name in [
        "ATLASGATE_DATABASE_URL",
        "ATLASGATE_LISTEN",
        "ATLASGATE_PUBLIC_URL",
        "ATLASSIAN_AUTH_URL",
        "ATLASSIAN_API_URL",
        "ATLASGATE_REFRESH_MARGIN",
        "ATLASGATE_LOG",
    ] {
        assert!(line_of(&stdout, name).contains(" ok "), "{name}:\n{stdout}");
    }
}

#[test]
fn check_config_explains_invalid_values_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("ATLASGATE_LISTEN", "not-an-address"),
        ("ATLASGATE_PUBLIC_URL", "ftp://x"),
        ("ATLASGATE_REFRESH_MARGIN", "5000"),
        ("ATLASGATE_ENCRYPTION_KEYS", "k1:c2hvcnQ="),
        ("ATLASSIAN_CLIENT_ID", "my-client"),
        ("ATLASSIAN_CLIENT_SECRET", "very-secret-client-secret-value"),
        ("ATLASGATE_ADMIN_TOKEN", "admin-token-that-is-long-enough"),
    ];
    let out = run(&["check-config"], &env, dir.path());
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(line_of(&stdout, "ATLASGATE_LISTEN").contains("invalid"));
    assert!(line_of(&stdout, "ATLASGATE_PUBLIC_URL").contains("http or https"));
    assert!(line_of(&stdout, "ATLASGATE_REFRESH_MARGIN").contains("3600"));
    let keys = line_of(&stdout, "ATLASGATE_ENCRYPTION_KEYS");
    assert!(keys.contains("invalid") && keys.contains("32"), "{keys}");
    assert!(line_of(&stdout, "ATLASSIAN_CLIENT_ID").contains("my-client"));
    assert!(line_of(&stdout, "ATLASSIAN_CLIENT_SECRET").contains(" ok "));
    for secret in [
        "very-secret-client-secret-value",
        "admin-token-that-is-long-enough",
        "c2hvcnQ=",
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked"
        );
    }
}

#[test]
fn check_config_passes_with_a_complete_configuration_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keyring::generate()
        .to_env_value()
        .expose_secret()
        .to_string();
    std::fs::write(
        dir.path().join("atlasgate.toml"),
        format!("encryption_keys = \"{keys}\"\n[atlassian]\nclient_id = \"id\"\nclient_secret = \"s3cret-from-file\"\n"),
    )
    .unwrap();
    let out = run(&["check-config"], &[], dir.path());
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(line_of(&stdout, "ATLASSIAN_CLIENT_SECRET").contains("(file)"));
    assert!(!stdout.contains("s3cret-from-file"));
    assert!(!stdout.contains(keys.split(':').nth(1).unwrap()));

    // --config with an unknown key: an error naming it.
    std::fs::write(
        dir.path().join("other.toml"),
        "databse_url = \"sqlite://x.db\"\n",
    )
    .unwrap();
    let out = run(&["--config", "other.toml", "check-config"], &[], dir.path());
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("databse_url"), "{stderr}");
}

#[test]
fn a_flag_beats_the_environment_in_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &["--listen", "127.0.0.1:7001", "check-config"],
        &[("ATLASGATE_LISTEN", "127.0.0.1:7002")],
        dir.path(),
    );
    let (stdout, _) = text(&out);
    let line = line_of(&stdout, "ATLASGATE_LISTEN");
    assert!(
        line.contains("127.0.0.1:7001") && line.contains("flag"),
        "{line}"
    );
}

#[test]
fn serve_refuses_listing_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = atlasgate(
        &["serve"],
        &[
            ("ATLASGATE_LISTEN", "127.0.0.1:0"),
            ("ATLASGATE_REFRESH_MARGIN", "soon"),
        ],
        dir.path(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // It must exit by itself, quickly; a server that started would not.
    if crate::helpers::wait_exit(&mut child, 30).is_none() {
        child.kill().ok();
        panic!("serve did not refuse to start");
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(!stdout.contains("listening on"), "{stdout}");
    for name in [
        "ATLASGATE_ENCRYPTION_KEYS",
        "ATLASSIAN_CLIENT_ID",
        "ATLASSIAN_CLIENT_SECRET",
    ] {
        assert!(
            line_of(&stderr, name).contains("missing"),
            "{name}:\n{stderr}"
        );
    }
    assert!(
        line_of(&stderr, "ATLASGATE_REFRESH_MARGIN").contains("invalid"),
        "{stderr}"
    );
    // No database was created by a refused start.
    assert!(!dir.path().join("atlasgate.db").exists());
}
