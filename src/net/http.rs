//! What the HTTP clients of picomon share (the passive outputs, and any
//! channel that posts to a server): the agent (timeouts, TLS with an
//! optional private CA and an optional client certificate), the password
//! file, and short error texts.

use std::net::SocketAddr;

use std::path::{Path, PathBuf};
use std::time::Duration;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

/// A TLS client certificate: `client_cert` (PEM, the certificate first,
/// then any intermediates) and `client_key` (PEM private key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ClientTls {
    /// `client_cert` and `client_key` of `func()` (empty = not given): both
    /// or neither.
    pub fn pair(
        func: &str,
        cert: Option<String>,
        key: Option<String>,
    ) -> Result<Option<ClientTls>, String> {
        match (
            cert.filter(|s| !s.is_empty()),
            key.filter(|s| !s.is_empty()),
        ) {
            (Some(cert), Some(key)) => Ok(Some(ClientTls {
                cert: cert.into(),
                key: key.into(),
            })),
            (None, None) => Ok(None),
            _ => Err(format!(
                "{func}(): client_cert and client_key go together: give both PEM files, or neither"
            )),
        }
    }
}

/// An agent whose every request is bounded by `timeout` (the probes'
/// agent, see there), trusting `ca` or the web roots, showing `client`'s
/// certificate when the server asks (TLS as [`tls_config`] sets it up).
/// Any HTTP status comes back as a response: the caller decides what it
/// means.
pub fn client_agent(
    timeout: Duration,
    ca: Option<&Path>,
    client: Option<&ClientTls>,
) -> Result<ureq::Agent, String> {
    Ok(agent(timeout, tls_config(ca, client)?, 0, None))
}

/// TLS for a client of a server: with `ca`, it trusts exactly the
/// certificates in that PEM file (a monitoring server with its own CA, as
/// Icinga 2 has), else the public web roots; with `client`, it shows that
/// certificate when the server asks (Icinga 2's `client_cn`, a receiver
/// that only takes known clients). Files are read now, so a wrong path or
/// a file that is not PEM is an error at start, naming the file.
pub fn tls_config(ca: Option<&Path>, client: Option<&ClientTls>) -> Result<TlsConfig, String> {
    let roots = match ca {
        Some(ca) => RootCerts::Specific(std::sync::Arc::new(ca_certs(ca)?)),
        None => RootCerts::WebPki,
    };
    let client = client.map(client_cert).transpose()?;
    Ok(TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client)
        .build())
}

/// Reads a client certificate chain and its key.
fn client_cert(c: &ClientTls) -> Result<ClientCert, String> {
    let chain: Vec<Certificate<'static>> = super::tls::pem_certs("client_cert", &c.cert)?
        .iter()
        .map(|d| Certificate::from_der(d.as_ref()).to_owned())
        .collect();
    let shown = c.key.display();
    let pem = crate::secret::read(&c.key).map_err(|e| {
        format!("cannot read client_key {shown}: {e} (give the PEM private key of client_cert, readable by picomon's user only)")
    })?;
    let key = PrivateKey::from_pem(&pem).map_err(|e| {
        format!("client_key {shown} holds no usable private key ({e}): it needs a -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY) block")
    })?;
    Ok(ClientCert::new_with_certs(&chain, key))
}

/// The certificates of a CA file, each checked to be usable as a trust
/// anchor, so a bad file is an error at start rather than at every post.
fn ca_certs(ca: &Path) -> Result<Vec<Certificate<'static>>, String> {
    let certs = super::tls::pem_certs("CA file", ca)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in &certs {
        roots
            .add(cert.clone())
            .map_err(|e| format!("CA file {}: unusable CA certificate: {e}", ca.display()))?;
    }
    Ok(certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect())
}

/// The first line of `path`, without its newline: secrets stay out of the
/// config (and out of logs and command lines).
pub fn read_secret(path: &Path) -> Result<String, String> {
    let text = crate::secret::read_to_string(path).map_err(|e| {
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
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// A ureq agent (for a probe run, or an output's posts): everything
/// bounded by `left`, at most
/// `redirects` followed, any status returned as a response, no proxy from
/// the environment (a probe talks to the host it names), and with `addrs`
/// only those addresses are connected to, whatever the URL's host name.
pub fn agent(
    left: Duration,
    tls: ureq::tls::TlsConfig,
    redirects: u32,
    addrs: Option<Vec<SocketAddr>>,
) -> ureq::Agent {
    let config = agent_config(left, tls, redirects);
    match addrs {
        Some(addrs) => ureq::Agent::with_parts(config, DefaultConnector::new(), Fixed(addrs)),
        None => config.new_agent(),
    }
}

/// The settings of every agent [`agent`] makes.
pub(crate) fn agent_config(
    left: Duration,
    tls: ureq::tls::TlsConfig,
    redirects: u32,
) -> ureq::config::Config {
    ureq::Agent::config_builder()
        .timeout_connect(Some(left))
        .timeout_global(Some(left))
        .max_redirects(redirects)
        .http_status_as_error(false)
        .proxy(None)
        .user_agent(concat!("picomon/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
}

/// Addresses already resolved (for the probe's address family, within its
/// deadline), handed to ureq in place of its own lookup.
#[derive(Debug)]
pub(crate) struct Fixed(pub(crate) Vec<SocketAddr>);

impl Resolver for Fixed {
    fn resolve(
        &self,
        _: &ureq::http::Uri,
        _: &ureq::config::Config,
        _: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut out = self.empty();
        for a in &self.0 {
            if out.try_push(*a).is_err() {
                break;
            }
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_auth_is_rfc7617() {
        // The example of RFC 7617 section 2.
        assert_eq!(
            super::basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
