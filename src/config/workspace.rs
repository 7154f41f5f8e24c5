//! One LangSmith workspace: its API URL, tenant and where its key comes from. Keys come from an
//! environment variable or a file, never from the TOML, and are redacted in `Debug`.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::{invalid, ConfigError};

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    pub api_url: String,
    /// `X-Tenant-Id`, the workspace's id. When absent it is learnt from LangSmith before the first
    /// v2 call (which needs it); required for organization-scoped keys.
    pub tenant_id: Option<String>,
    /// Where the v2 API lives. Unset: `/api/v2`, falling back once to `/v2` on a 404.
    pub v2_path: Option<String>,
    /// `X-Organization-Id` (Enterprise): when set, each accepted delete call is matched with its
    /// `delete_runs` record in LangSmith's audit log, whose id the `deletion-requested` event carries.
    pub organization_id: Option<String>,
    /// Allow `http://` to a host other than loopback (the API key would cross the network in clear).
    #[serde(default)]
    pub allow_plain_http: bool,
    /// Erase the dataset examples made from a request's traces and those its selectors reach (hard
    /// delete, read back): on unless set to `false`.
    #[serde(default = "yes")]
    pub erase_examples: bool,
    /// Environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// File holding the API key (a mounted secret).
    pub api_key_file: Option<PathBuf>,
}

impl fmt::Debug for WorkspaceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkspaceConfig")
            .field("api_url", &self.api_url)
            .field("tenant_id", &self.tenant_id)
            .field("v2_path", &self.v2_path)
            .field("organization_id", &self.organization_id)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("erase_examples", &self.erase_examples)
            .field("api_key_env", &self.api_key_env)
            .field("api_key_file", &self.api_key_file)
            .finish()
    }
}

fn yes() -> bool {
    true
}

/// A secret that never shows in `Debug` or `Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl WorkspaceConfig {
    /// Why `api_url` is refused, if it is: not http(s), or plain HTTP to a host beyond loopback
    /// without `allow_plain_http`.
    pub fn url_problem(&self) -> Option<&'static str> {
        let Ok(url) = reqwest::Url::parse(&self.api_url) else {
            return Some("must be an http(s) URL");
        };
        let Some(host) = url.host_str() else {
            return Some("must name a host");
        };
        let ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>();
        let loopback = host == "localhost" || ip.is_ok_and(|ip| ip.is_loopback());
        match url.scheme() {
            "https" => None,
            "http" if loopback || self.allow_plain_http => None,
            "http" => {
                Some("plain http:// beyond loopback sends the API key in clear: use https, or set allow_plain_http")
            }
            _ => Some("must be an http(s) URL"),
        }
    }

    /// Reads the API key from the environment variable or file the config names.
    pub fn api_key(&self, alias: &str) -> Result<Secret, ConfigError> {
        let field = format!("workspaces.{alias}");
        match (&self.api_key_env, &self.api_key_file) {
            (Some(var), None) => std::env::var(var).map(Secret).map_err(|_| {
                invalid(
                    &format!("{field}.api_key_env"),
                    format!("environment variable {var} is not set"),
                )
            }),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|s| Secret(s.trim().to_owned()))
                .map_err(|e| {
                    invalid(
                        &format!("{field}.api_key_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                }),
            _ => Err(invalid(&field, "set exactly one of api_key_env and api_key_file")),
        }
    }
}
