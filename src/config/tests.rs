//! Config parsing and validation: defaults, named errors, secrets.

use super::*;

// `PATH` stands in for the key variable: it is always set, and tests must not call set_var.
fn base(extra: &str) -> String {
    format!(
        "[kafka]\nbootstrap = \"127.0.0.1:9092\"\n[workspaces.main]\napi_url = \"http://127.0.0.1:1\"\n\
         api_key_env = \"PATH\"\n{extra}"
    )
}

#[test]
fn defaults_load_and_bad_fields_are_named() {
    let c = Config::parse(&base("")).expect("minimal config");
    assert_eq!(c.intake.linger, Duration::from_secs(2));
    let c = Config::parse(&base(
        "[limits]\nscope = \"replica\"\nquery_wide_per_second = 0.1\ndelete_per_second = 5\n",
    ))
    .unwrap();
    assert_eq!((c.limits.query_wide_per_second, c.limits.delete_per_second), (0.1, 5.0));
    let err = Config::parse(&base("[limits]\nscope = \"workspace\"\nquery_per_second = 0\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits"), "{err}");
    let err = Config::parse(&base("[verifier]\nlookback = \"30d\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("verifier.lookback") && err.contains("400 days"), "{err}");
    let err = Config::parse(&base("[intake]\nselector_lookback = \"500d\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("verifier.lookback"),
        "a selector may find traces the checks would not: {err}"
    );
    assert_eq!(c.default_alias(), Some("main"));
    let err = Config::parse(&base("[intake]\nmax_batch = 1001\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("intake.max_batch"), "{err}");
    let err = Config::parse(&base("[intake]\nlinger = \"soon\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("linger"), "{err}");
    let err = Config::parse(&base("surprise = 1\n")).unwrap_err().to_string();
    assert!(err.contains("surprise"), "{err}");
}

#[test]
fn audit_correlation_needs_an_organization_uuid_and_a_wait_within_the_shutdown_grace() {
    let org = "[workspaces.main]\norganization_id = \"00000000-0000-0000-0000-000000000007\"\n";
    let c = Config::parse(&base("").replace("[workspaces.main]\n", org)).expect("an organization id");
    assert!(c.workspaces["main"].organization_id.is_some());
    assert_eq!(c.intake.audit_wait, Duration::from_secs(10));
    let err =
        Config::parse(&base("").replace("[workspaces.main]\n", "[workspaces.main]\norganization_id = \"acme\"\n"))
            .unwrap_err()
            .to_string();
    assert!(err.contains("workspaces.main.organization_id"), "{err}");
    let err = Config::parse(&base("[intake]\naudit_wait = \"30s\"\nshutdown_grace = \"30s\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("intake.audit_wait"), "{err}");
}

#[test]
fn the_example_config_is_valid() {
    let example = include_str!("../../config/example.toml")
        .replace("api_key_env = \"LANGSMITH_API_KEY\"", "api_key_env = \"PATH\"");
    let c = Config::parse(&example).expect("config/example.toml parses");
    assert_eq!(c.window, Window::default());
    assert_eq!(c.intake.linger, IntakeConfig::default().linger);
}

#[test]
fn plain_http_is_for_loopback_unless_allowed() {
    let with = |url: &str, extra: &str| Config::parse(&base(extra).replace("http://127.0.0.1:1", url)).map(|_| ());
    for fine in [
        "https://api.smith.langchain.com",
        "http://127.0.0.1:1984",
        "http://localhost:1",
        "http://[::1]:1",
    ] {
        assert!(with(fine, "").is_ok(), "{fine}");
    }
    let err = with("http://langsmith-sim:1984", "").unwrap_err().to_string();
    assert!(
        err.contains("workspaces.main.api_url") && err.contains("allow_plain_http"),
        "{err}"
    );
    assert!(with("http://langsmith-sim:1984", "allow_plain_http = true\n").is_ok());
    assert!(with("ftp://host", "").is_err());
}

#[test]
fn secrets_are_redacted() {
    assert_eq!(format!("{:?}", Secret::new("lsv2_pt_x".into())), "Secret(<redacted>)");
}

#[test]
fn rates_without_a_scope_are_refused_and_no_rate_means_workspace_totals() {
    assert_eq!(Config::parse(&base("")).unwrap().limits.scope, Scope::Workspace);
    // Written for per-replica limits, before `scope`: its numbers must not change meaning silently.
    let err = Config::parse(&base("[limits]\ndelete_per_second = 25\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.scope must be set"), "{err}");
    let c = Config::parse(&base(
        "[limits]\nscope = \"workspace\"\n[limits.verifier_fraction]\ndelete = 0.5\n",
    ))
    .unwrap();
    assert_eq!(
        (c.limits.verifier_fraction.delete, c.limits.verifier_fraction.sessions),
        (0.5, 0.1)
    );
    let err = Config::parse(&base("[limits.verifier_fraction]\nsessions = 1.0\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.verifier_fraction"), "{err}");
}
