//! What the HTTP outputs share: the agent (timeouts, TLS with an optional
//! private CA), the password file, and short error texts.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// An agent whose every connect and read is bounded by `timeout`; with
/// `ca`, TLS trusts exactly the certificates in that PEM file (a monitoring
/// server with its own CA, as Icinga 2 has), else the public web roots.
pub fn agent(timeout: Duration, ca: Option<&Path>) -> Result<ureq::Agent, String> {
    let mut b = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout(timeout)
        .redirects(0)
        .user_agent(concat!("picomon/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca {
        b = b.tls_config(Arc::new(tls_config(ca)?));
    }
    Ok(b.build())
}

fn tls_config(ca: &Path) -> Result<rustls::ClientConfig, String> {
    let file = File::open(ca).map_err(|e| {
        format!(
            "cannot read CA file {}: {e} (give the PEM file of the CA that signed the server's certificate)",
            ca.display()
        )
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
        let cert = cert.map_err(|e| format!("CA file {}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("CA file {}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "CA file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            ca.display()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
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

/// The text of a failed request, bounded, for logs and the dump.
pub fn describe(url: &str, err: ureq::Error) -> String {
    match err {
        ureq::Error::Status(code, resp) => {
            let body = resp.into_string().unwrap_or_default();
            let body: String = body.trim().chars().take(300).collect();
            format!("{url} answered HTTP {code}: {body}")
        }
        ureq::Error::Transport(t) => {
            let text = t.to_string();
            let text = text.strip_prefix(&format!("{url}: ")).unwrap_or(&text);
            format!("cannot reach {url}: {text}")
        }
    }
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
