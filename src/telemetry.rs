//! Logging setup. Secrets never reach a log line: secret types print redacted `Debug`, and
//! [`redact_query`] scrubs `secret=` from any URL or query string before it is logged.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber. `RUST_LOG` wins over the configured level. Calling it
/// twice is harmless (the second call does nothing), which keeps tests simple.
pub fn init(log: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Replaces the value of every `secret` parameter in a query string (or a whole URL) with
/// `***`, leaving everything else as it was. Names are compared as the server reads them,
/// percent- and plus-decoded, so `%73ecret=` is redacted too.
pub fn redact_query(url_or_query: &str) -> String {
    let (head, query) = match url_or_query.find('?') {
        Some(i) => url_or_query.split_at(i + 1),
        None if url_or_query.contains('=') => ("", url_or_query),
        None => return url_or_query.to_owned(),
    };
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_name(name) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{head}{}", redacted.join("&"))
}

fn is_secret_name(raw: &str) -> bool {
    url::form_urlencoded::parse(raw.as_bytes())
        .next()
        .is_some_and(|(name, _)| name.eq_ignore_ascii_case("secret"))
}

#[cfg(test)]
mod tests {
    use super::redact_query;

    #[test]
    fn secret_parameters_are_redacted_everywhere() {
        assert_eq!(
            redact_query("/credits?from=*TESTID1&secret=abcDEF123&x=1"),
            "/credits?from=*TESTID1&secret=***&x=1"
        );
        assert_eq!(redact_query("secret=s3cr3t&from=x"), "secret=***&from=x");
        assert_eq!(redact_query("/health"), "/health");
        assert_eq!(redact_query("/a?SECRET=x"), "/a?SECRET=***");
        assert!(!redact_query("/a?secretive=1&secret=hunter2").contains("hunter2"));
        // However the name is spelt on the wire, as long as it decodes to `secret`.
        for name in ["%73ecret", "s%65cret", "%53%45%43%52%45%54", "secre%74"] {
            let logged = redact_query(&format!("/credits?from=*TESTID1&{name}=hunter2"));
            assert_eq!(logged, format!("/credits?from=*TESTID1&{name}=***"));
        }
        assert_eq!(redact_query("/a?secret+=x"), "/a?secret+=x");
    }
}
