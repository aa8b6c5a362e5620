//! The one redaction for every URL the petstore prints, in an error, a log
//! line or a response: the scheme, host, port and path stay; the user info and
//! secret query parameters do not.

/// Query parameters whose values are secrets, matched as parts of the
/// lower-cased name (`password`, `sslpassword`, `api_key`, `access_token`, …).
const SECRET_PARAMETERS: [&str; 7] = ["pass", "pwd", "secret", "token", "key", "auth", "cred"];

/// What stands in for a removed secret.
const HIDDEN: &str = "***";

/// `url` without its secrets.
///
/// ```
/// use petstore_example::redact::url;
///
/// assert_eq!(url("nats://user:secretpw@127.0.0.1:4999"), "nats://***@127.0.0.1:4999");
/// // A password may itself hold `@`: everything up to the last one goes.
/// assert_eq!(
///     url("postgres://postgres:secret@pw@127.0.0.1:5432/test?sslmode=disable&password=x"),
///     "postgres://***@127.0.0.1:5432/test?sslmode=disable&password=***"
/// );
/// assert_eq!(url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
/// ```
pub fn url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let query_at = rest.find(['?', '#']).unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(query_at);
    // Everything up to the last `@` before the query is user info, even when a
    // password holds `@` or `/`: losing a host is better than leaking a secret.
    let location = match before_query.rfind('@') {
        Some(at) => format!("{HIDDEN}@{}", &before_query[at + 1..]),
        None => before_query.to_owned(),
    };
    let mut out = match scheme {
        Some(scheme) => format!("{scheme}://{location}"),
        None => location,
    };
    out.push_str(&redact_query(query));
    out
}

/// `?a=1&password=x#f` → `?a=1&password=***#f`.
fn redact_query(query: &str) -> String {
    let Some(body) = query.strip_prefix('?') else {
        return query.to_owned();
    };
    let (params, fragment) = match body.split_once('#') {
        Some((params, fragment)) => (params, Some(fragment)),
        None => (body, None),
    };
    let params: Vec<String> = params
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((name, _)) if is_secret(name) => format!("{name}={HIDDEN}"),
            _ => param.to_owned(),
        })
        .collect();
    let mut out = format!("?{}", params.join("&"));
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMETERS.iter().any(|s| name.contains(s))
}

/// `message` with every secret of `url` removed: the user info and secret
/// parameter values wherever they appear (a client library may quote them),
/// and the URL itself in its redacted form.
///
/// ```
/// use petstore_example::redact::scrub;
///
/// let url = "redis://:secretpw@127.0.0.1:6379";
/// let message = format!("cannot connect to {url}: auth secretpw refused");
/// assert_eq!(
///     scrub(&message, url),
///     "cannot connect to redis://***@127.0.0.1:6379: auth *** refused"
/// );
/// ```
pub fn scrub(message: &str, url: &str) -> String {
    let mut out = message.replace(url, &self::url(url));
    for secret in secrets(url) {
        out = out.replace(secret, HIDDEN);
    }
    out
}

/// The secret pieces of `url`, longest first so that a password inside the
/// whole user info is replaced with it.
fn secrets(url: &str) -> Vec<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let query_at = rest.find(['?', '#']).unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(query_at);
    let mut secrets = Vec::new();
    if let Some(at) = before_query.rfind('@') {
        // A user name alone is no secret, and may be an ordinary word
        // (`postgres`): only a user info with a password is scrubbed.
        let user_info = &before_query[..at];
        if let Some((_, password)) = user_info.split_once(':') {
            secrets.push(user_info);
            secrets.push(password);
        }
    }
    for param in query.trim_start_matches('?').split(['&', '#']) {
        if let Some((name, value)) = param.split_once('=') {
            if is_secret(name) {
                secrets.push(value);
            }
        }
    }
    // Short pieces would blank out ordinary words.
    secrets.retain(|s| s.len() >= 3);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_and_secret_parameters_go_the_rest_stays() {
        let cases = [
            (
                "nats://user:secretpw@127.0.0.1:4999",
                "nats://***@127.0.0.1:4999",
            ),
            (
                "redis://:secretpw@127.0.0.1:6379",
                "redis://***@127.0.0.1:6379",
            ),
            (
                "postgres://postgres@127.0.0.1:5432/nonexistent_db?password=secretpw",
                "postgres://***@127.0.0.1:5432/nonexistent_db?password=***",
            ),
            (
                "postgres://postgres:secret@pw@127.0.0.1:5432/test",
                "postgres://***@127.0.0.1:5432/test",
            ),
            (
                "postgres://u:p/w@db:5432/test?sslmode=require&sslpassword=k&application_name=pets",
                "postgres://***@db:5432/test?sslmode=require&sslpassword=***&application_name=pets",
            ),
            (
                "sqlite:///tmp/pets.db?mode=rwc",
                "sqlite:///tmp/pets.db?mode=rwc",
            ),
            ("user:pw@127.0.0.1:9000", "***@127.0.0.1:9000"),
            ("127.0.0.1:9000", "127.0.0.1:9000"),
        ];
        for (raw, want) in cases {
            assert_eq!(url(raw), want, "{raw}");
            assert!(!url(raw).contains("secret"), "{raw}");
        }
    }

    #[test]
    fn a_message_loses_every_piece_of_the_secret() {
        let raw = "postgres://postgres:secret@pw@127.0.0.1:5432/db?password=hunter22";
        let message = format!(
            "cannot connect to {raw}: password authentication failed (secret@pw, hunter22)"
        );
        let scrubbed = scrub(&message, raw);
        assert_eq!(
            scrubbed,
            "cannot connect to postgres://***@127.0.0.1:5432/db?password=***: \
             password authentication failed (***, ***)"
        );
    }
}
