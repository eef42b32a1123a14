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
        "listen = \"127.0.0.1:1001\"\npublic_url = \"https://file.example\"\nrefresh_margin = 100\n[atlassian]\nauth_url = \"https://file-auth.example\"\n",
    )
    .unwrap();
    let env = [
        ("ATLASGATE_LISTEN", "127.0.0.1:1002"),
        ("ATLASGATE_PUBLIC_URL", "https://env.example"),
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
        &Status::Ok("https://env.example".into())
    );
    assert_eq!(
        status_of(&r, "ATLASSIAN_AUTH_URL"),
        &Status::Ok("https://file-auth.example".into())
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
fn plain_http_on_a_public_host_is_invalid_unless_allowed() {
    let env = [
        ("ATLASGATE_PUBLIC_URL", "http://atlasgate.example.com"),
        ("ATLASSIAN_AUTH_URL", "http://10.1.2.3:9000"),
        ("ATLASSIAN_API_URL", "http://localhost:9000"),
    ];
    let r = Settings::merge(&Overrides::default(), &env_of(&env), Default::default()).resolve();
    for name in ["ATLASGATE_PUBLIC_URL", "ATLASSIAN_AUTH_URL"] {
        assert!(
            matches!(status_of(&r, name), Status::Invalid(why) if why.contains("ATLASGATE_INSECURE_HTTP")),
            "{name}: {:?}",
            status_of(&r, name)
        );
    }
    // Loopback stays allowed: the default public URL, atlassim on localhost.
    assert_eq!(
        status_of(&r, "ATLASSIAN_API_URL"),
        &Status::Ok("http://localhost:9000".into())
    );
    let r = Settings::merge(&Overrides::default(), &env_of(&[]), Default::default()).resolve();
    assert!(matches!(
        status_of(&r, "ATLASGATE_PUBLIC_URL"),
        Status::Ok(_)
    ));

    // The explicit opt-out, from the environment, a flag or the file.
    let mut insecure = env.to_vec();
    insecure.push(("ATLASGATE_INSECURE_HTTP", "true"));
    let r = Settings::merge(
        &Overrides::default(),
        &env_of(&insecure),
        Default::default(),
    )
    .resolve();
    assert_eq!(
        status_of(&r, "ATLASGATE_PUBLIC_URL"),
        &Status::Ok("http://atlasgate.example.com".into())
    );
    let flags = Overrides {
        insecure_http: Some("true".into()),
        ..Default::default()
    };
    let r = Settings::merge(&flags, &env_of(&env), Default::default()).resolve();
    assert!(matches!(status_of(&r, "ATLASSIAN_AUTH_URL"), Status::Ok(_)));
    let file = parse_file("insecure_http = true\n").unwrap();
    let r = Settings::merge(&Overrides::default(), &env_of(&env), file).resolve();
    assert!(matches!(
        status_of(&r, "ATLASGATE_PUBLIC_URL"),
        Status::Ok(_)
    ));
    // Anything but true/false is itself a problem.
    let r = Settings::merge(
        &Overrides::default(),
        &env_of(&[("ATLASGATE_INSECURE_HTTP", "yes")]),
        Default::default(),
    )
    .resolve();
    assert!(matches!(
        status_of(&r, "ATLASGATE_INSECURE_HTTP"),
        Status::Invalid(_)
    ));
}

#[test]
fn trusted_proxies_are_validated_and_reported() {
    let r = Settings::merge(&Overrides::default(), &env_of(&[]), Default::default()).resolve();
    assert_eq!(
        status_of(&r, "ATLASGATE_TRUSTED_PROXIES"),
        &Status::Ok("none (forwarding headers ignored)".into())
    );
    let env = [(
        "ATLASGATE_TRUSTED_PROXIES",
        "10.0.0.0/8, fd00::/8,192.168.1.1",
    )];
    let r = Settings::merge(&Overrides::default(), &env_of(&env), Default::default()).resolve();
    assert_eq!(
        status_of(&r, "ATLASGATE_TRUSTED_PROXIES"),
        &Status::Ok("10.0.0.0/8, fd00::/8, 192.168.1.1/32".into())
    );
    let file = parse_file("trusted_proxies = \"172.16.0.0/12\"\n").unwrap();
    let r = Settings::merge(&Overrides::default(), &env_of(&[]), file).resolve();
    assert!(
        matches!(status_of(&r, "ATLASGATE_TRUSTED_PROXIES"), Status::Ok(v) if v == "172.16.0.0/12")
    );
    let env = [(
        "ATLASGATE_TRUSTED_PROXIES",
        "10.0.0.0/8,10.0.0.1/8,lb.internal",
    )];
    let r = Settings::merge(&Overrides::default(), &env_of(&env), Default::default()).resolve();
    match status_of(&r, "ATLASGATE_TRUSTED_PROXIES") {
        Status::Invalid(why) => {
            assert!(
                why.contains("10.0.0.1/8") && why.contains("lb.internal"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
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

/// Run `serve`, which must refuse and exit by itself, quickly (a server that
/// started would not); its standard error.
fn refused_serve(env: &[(&str, &str)], dir: &std::path::Path) -> String {
    let mut child = atlasgate(&["serve"], env, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if crate::helpers::wait_exit(&mut child, 30).is_none() {
        child.kill().ok();
        panic!("serve did not refuse to start");
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(!stdout.contains("listening on"), "{stdout}");
    stderr
}

#[test]
fn check_config_marks_plain_http_and_bad_proxies_and_serve_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keyring::generate()
        .to_env_value()
        .expose_secret()
        .to_string();
    let env = [
        ("ATLASGATE_LISTEN", "127.0.0.1:0"),
        ("ATLASGATE_ENCRYPTION_KEYS", keys.as_str()),
        ("ATLASSIAN_CLIENT_ID", "id"),
        ("ATLASSIAN_CLIENT_SECRET", "secret"),
        ("ATLASGATE_PUBLIC_URL", "http://atlasgate.example.com"),
        ("ATLASSIAN_API_URL", "http://api.example.com"),
        ("ATLASGATE_TRUSTED_PROXIES", "10.0.0.0/33"),
    ];
    let out = run(&["check-config"], &env, dir.path());
    let (stdout, _) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    for name in [
        "ATLASGATE_PUBLIC_URL",
        "ATLASSIAN_API_URL",
        "ATLASGATE_TRUSTED_PROXIES",
    ] {
        assert!(
            line_of(&stdout, name).contains("invalid"),
            "{name}:\n{stdout}"
        );
    }
    assert!(line_of(&stdout, "ATLASSIAN_AUTH_URL").contains(" ok "));

    let stderr = refused_serve(&env, dir.path());
    for name in [
        "ATLASGATE_PUBLIC_URL",
        "ATLASSIAN_API_URL",
        "ATLASGATE_TRUSTED_PROXIES",
    ] {
        assert!(
            line_of(&stderr, name).contains("invalid"),
            "{name}:\n{stderr}"
        );
    }

    // With the explicit opt-out the URLs pass; the bad CIDR still does not.
    let mut insecure = env.to_vec();
    insecure.push(("ATLASGATE_INSECURE_HTTP", "true"));
    let out = run(&["check-config"], &insecure, dir.path());
    let (stdout, _) = text(&out);
    assert!(
        line_of(&stdout, "ATLASGATE_PUBLIC_URL").contains(" ok "),
        "{stdout}"
    );
    assert!(
        line_of(&stdout, "ATLASGATE_INSECURE_HTTP").contains("true"),
        "{stdout}"
    );
    assert!(line_of(&stdout, "ATLASGATE_TRUSTED_PROXIES").contains("invalid"));
}

#[test]
fn serve_refuses_listing_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = refused_serve(
        &[
            ("ATLASGATE_LISTEN", "127.0.0.1:0"),
            ("ATLASGATE_REFRESH_MARGIN", "soon"),
        ],
        dir.path(),
    );
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
