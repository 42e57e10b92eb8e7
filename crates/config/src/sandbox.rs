//! The `[sandbox]` table: whether agents and gates run under Landlock, what else they may write,
//! and whether gates may use the network.

use serde::Serialize;

use crate::load::resolve_path;
use crate::path::{AbsPath, KeyPath};
use crate::raw::RawSandbox;
use crate::suggest::did_you_mean;

/// Whether the sandbox is enforced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxMode {
    /// Refuse to start when the kernel cannot enforce it (the default).
    #[default]
    Required,
    /// Warn and run unsandboxed when the kernel cannot enforce it.
    BestEffort,
    /// Never sandbox (explicit).
    Off,
}

impl SandboxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::Required => "required",
            SandboxMode::BestEffort => "best_effort",
            SandboxMode::Off => "off",
        }
    }
}

/// Whether sandboxed gates may open TCP connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxNetwork {
    #[default]
    Open,
    Deny,
}

/// `[sandbox]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SandboxConfig {
    pub mode: SandboxMode,
    /// More directories agents and gates may write (absolute, or relative to the config file).
    pub extra_writable: Vec<AbsPath>,
    /// For gates only; agents always keep the network (they talk to their model's API).
    pub network: SandboxNetwork,
}

/// One problem found in `[sandbox]`: the key, the message, a hint.
pub(crate) type Problem = (KeyPath, String, Option<String>);

/// Validate `[sandbox]`, relative paths resolved against `base_dir`.
pub(crate) fn sandbox(raw: RawSandbox, base_dir: &AbsPath) -> (SandboxConfig, Vec<Problem>) {
    let root = KeyPath::root().key("sandbox");
    let mut problems = Vec::new();
    let mode = match raw.mode.as_deref() {
        None | Some("required") => SandboxMode::Required,
        Some("best_effort") => SandboxMode::BestEffort,
        Some("off") => SandboxMode::Off,
        Some(other) => {
            let hint = did_you_mean(other, ["required", "best_effort", "off"])
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| "use `required`, `best_effort` or `off`".into());
            problems.push((
                root.key("mode"),
                format!("unknown sandbox mode `{other}`"),
                Some(hint),
            ));
            SandboxMode::Required
        }
    };
    let network = match raw.network.as_deref() {
        None | Some("open") => SandboxNetwork::Open,
        Some("deny") => SandboxNetwork::Deny,
        Some(other) => {
            let hint = did_you_mean(other, ["open", "deny"])
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| "use `open` or `deny`".into());
            problems.push((
                root.key("network"),
                format!("unknown sandbox network setting `{other}`"),
                Some(hint),
            ));
            SandboxNetwork::Open
        }
    };
    let mut extra_writable = Vec::new();
    for (i, p) in raw.extra_writable.unwrap_or_default().iter().enumerate() {
        let trimmed = p.trim();
        let resolved = resolve_path(base_dir, trimmed);
        if trimmed.is_empty() || resolved == AbsPath::root() {
            problems.push((
                root.key("extra_writable").index(i),
                format!("`{p}` would let agents write everywhere"),
                Some(
                    "name the directories agents and gates need to write, e.g. a shared cache"
                        .into(),
                ),
            ));
            continue;
        }
        extra_writable.push(resolved);
    }
    (
        SandboxConfig {
            mode,
            extra_writable,
            network,
        },
        problems,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(mode: Option<&str>, network: Option<&str>, extra: &[&str]) -> RawSandbox {
        RawSandbox {
            mode: mode.map(str::to_owned),
            network: network.map(str::to_owned),
            extra_writable: Some(extra.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn sandbox_table() {
        let base = &AbsPath::new("/cfg").unwrap();
        let cases: &[(RawSandbox, SandboxMode, SandboxNetwork, &[&str], usize)] = &[
            (
                RawSandbox::default(),
                SandboxMode::Required,
                SandboxNetwork::Open,
                &[],
                0,
            ),
            (
                raw(Some("off"), None, &[]),
                SandboxMode::Off,
                SandboxNetwork::Open,
                &[],
                0,
            ),
            (
                raw(Some("best_effort"), Some("deny"), &["cache", "/abs"]),
                SandboxMode::BestEffort,
                SandboxNetwork::Deny,
                &["/cfg/cache", "/abs"],
                0,
            ),
            (
                raw(Some("required "), Some("closed"), &["/", ""]),
                SandboxMode::Required,
                SandboxNetwork::Open,
                &[],
                4,
            ),
        ];
        for (input, mode, network, extra, errors) in cases {
            let input = RawSandbox {
                mode: input.mode.clone(),
                network: input.network.clone(),
                extra_writable: input.extra_writable.clone(),
            };
            let (c, problems) = sandbox(input, base);
            assert_eq!(c.mode, *mode);
            assert_eq!(c.network, *network);
            let want: Vec<AbsPath> = extra.iter().map(|p| AbsPath::new(p).unwrap()).collect();
            assert_eq!(c.extra_writable, want);
            assert_eq!(problems.len(), *errors, "{problems:?}");
        }
        let (_, problems) = sandbox(raw(Some("requird"), None, &[]), base);
        assert_eq!(problems[0].2.as_deref(), Some("did you mean `required`?"));
    }
}
