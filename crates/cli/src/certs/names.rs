//! The names certificates are made for: which member and client names may become file names, and which host of
//! a member URL goes into a subject alternative name (an IP SAN for an address, a DNS SAN otherwise).

use std::net::IpAddr;

use rcgen::SanType;

use super::CertError;

/// The directory under the output dir that holds the client certificates; no member may be called this.
pub const CLIENTS_DIR: &str = "clients";

/// Checks that `name` is safe as one path component: it becomes `DIR/<member>/` or `DIR/clients/<name>.crt`,
/// so a slash, a leading dot or a space could write outside the output directory or confuse shells.
pub fn check_file_name(what: &'static str, name: &str) -> Result<(), CertError> {
    let bad = |why| Err(CertError::BadName { what, name: name.to_owned(), why });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("it must not start with '.' or '-'");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        return bad("use only letters, digits, '.', '_' and '-'");
    }
    if what == "member" && name == CLIENTS_DIR {
        return bad("\"clients\" is the directory of the client certificates");
    }
    Ok(())
}

/// The host of `http://HOST:PORT` or `https://HOST:PORT` (with an optional trailing `/`); IPv6 hosts are written
/// in brackets (`https://[::1]:2379`) and come back without them.
pub fn url_host(url: &str) -> Result<&str, &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("scheme must be http:// or https://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry a user name");
    }
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inner, _port) = bracketed.split_once(']').ok_or("unclosed '[' in the host")?;
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("the bracketed host is not an IPv6 address");
        }
        inner
    } else {
        authority.rsplit_once(':').map_or(authority, |(host, _port)| host)
    };
    if host.is_empty() {
        return Err("missing host");
    }
    Ok(host)
}

/// The subject alternative name that matches `host`: an IP SAN for an address, a DNS SAN for a name.
pub fn san_for_host(host: &str) -> Result<SanType, &'static str> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = host.split('.').all(|label| {
        !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !valid || host.len() > 253 {
        return Err("the host is neither an IP address nor a DNS name");
    }
    let name = host.to_ascii_lowercase().try_into().map_err(|_| "the host is not ASCII")?;
    Ok(SanType::DnsName(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_out_of_http_and_https_urls() {
        assert_eq!(url_host("http://127.0.0.2:2380"), Ok("127.0.0.2"));
        assert_eq!(url_host("https://m1.dc-a.example:2379/"), Ok("m1.dc-a.example"));
        assert_eq!(url_host("https://[::1]:2379"), Ok("::1"));
        assert_eq!(url_host("https://host-only"), Ok("host-only"));
        assert!(url_host("grpc://127.0.0.1:2379").is_err());
        assert!(url_host("https://:2379").is_err());
        assert!(url_host("https://[::1:2379").is_err());
        assert!(url_host("https://user@h:1").is_err());
    }

    #[test]
    fn ips_get_ip_sans_and_names_get_dns_sans() {
        assert_eq!(san_for_host("127.0.0.3"), Ok(SanType::IpAddress([127, 0, 0, 3].into())));
        assert!(matches!(san_for_host("::1"), Ok(SanType::IpAddress(IpAddr::V6(_)))));
        assert!(matches!(san_for_host("Node-1.Example"), Ok(SanType::DnsName(n)) if n.as_str() == "node-1.example"));
        assert!(san_for_host("bad host").is_err());
        assert!(san_for_host("a..b").is_err());
    }

    #[test]
    fn file_names_stay_inside_the_output_dir() {
        assert!(check_file_name("member", "a1").is_ok());
        assert!(check_file_name("client", "app_2.read-only").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "-rf", "with space", "clients"] {
            assert!(check_file_name("member", bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_file_name("client", "clients").is_ok(), "only a member directory would collide");
    }
}
