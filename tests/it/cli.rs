//! The command line: `check-config` shows the config without secrets, `ERASURE__…` variables
//! override the file, and a bad config exits with 64 naming the field.

use std::process::{Command, Output};

use crate::support::unique;

const SECRET: &str = "lsv2_pt_not_to_be_printed_0123456789";

fn config_file(extra: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", unique("cli")));
    let text = format!(
        "[kafka]\nbootstrap = \"127.0.0.1:9\"\n[kafka.properties]\n\"sasl.password\" = \"hunter2-kafka\"\n\
         [workspaces.main]\napi_url = \"https://api.smith.langchain.com\"\napi_key_env = \"ERASURE_TEST_KEY\"\n{extra}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn worker(args: &[&str], config: &std::path::Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_erasure-worker"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env("ERASURE_TEST_KEY", SECRET);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the worker binary")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn check_config_prints_the_config_but_no_secret() {
    let path = config_file("");
    let out = worker(&["check-config"], &path, &[("ERASURE__INTAKE__LINGER", "750ms")]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("config OK"), "{shown}");
    assert!(shown.contains("linger: 750ms"), "the override applies: {shown}");
    assert!(shown.contains("from environment variable ERASURE_TEST_KEY"), "{shown}");
    assert!(!shown.contains(SECRET), "the API key is printed: {shown}");
    assert!(!shown.contains("hunter2-kafka"), "a Kafka password is printed: {shown}");
}

#[test]
fn a_bad_config_exits_64_and_names_the_field() {
    let bad_file = config_file("[intake]\nmax_batch = 2000\n");
    let good_file = config_file("");
    for (args, path, env) in [
        (&["check-config"][..], &bad_file, &[][..]),
        (&["run"][..], &bad_file, &[][..]),
        (
            &["check-config"][..],
            &good_file,
            &[("ERASURE__INTAKE__MAX_BATCH", "5000")][..],
        ),
        (
            &["check-config"][..],
            &good_file,
            &[("ERASURE__HTTP__LISTEN", "nowhere")][..],
        ),
    ] {
        let out = worker(args, path, env);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(64), "{args:?} {env:?}: {shown}");
        let field = if env.iter().any(|(k, _)| k.contains("HTTP")) {
            "http.listen"
        } else {
            "intake.max_batch"
        };
        assert!(shown.contains(field), "{args:?} {env:?} names {field}: {shown}");
        assert!(!shown.contains(SECRET));
    }
    let missing_key = Command::new(env!("CARGO_BIN_EXE_erasure-worker"))
        .args(["check-config", "--config"])
        .arg(&good_file)
        .env_remove("ERASURE_TEST_KEY")
        .output()
        .unwrap();
    assert_eq!(missing_key.status.code(), Some(64));
    assert!(
        text(&missing_key).contains("workspaces.main.api_key_env"),
        "{}",
        text(&missing_key)
    );
}
