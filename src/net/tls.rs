//! TLS pieces shared by probes, channels and passive outputs.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The TLS that every connection of picomon's own speaks (probes, mail,
/// channels, outputs): ring's AES-GCM suites of TLS 1.3 and 1.2, ring's
/// key exchange groups (X25519, P-256, P-384), and signatures checked by
/// webpki with ring. ChaCha20-Poly1305 is left out: every TLS 1.3 server
/// has AES-128-GCM, a TLS 1.2 server that rustls can talk to has AES-GCM
/// too, and the ChaCha code took 0.05 MB of the executable. Built from its
/// parts, as rustls's `default_provider()` would link ChaCha in again.
pub fn provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::ring::{cipher_suite as suite, kx_group};
    rustls::crypto::CryptoProvider {
        cipher_suites: vec![
            suite::TLS13_AES_256_GCM_SHA384,
            suite::TLS13_AES_128_GCM_SHA256,
            suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ],
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        signature_verification_algorithms: SIGNATURES,
        secure_random: &SystemRandom,
        key_provider: &RingKeys,
    }
}

/// The signatures a server's handshake and its certificates may carry.
/// `mapping`: for each scheme a server may sign its handshake with, what
/// checks it (a TLS 1.2 ECDSA scheme does not fix the curve). `all`:
/// those, and PKCS#1 with its parameters left out, seen in certificates.
static SIGNATURES: rustls::crypto::WebPkiSupportedAlgorithms = {
    use rustls::SignatureScheme as S;
    use webpki::ring as a;
    rustls::crypto::WebPkiSupportedAlgorithms {
        all: &[
            a::ECDSA_P256_SHA256,
            a::ECDSA_P256_SHA384,
            a::ECDSA_P384_SHA256,
            a::ECDSA_P384_SHA384,
            a::ED25519,
            a::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            a::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
            a::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
            a::RSA_PKCS1_2048_8192_SHA256,
            a::RSA_PKCS1_2048_8192_SHA384,
            a::RSA_PKCS1_2048_8192_SHA512,
            a::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
            a::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
            a::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
        ],
        mapping: &[
            (
                S::ECDSA_NISTP384_SHA384,
                &[a::ECDSA_P384_SHA384, a::ECDSA_P256_SHA384],
            ),
            (
                S::ECDSA_NISTP256_SHA256,
                &[a::ECDSA_P256_SHA256, a::ECDSA_P384_SHA256],
            ),
            (S::ED25519, &[a::ED25519]),
            (S::RSA_PSS_SHA512, &[a::RSA_PSS_2048_8192_SHA512_LEGACY_KEY]),
            (S::RSA_PSS_SHA384, &[a::RSA_PSS_2048_8192_SHA384_LEGACY_KEY]),
            (S::RSA_PSS_SHA256, &[a::RSA_PSS_2048_8192_SHA256_LEGACY_KEY]),
            (S::RSA_PKCS1_SHA512, &[a::RSA_PKCS1_2048_8192_SHA512]),
            (S::RSA_PKCS1_SHA384, &[a::RSA_PKCS1_2048_8192_SHA384]),
            (S::RSA_PKCS1_SHA256, &[a::RSA_PKCS1_2048_8192_SHA256]),
        ],
    }
};

/// Randomness for TLS: the system's, through ring.
#[derive(Debug)]
struct SystemRandom;

impl rustls::crypto::SecureRandom for SystemRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), buf)
            .map_err(|_| rustls::crypto::GetRandomFailed)
    }
}

/// Client keys (`client_key`) as ring signs with them.
#[derive(Debug)]
struct RingKeys;

impl rustls::crypto::KeyProvider for RingKeys {
    fn load_private_key(
        &self,
        key: PrivateKeyDer<'static>,
    ) -> Result<std::sync::Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
        rustls::crypto::ring::sign::any_supported_type(&key)
    }
}

/// Makes [`provider`] the process's default, which lettre's SMTP client
/// takes (it is built without a provider of its own). Idempotent.
pub fn install_default() {
    // Err: one is installed already, which can only be this one.
    let _ = provider().install_default();
}

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
    let provider = std::sync::Arc::new(provider());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picomon_speaks_aes_gcm_over_tls_1_2_and_1_3() {
        let p = provider();
        let names: Vec<String> = p
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(names.len(), 6, "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| n.contains("AES_") && n.contains("GCM")),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n.starts_with("TLS13_")), "{names:?}");
        assert!(
            names.iter().any(|n| n.starts_with("TLS_ECDHE_RSA_")),
            "{names:?}"
        );
        let groups: Vec<String> = p
            .kx_groups
            .iter()
            .map(|g| format!("{:?}", g.name()))
            .collect();
        assert_eq!(groups, ["X25519", "secp256r1", "secp384r1"]);
        // rustls accepts it for both versions, and a client config builds.
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        assert!(config(roots, None).is_ok());
        install_default();
        install_default();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
