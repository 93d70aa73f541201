//! Throw-away test CAs and server certificates, made with the openssl
//! command in a test's own directory, so TLS tests verify a real chain
//! without any certificate kept in the repository.
#![allow(dead_code)]

use std::fs;
use std::path::Path;
use std::process::Command;

/// The kind of key made for a CA or a certificate.
#[derive(Clone, Copy, Debug)]
pub enum Key {
    /// P-256: quick to make.
    Ec,
    /// RSA 2048, for peers that want it.
    Rsa,
}

impl Key {
    fn newkey(self) -> &'static [&'static str] {
        match self {
            Key::Ec => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            Key::Rsa => &["-newkey", "rsa:2048"],
        }
    }
}

/// Runs `openssl ARGS` in `dir`; fails the test with openssl's error.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (see tests/install-and-test)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA in `dir`: its key is `NAME.key`, its certificate `NAME.EXT`;
/// certificates it signs are named the same way.
#[derive(Clone, Copy, Debug)]
pub struct Ca<'a> {
    pub dir: &'a Path,
    pub name: &'a str,
    /// File ending of certificates, `pem` or `crt`, as the peer expects.
    pub ext: &'a str,
    pub key: Key,
    /// Validity of the CA and of what it signs.
    pub days: u32,
}

impl Ca<'_> {
    /// Makes the self-signed CA certificate, subject `CN=cn` (and `dir`
    /// when missing).
    pub fn make(&self, cn: &str) {
        fs::create_dir_all(self.dir).expect("certificate dir");
        let (key, cert) = self.files(self.name);
        let (days, subj) = (self.days.to_string(), format!("/CN={cn}"));
        let mut args = vec!["req", "-x509", "-nodes", "-days", &days];
        args.extend(self.key.newkey());
        args.extend([
            "-keyout",
            &key,
            "-out",
            &cert,
            "-subj",
            &subj,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(self.dir, &args);
    }

    /// Makes `NAME.key` and `NAME.EXT`, a leaf certificate signed by this CA
    /// with subject `CN=cn`, subjectAltName `san` (`DNS:localhost,IP:::1`)
    /// and extendedKeyUsage `usage` (`serverAuth`).
    pub fn sign(&self, name: &str, cn: &str, san: &str, usage: &str) {
        let (key, cert) = self.files(name);
        let (csr, ext) = (format!("{name}.csr"), format!("{name}.ext"));
        fs::write(
            self.dir.join(&ext),
            format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"),
        )
        .expect("extensions file");
        let subj = format!("/CN={cn}");
        let mut args = vec!["req", "-nodes", "-subj", &subj];
        args.extend(self.key.newkey());
        args.extend(["-keyout", &key, "-out", &csr]);
        openssl(self.dir, &args);
        let (ca_key, ca_cert) = self.files(self.name);
        let days = self.days.to_string();
        openssl(
            self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_cert,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                &days,
                "-out",
                &cert,
                "-extfile",
                &ext,
            ],
        );
    }

    fn files(&self, name: &str) -> (String, String) {
        (format!("{name}.key"), format!("{name}.{}", self.ext))
    }
}
