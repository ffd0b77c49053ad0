//! A request's query string as Consul reads it: repeatable parameters (`?tag=a&tag=b`), flags that count by
//! their presence (`?passing`, `?recurse`, `?raw`), and the blocking-query pair `?index=N&wait=D` with
//! Consul's defaults (5 minutes) and cap (10 minutes). Pure, so it is tested without a server.

use std::time::Duration;

/// How long a blocking query waits when the client names no `wait`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// The longest a blocking query waits, whatever the client asks.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// The decoded parameters of one query string, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

/// A blocking query's request: answer once the result's index is past `index`, or after `wait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// The index the client already has.
    pub index: u64,
    /// How long to hold the request at most.
    pub wait: Duration,
}

impl Params {
    /// Parses `query` (the part after `?`, possibly absent); `+` is a space and `%XX` a byte, as in forms.
    pub fn parse(query: Option<&str>) -> Params {
        let pairs = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Params(pairs)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }

    /// Whether the flag `name` is set: present with no value, or with a value other than `false` or `0`.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| !v.eq_ignore_ascii_case("false") && v != "0")
    }

    /// A non-empty value of `name`.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// The blocking query asked for, if any: `?index=N` (a non-negative integer; 0 answers at once) with an
    /// optional `?wait=` duration, defaulting to [`DEFAULT_WAIT`] and capped at [`MAX_WAIT`]. A bad value is
    /// the message of a 400.
    pub fn blocking(&self) -> Result<Option<Blocking>, String> {
        let Some(index) = self.get("index") else { return Ok(None) };
        let index: u64 = index.trim().parse().map_err(|_| format!("Invalid index {index:?}: expected a number"))?;
        let wait = match self.non_empty("wait") {
            None => DEFAULT_WAIT,
            Some(w) => meridian_registry::time::parse_duration(w)
                .map_err(|e| format!("Invalid wait time {w:?}: {}", e.message()))?,
        };
        Ok(Some(Blocking { index, wait: wait.min(MAX_WAIT) }))
    }

    /// An unsigned integer parameter (`?cas=`, `?flags=`); a bad value is the message of a 400.
    pub fn number(&self, name: &str) -> Result<Option<u64>, String> {
        self.non_empty(name)
            .map(|v| v.trim().parse().map_err(|_| format!("Invalid {name} value {v:?}: expected a number")))
            .transpose()
    }
}

/// Percent-decodes `s` (`+` as a space); invalid escapes are kept as they are, invalid UTF-8 replaced.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() && hex(bytes[i + 1]).is_some() && hex(bytes[i + 2]).is_some() => {
                out.push(hex(bytes[i + 1]).unwrap_or(0) * 16 + hex(bytes[i + 2]).unwrap_or(0));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_repeats_and_escapes_are_read_as_consul_does() {
        let p = Params::parse(Some("passing&tag=a&tag=b%2Fc&near=_agent&recurse=false&dc=dc+a&x=%zz"));
        assert!(p.flag("passing"));
        assert!(!p.flag("recurse"), "recurse=false is off");
        assert!(!p.flag("raw"));
        assert_eq!(p.all("tag"), vec!["a".to_owned(), "b/c".to_owned()]);
        assert_eq!(p.get("dc"), Some("dc a"));
        assert_eq!(p.get("x"), Some("%zz"), "a bad escape is kept");
        assert_eq!(Params::parse(None), Params::default());
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("a%2"), "a%2");
        assert_eq!(decode("%41%42"), "AB");
    }

    #[test]
    fn blocking_queries_take_consuls_defaults_and_cap() {
        assert_eq!(Params::parse(Some("wait=1s")).blocking(), Ok(None), "no index, no blocking");
        let b = Params::parse(Some("index=42")).blocking().unwrap().unwrap();
        assert_eq!(b, Blocking { index: 42, wait: DEFAULT_WAIT });
        let b = Params::parse(Some("index=7&wait=1500ms")).blocking().unwrap().unwrap();
        assert_eq!(b.wait, Duration::from_millis(1500));
        let b = Params::parse(Some("index=7&wait=1h")).blocking().unwrap().unwrap();
        assert_eq!(b.wait, MAX_WAIT, "capped at ten minutes");
        let e = Params::parse(Some("index=x")).blocking().unwrap_err();
        assert!(e.contains("Invalid index"), "{e}");
        let e = Params::parse(Some("index=1&wait=10")).blocking().unwrap_err();
        assert!(e.contains("Invalid wait time"), "{e}");
        assert_eq!(Params::parse(Some("cas=12")).number("cas"), Ok(Some(12)));
        assert!(Params::parse(Some("cas=-1")).number("cas").is_err());
        assert_eq!(Params::parse(Some("cas=")).number("cas"), Ok(None));
    }
}
