//! TLS pieces shared by probes, channels and passive outputs.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificates of a PEM file of CA certificates (`what` names the
/// setting in messages); an unreadable file, bad PEM or a file without
/// certificates is an error naming the file.
pub fn pem_certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| {
            format!("cannot read {what} {shown}: {e} (give a readable PEM file of CA certificates)")
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what} {shown} is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {shown} holds no certificate (it needs -----BEGIN CERTIFICATE----- blocks)"
        ));
    }
    Ok(certs)
}

/// A rustls client config for a TLS connection of picomon's own: it trusts exactly the certificates of `ca` (a server
/// with its own CA), or else the public web roots. The file is read now,
/// so a wrong path is an error at start.
pub fn client_config(ca: Option<&Path>) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(ca) => {
            for cert in pem_certs("ca_file", ca)? {
                roots.add(cert).map_err(|e| {
                    format!("ca_file {}: unusable CA certificate: {e}", ca.display())
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    config(roots, None)
}

/// A rustls client config trusting `roots` and showing `client` (a chain
/// and its key) when the server asks: TLS 1.2 and 1.3 with ring, as every
/// client of picomon's own connects.
pub fn config(
    roots: rustls::RootCertStore,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots);
    let cfg = match client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("client_cert and client_key do not go together: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(std::sync::Arc::new(cfg))
}
