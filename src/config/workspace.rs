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
            .field("api_key_env", &self.api_key_env)
            .field("api_key_file", &self.api_key_file)
            .finish()
    }
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
