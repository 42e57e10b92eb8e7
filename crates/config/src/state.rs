//! `[state]`: which store holds the ledger and the journal (`sqlite`, `postgres`, `github`), and the
//! database URL, whose password is a secret that no `Display`, `Debug` or JSON ever shows.

use std::fmt;

use serde::Serialize;

use crate::env::Env;

/// The environment variable that gives the `postgres` backend its URL when `[state] url` is
/// not set (so the password can stay out of the file).
pub const DATABASE_URL_VAR: &str = "ISSUELOOP_DATABASE_URL";

/// Where the ledger and the journal live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateBackend {
    /// One SQLite file (`[state] path`): one machine.
    Sqlite,
    /// A PostgreSQL database (`[state] url` or `ISSUELOOP_DATABASE_URL`): a fleet of `serve`.
    Postgres,
    /// An append-only log on a branch of a repository (`[state] repo`, `[state] branch`): for
    /// GitHub Actions, where nothing but the token lasts between ticks.
    Github,
}

impl StateBackend {
    /// Every backend this version accepts, as written in the configuration.
    pub const ALL: [StateBackend; 3] = [
        StateBackend::Sqlite,
        StateBackend::Postgres,
        StateBackend::Github,
    ];

    /// Backends planned but not in this version, with what to use meanwhile.
    pub(crate) const PLANNED: [(&'static str, &'static str); 0] = [];

    pub const fn as_str(self) -> &'static str {
        match self {
            StateBackend::Sqlite => "sqlite",
            StateBackend::Postgres => "postgres",
            StateBackend::Github => "github",
        }
    }

    pub fn parse(text: &str) -> Option<StateBackend> {
        StateBackend::ALL.into_iter().find(|b| b.as_str() == text)
    }
}

impl fmt::Display for StateBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A PostgreSQL connection URL (`postgres://user:password@host:5432/db?…`). Its password is a
/// secret: `Display`, `Debug` and `Serialize` show the URL with the password replaced by `***`;
/// only [`DatabaseUrl::expose`] gives the real text, for the database client.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Check the shape of a PostgreSQL URL. The error never repeats the password.
    pub fn parse(text: &str) -> Result<DatabaseUrl, String> {
        let shown = redact_url(text);
        let rest = ["postgres://", "postgresql://"]
            .iter()
            .find_map(|scheme| text.strip_prefix(scheme))
            .ok_or_else(|| {
                format!("`{shown}` is not a PostgreSQL URL: it must start with `postgres://`")
            })?;
        if text.chars().any(char::is_whitespace) {
            return Err(format!(
                "`{shown}` contains white space; percent-encode it (`%20`)"
            ));
        }
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let query_host = rest
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("host=")));
        if host.is_empty() && !query_host {
            return Err(format!(
                "`{shown}` names no server; write `postgres://USER@HOST:5432/DATABASE` (or \
                 `?host=/run/postgresql` for a unix socket)"
            ));
        }
        Ok(DatabaseUrl(text.to_owned()))
    }

    /// The URL with its password. Call only where it is handed to the database client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The password, from the user-info part or a `password=` parameter, if the URL has one
    /// (so it can be registered with the redaction rule).
    pub fn password(&self) -> Option<String> {
        let rest = self.0.split_once("://").map_or(self.0.as_str(), |(_, r)| r);
        let from_query = rest.split_once('?').and_then(|(_, q)| {
            q.split('&').find_map(|kv| match kv.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("password") => Some(v.to_owned()),
                _ => None,
            })
        });
        let authority_end = {
            let from = rest.rfind('@').map_or(0, |i| i + 1);
            rest[from..]
                .find(['/', '?'])
                .map_or(rest.len(), |i| from + i)
        };
        let from_userinfo = rest[..authority_end]
            .rsplit_once('@')
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, pw)| pw.to_owned());
        from_userinfo.or(from_query).filter(|p| !p.is_empty())
    }

    /// The URL as it may be shown: the password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// `postgres://u:secret@h/db?password=x` → `postgres://u:***@h/db?password=***`: the password
/// in the user-info part and any `password=` query parameter replaced. Pure; also used on text
/// that failed to parse, so it never assumes a well-formed URL.
pub fn redact_url(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, text),
    };
    // The authority ends at the first `/` or `?` after the last `@` that precedes them; a `@`
    // may appear in a password, so look for the last one before the path.
    let path_start = {
        let at = rest.rfind('@');
        let from = at.map_or(0, |i| i + 1);
        rest[from..]
            .find(['/', '?'])
            .map_or(rest.len(), |i| from + i)
    };
    let (authority, tail) = rest.split_at(path_start);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{authority}{tail}"),
        None => format!("{authority}{tail}"),
    }
}

/// Where the `postgres` backend's URL comes from: `[state] url`, else `ISSUELOOP_DATABASE_URL`.
/// `Err` says what is missing or wrong (never repeating a password).
pub fn database_url(configured: Option<&DatabaseUrl>, env: &Env) -> Result<DatabaseUrl, String> {
    if let Some(url) = configured {
        return Ok(url.clone());
    }
    match env.get(DATABASE_URL_VAR) {
        Some(text) => DatabaseUrl::parse(text).map_err(|e| format!("`{DATABASE_URL_VAR}`: {e}")),
        None => Err(format!(
            "`[state] backend = \"postgres\"` needs a database URL: set `{DATABASE_URL_VAR}` \
             (keeps the password out of the file) or `[state] url`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_table() {
        let cases = [
            ("postgres://u:pw@h:5432/db", "postgres://u:***@h:5432/db"),
            ("postgresql://u@h/db", "postgresql://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            ("postgres://u:p@ss/w0rd@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:pw@h/db?sslmode=disable&password=x",
                "postgres://u:***@h/db?sslmode=disable&password=***",
            ),
            (
                "postgres:///db?host=/run/pg&PASSWORD=x",
                "postgres:///db?host=/run/pg&PASSWORD=***",
            ),
            ("u:pw@h", "u:***@h"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
            assert!(!redact_url(input).contains("pw"), "{input}");
        }
    }

    #[test]
    fn urls_are_checked_and_never_echo_the_password() {
        assert!(DatabaseUrl::parse("postgres://u:pw@h/db").is_ok());
        assert!(DatabaseUrl::parse("postgres:///db?host=/tmp").is_ok());
        for bad in [
            "mysql://u:pw@h/db",
            "postgres://u:pw@/db",
            "postgres://u:p w@h/db",
        ] {
            let e = DatabaseUrl::parse(bad).unwrap_err();
            assert!(!e.contains("pw"), "{bad}: {e}");
        }
        let url = DatabaseUrl::parse("postgres://u:hunter2@h/db").unwrap();
        for shown in [
            url.to_string(),
            format!("{url:?}"),
            serde_json::to_string(&url).unwrap(),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("u:***@h"), "{shown}");
        }
        assert_eq!(url.expose(), "postgres://u:hunter2@h/db");
    }

    #[test]
    fn the_password_is_found_and_the_variable_never_reaches_an_agent() {
        let pw = |u: &str| DatabaseUrl::parse(u).unwrap().password();
        assert_eq!(pw("postgres://u:p@ss/w@h/db").as_deref(), Some("p@ss/w"));
        assert_eq!(
            pw("postgres://u@h/db?password=x1&sslmode=disable").as_deref(),
            Some("x1")
        );
        assert_eq!(pw("postgres://u@h/db"), None);
        assert!(crate::CREDENTIAL_VARS.contains(&DATABASE_URL_VAR));
    }

    #[test]
    fn the_url_comes_from_the_file_then_the_environment() {
        let file = DatabaseUrl::parse("postgres://file@h/db").unwrap();
        let env = Env::from_pairs([(DATABASE_URL_VAR, "postgres://env:pw@h/db")]);
        assert_eq!(database_url(Some(&file), &env).unwrap(), file);
        assert_eq!(
            database_url(None, &env).unwrap().expose(),
            "postgres://env:pw@h/db"
        );
        let missing = database_url(None, &Env::default()).unwrap_err();
        assert!(missing.contains(DATABASE_URL_VAR), "{missing}");
        let bad = Env::from_pairs([(DATABASE_URL_VAR, "http://u:pw@h")]);
        let e = database_url(None, &bad).unwrap_err();
        assert!(e.contains(DATABASE_URL_VAR) && !e.contains("pw@"), "{e}");
    }
}
