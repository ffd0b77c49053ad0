//! Why a registration, a check definition, a stored record or a key is refused. Every message names the field
//! and the rule it broke, so the server can answer a Consul client's bad request with 400 and
//! [`Error::message`] as the body.

/// Errors of the registry crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required field is absent or empty.
    #[error("{what} is missing")]
    Missing {
        /// The field, such as `service name`.
        what: &'static str,
    },
    /// A value breaks a syntax or range rule.
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// The value as given (cut to 80 bytes).
        value: String,
        /// The rule it breaks.
        why: String,
    },
    /// A port outside `1..=65535`.
    #[error("port {0} is out of range 1..=65535")]
    BadPort(i64),
    /// A value longer than its limit.
    #[error("{what} is {len} bytes long, at most {max} are allowed")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A list or map with too many entries.
    #[error("{count} {what} given, at most {max} are allowed")]
    TooMany {
        /// The list, such as `tags`.
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A duration string that is not Consul's (Go's) syntax, such as `10s`, `500ms` or `1m30s`.
    #[error("invalid duration {input:?}: {why}")]
    BadDuration {
        /// The string as given (cut to 80 bytes).
        input: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A duration below the minimum its field allows.
    #[error("{what} {value} is below the minimum of {min}")]
    BelowMinimum {
        /// The field.
        what: &'static str,
        /// The value, formatted as a Consul duration.
        value: String,
        /// The minimum, formatted as a Consul duration.
        min: String,
    },
    /// A check type this registry does not run: script (remote code execution through the API), docker,
    /// h2ping, udp, os_service, alias, or anything unknown.
    #[error("unsupported check type {kind:?}: only http, tcp, grpc and ttl checks are supported")]
    UnsupportedCheck {
        /// The type, such as `script`.
        kind: String,
    },
    /// A check definition that names no type.
    #[error("check defines no type: give one of HTTP, TCP, GRPC or TTL")]
    NoCheckType,
    /// A check definition that names more than one type.
    #[error("check defines several types ({kinds}): give exactly one of HTTP, TCP, GRPC or TTL")]
    SeveralCheckTypes {
        /// The types found, comma-separated.
        kinds: String,
    },
    /// Two checks of one instance share an id.
    #[error("check id {0:?} is used twice")]
    DuplicateCheck(String),
    /// A JSON object holds two keys that differ only in case or underscores (`Name` and `name`).
    #[error("key {key:?} is given twice (keys are matched case-insensitively)")]
    DuplicateKey {
        /// The canonical key.
        key: String,
    },
    /// A request body larger than the registry accepts.
    #[error("request body is {len} bytes long, at most {max} are allowed")]
    BodyTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A request body that is not the JSON shape expected.
    #[error("{what} is not valid JSON of the expected shape")]
    BadJson {
        /// What was being read, such as `service registration`.
        what: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// An error inside a named field of a request (`Checks[1]`, `Check`).
    #[error("in {path}")]
    Field {
        /// The field's path.
        path: String,
        /// What is wrong inside it.
        #[source]
        source: Box<Error>,
    },
    /// A key that is not one of the registry's.
    #[error("not a registry key {key:?}: {why}")]
    BadKey {
        /// The key (lossily decoded).
        key: String,
        /// Why it does not parse.
        why: &'static str,
    },
    /// A record stored under the registry's prefixes did not parse.
    #[error("registry: record under {key} is not valid JSON")]
    BadRecord {
        /// The key holding the record.
        key: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored registration whose content does not match its key.
    #[error("registry: record under {key} describes {found}")]
    KeyMismatch {
        /// The key holding the record.
        key: String,
        /// The key its content belongs under.
        found: String,
    },
    /// Publishing settings that could never flush anything.
    #[error("invalid publish settings: {0}")]
    BadPublishConfig(&'static str),
}

/// The registry crate's result.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The error and its causes on one line (`in Checks[1]: invalid duration "5x": unknown unit`), for a 400
    /// response's body.
    pub fn message(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }

    /// This error, found inside the field `path`.
    pub fn in_field(self, path: impl Into<String>) -> Error {
        Error::Field { path: path.into(), source: Box::new(self) }
    }
}

/// `value` cut to at most 80 bytes (on a character boundary), for error messages.
pub(crate) fn shown(value: &str) -> String {
    truncate(value, 80).to_owned()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_joins_the_chain() {
        let e = Error::BadDuration { input: "5x".into(), why: "unknown unit" }.in_field("Checks[1]");
        assert_eq!(e.message(), "in Checks[1]: invalid duration \"5x\": unknown unit");
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let cases = [("abc", 5, "abc"), ("abcdef", 3, "abc"), ("héllo", 2, "h"), ("héllo", 3, "hé"), ("", 0, "")];
        for (s, max, want) in cases {
            assert_eq!(truncate(s, max), want, "{s:?} cut to {max}");
        }
    }
}
