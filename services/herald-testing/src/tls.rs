//! Certificates a test makes for itself (rcgen): a CA, a server certificate for 127.0.0.1 and
//! localhost that it signed, a client certificate it signed, and a second CA that signed nothing
//! here (a client trusting only that one must refuse the server). Written as PEM files into a
//! directory of the test's own, removed on drop.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::servers::scratch_directory;

pub struct TestCertificates {
    directory: PathBuf,
}

impl TestCertificates {
    pub fn generate() -> TestCertificates {
        let directory = scratch_directory("tls");
        let (ca, ca_key) = certificate_authority("Herald test CA");
        let (other_ca, _) = certificate_authority("A CA nobody here uses");
        let server_key = KeyPair::generate().unwrap();
        let mut server = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        server
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server
            .distinguished_name
            .push(DnType::CommonName, "herald test server");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = server.signed_by(&server_key, &ca, &ca_key).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "herald test client");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client = client.signed_by(&client_key, &ca, &ca_key).unwrap();
        let files = [
            ("ca.pem", ca.pem()),
            ("other-ca.pem", other_ca.pem()),
            ("server.pem", server.pem()),
            ("server.key", server_key.serialize_pem()),
            // Kafka's PEM keystore: the key and its certificate in one file.
            (
                "server-keystore.pem",
                format!("{}{}", server_key.serialize_pem(), server.pem()),
            ),
            ("client.pem", client.pem()),
            ("client.key", client_key.serialize_pem()),
        ];
        for (name, contents) in files {
            std::fs::write(directory.join(name), contents).unwrap();
        }
        TestCertificates { directory }
    }

    fn file(&self, name: &str) -> String {
        self.directory.join(name).display().to_string()
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The CA that signed the server's and the client's certificates.
    pub fn ca_file(&self) -> String {
        self.file("ca.pem")
    }

    /// A CA that signed nothing here.
    pub fn other_ca_file(&self) -> String {
        self.file("other-ca.pem")
    }

    pub fn server_certificate_file(&self) -> String {
        self.file("server.pem")
    }

    pub fn server_key_file(&self) -> String {
        self.file("server.key")
    }

    pub fn server_keystore_file(&self) -> String {
        self.file("server-keystore.pem")
    }

    pub fn client_certificate_file(&self) -> String {
        self.file("client.pem")
    }

    pub fn client_key_file(&self) -> String {
        self.file("client.key")
    }
}

impl Drop for TestCertificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

fn certificate_authority(name: &str) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let certificate = params.self_signed(&key).unwrap();
    (certificate, key)
}
