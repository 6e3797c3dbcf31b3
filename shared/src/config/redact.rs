//! Credentials out of URLs before they are logged, reported or published.

/// The URL with any `user:password@` part replaced by `***@`, for logs, reports and the manifest
/// (the manifest and report live next to the published files).
pub fn redact_url(url: &str) -> String {
    let (without_query, query) = match url.find(['?', '#']) {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    format!("{}{}", redact_user_info(without_query), redact_query(query))
}

/// `scheme://user:pass@host/…` to `scheme://***@host/…`.
fn redact_user_info(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // A password may hold '/' (base64 secrets often do), so the user info ends at the last '@',
    // not at the first '/'. An '@' after a '/' with no ':' before it is a path, not credentials.
    match rest.rfind('@') {
        Some(at) if rest[..at].contains(':') || !rest[..at].contains('/') => {
            format!("{scheme}://***@{}", &rest[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Every query (and fragment) parameter value to `***`: tokens travel as `?private_token=`,
/// `?access_token=` or signed-URL parameters, and no value there is needed to read a log.
fn redact_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(delimiter) = rest.chars().next() {
        out.push(delimiter);
        rest = &rest[delimiter.len_utf8()..];
        let end = rest.find(['&', ';', '#']).unwrap_or(rest.len());
        let (parameter, tail) = rest.split_at(end);
        match parameter.split_once('=') {
            Some((name, _)) => {
                out.push_str(name);
                out.push_str("=***");
            }
            None if parameter.is_empty() => {}
            None => out.push_str("***"),
        }
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(redact_url("https://user:tok@git.example/a/b.git"), "https://***@git.example/a/b.git");
        assert_eq!(redact_url("https://git.example/a@b.git"), "https://git.example/a@b.git");
        assert_eq!(redact_url("/srv/git/a.git"), "/srv/git/a.git");
        assert_eq!(redact_url("amqp://farm:ab/cd+ef==@rabbitmq:5672/%2f"), "amqp://***@rabbitmq:5672/%2f");
        assert_eq!(redact_url("amqps://farm:p@ss@mq.example/vhost"), "amqps://***@mq.example/vhost");
        assert_eq!(
            redact_url("https://gitlab.example/a/b.git?private_token=glpat-123&x=1"),
            "https://gitlab.example/a/b.git?private_token=***&x=***"
        );
        assert_eq!(redact_url("https://h/r.git?access_token=abc#frag"), "https://h/r.git?access_token=***#***");
        assert_eq!(redact_url("https://u:p@h/r.git?tok"), "https://***@h/r.git?***");
        assert_eq!(redact_url("https://h/a@b?x=@y"), "https://h/a@b?x=***");
    }
}
