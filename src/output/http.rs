//! What the HTTP outputs share: the agent (timeouts, TLS with an optional
//! private CA), the password file, and short error texts.

use std::path::Path;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// An agent whose every request is bounded by `timeout`; with `ca`, TLS
/// trusts exactly the certificates in that PEM file (a monitoring server
/// with its own CA, as Icinga 2 has), else the public web roots. Any HTTP
/// status comes back as a response: the outputs decide what it means.
pub fn agent(timeout: Duration, ca: Option<&Path>) -> Result<ureq::Agent, String> {
    let roots = match ca {
        Some(ca) => RootCerts::Specific(std::sync::Arc::new(ca_certs(ca)?)),
        None => RootCerts::WebPki,
    };
    Ok(ureq::Agent::config_builder()
        .timeout_connect(Some(timeout))
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .user_agent(concat!("picomon/", env!("CARGO_PKG_VERSION")))
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .new_agent())
}

/// The certificates of a CA file, each checked to be usable as a trust
/// anchor, so a bad file is an error at start rather than at every post.
fn ca_certs(ca: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
        .and_then(|it| it.collect())
        .map_err(|e| {
            format!(
                "cannot read CA file {}: {e} (give the PEM file of the CA that signed the server's certificate)",
                ca.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "CA file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            ca.display()
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in &certs {
        roots
            .add(cert.clone())
            .map_err(|e| format!("CA file {}: {e}", ca.display()))?;
    }
    Ok(certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect())
}

/// The first line of `path`, without its newline: secrets stay out of the
/// config (and out of logs and command lines).
pub fn read_secret(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read password file {}: {e} (it should hold the password on its first line, readable by picomon's user only)",
            path.display()
        )
    })?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// The text of a request that got no answer, for logs and the dump.
pub fn describe(url: &str, err: ureq::Error) -> String {
    format!("cannot reach {url}: {err}")
}

/// The text of an answer with an unwanted status, with the start of its
/// body (servers say there what was wrong), bounded.
pub fn refusal(url: &str, resp: ureq::http::Response<ureq::Body>) -> String {
    format!(
        "{url} answered HTTP {}: {}",
        resp.status().as_u16(),
        body_excerpt(resp)
    )
}

/// The first 300 characters of a response body, trimmed.
pub fn body_excerpt(resp: ureq::http::Response<ureq::Body>) -> String {
    let body = resp
        .into_body()
        .into_with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    body.trim().chars().take(300).collect()
}

/// `Authorization: Basic ...` for `user:password`.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_examples() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (i, o) in cases {
            assert_eq!(super::base64(i.as_bytes()), o);
        }
    }
}
