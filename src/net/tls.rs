//! TLS pieces shared by probes, channels and passive outputs.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

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
