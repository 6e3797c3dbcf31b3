//! Signed build provenance: what every build publishes as `provenance/<build-id>.intoto.jsonl`, so
//! anyone can check which git commits each archive was built from, with which inputs, by which
//! farm version, and that the farm's key signed it.
//!
//! The file holds one line per envelope: a [DSSE] envelope (payload type
//! `application/vnd.in-toto+json`, signed with ed25519 over the DSSE pre-authentication encoding,
//! [`pae`]) around an [in-toto Statement v1] whose predicate is [SLSA Provenance v1]. Subjects are
//! the archives (`name@version`, SHA-256 and SHA-1, the storage key as an annotation); resolved
//! dependencies are the git refs read, each with its commit. Subjects and materials are sorted
//! (and exact duplicates dropped) so the statement bytes depend only on the facts, not on the order
//! they were gathered in.
//!
//! Keys: [`Signer`] takes a PKCS#8 PEM private key (`openssl genpkey -algorithm ed25519`) or a bare
//! 32-byte seed (64 hex characters or base64); [`Verifier`] takes an SPKI PEM public key (`openssl
//! pkey -pubout`) or the bare 32 bytes. A signature's `keyid` is the hex SHA-256 of the 32 raw
//! public key bytes. Key errors never show key material.
//!
//! [DSSE]: https://github.com/secure-systems-lab/dsse/blob/master/envelope.md
//! [in-toto Statement v1]: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md
//! [SLSA Provenance v1]: https://slsa.dev/spec/v1.0/provenance

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use shared::identity::shown;

/// The SLSA `buildType` of a farm build: a Composer repository built from git refs.
pub const BUILD_TYPE: &str = "https://github.com/mage-os/composer-farm/build-types/composer-repository/v1";
/// The SLSA `builder.id`: the farm's coordinator, which plans, records and signs every build.
pub const BUILDER_ID: &str = "https://github.com/mage-os/composer-farm/coordinator";
/// The DSSE `payloadType` of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The in-toto `_type` of a v1 statement.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The in-toto `predicateType` of SLSA Provenance v1.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

/// One archive built or adopted in the build.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subject {
    /// The Composer package name, `vendor/name`.
    pub name: String,
    /// The Composer version.
    pub version: String,
    /// The storage key, e.g. `packages/acme/a-1.0.0.zip`.
    pub key: String,
    /// Hex SHA-256 of the archive.
    pub sha256: String,
    /// Hex SHA-1 of the archive (what Composer's `dist.shasum` holds).
    pub sha1: String,
}

/// One git ref a build read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Material {
    /// The git URL, credentials already redacted by the caller.
    pub repo: String,
    /// The ref read, e.g. `refs/tags/1.0.0`.
    pub git_ref: String,
    /// The 40-hex commit the ref pointed at.
    pub commit: String,
}

/// What a build records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildFacts {
    /// The build id, the statement's `invocationId`.
    pub build_id: String,
    /// When the build started, RFC 3339.
    pub started_on: String,
    /// When the build finished, RFC 3339.
    pub finished_on: String,
    /// The farm's version.
    pub farm_version: String,
    /// The report's recorded inputs.
    pub inputs: Value,
    /// Upstream key → rules fingerprint.
    pub rules: BTreeMap<String, String>,
    /// The archives built or adopted.
    pub subjects: Vec<Subject>,
    /// The git refs read.
    pub materials: Vec<Material>,
}

/// The in-toto statement for `facts`: subjects sorted by (name, version) and materials by
/// (repo, ref), exact duplicates dropped.
pub fn statement(facts: &BuildFacts) -> Value {
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects_json(&facts.subjects),
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate(facts),
    })
}

/// [`statement`] as compact JSON bytes: the same facts, in any order, give the same bytes.
pub fn statement_bytes(facts: &BuildFacts) -> Vec<u8> {
    statement(facts).to_string().into_bytes()
}

/// The SLSA Provenance v1 predicate.
fn predicate(facts: &BuildFacts) -> Value {
    json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": { "inputs": facts.inputs },
            "internalParameters": { "rules": facts.rules },
            "resolvedDependencies": materials_json(&facts.materials),
        },
        "runDetails": {
            "builder": { "id": BUILDER_ID, "version": { "composer-farm": facts.farm_version } },
            "metadata": {
                "invocationId": facts.build_id,
                "startedOn": facts.started_on,
                "finishedOn": facts.finished_on,
            },
        },
    })
}

/// Subjects sorted and deduplicated, as in-toto ResourceDescriptors.
fn subjects_json(subjects: &[Subject]) -> Vec<Value> {
    sorted(subjects)
        .into_iter()
        .map(|s| {
            json!({
                "name": format!("{}@{}", s.name, s.version),
                "digest": { "sha256": s.sha256, "sha1": s.sha1 },
                "annotations": { "key": s.key },
            })
        })
        .collect()
}

/// Materials sorted and deduplicated, as in-toto ResourceDescriptors.
fn materials_json(materials: &[Material]) -> Vec<Value> {
    sorted(materials)
        .into_iter()
        .map(|m| {
            json!({
                "uri": format!("git+{}@{}", m.repo, m.git_ref),
                "digest": { "gitCommit": m.commit },
                "name": m.git_ref,
            })
        })
        .collect()
}

/// References to `items` in order (field order: name, version, … / repo, ref, commit), without
/// exact duplicates.
fn sorted<T: Ord>(items: &[T]) -> Vec<&T> {
    let mut refs: Vec<&T> = items.iter().collect();
    refs.sort();
    refs.dedup();
    refs
}

/// The DSSE pre-authentication encoding, what is signed:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths as ASCII decimal byte counts.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The signed provenance of `facts`: one DSSE envelope as compact JSON, ending in '\n'.
pub fn sign(facts: &BuildFacts, signer: &Signer) -> Vec<u8> {
    envelope(PAYLOAD_TYPE, &statement_bytes(facts), signer)
}

/// Any payload signed into an envelope line.
fn envelope(payload_type: &str, payload: &[u8], signer: &Signer) -> Vec<u8> {
    let signature = signer.key.sign(&pae(payload_type, payload));
    let envelope = json!({
        "payloadType": payload_type,
        "payload": STANDARD.encode(payload),
        "signatures": [{ "keyid": signer.key_id(), "sig": STANDARD.encode(signature.to_bytes()) }],
    });
    let mut line = envelope.to_string().into_bytes();
    line.push(b'\n');
    line
}

/// The farm's ed25519 signing key.
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// A key from a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey
    /// -algorithm ed25519` writes) or a bare 32-byte seed as 64 hex characters or base64.
    /// Surrounding whitespace is ignored.
    pub fn from_pem(text: &str) -> Result<Signer, KeyError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN PUBLIC KEY-----") {
            return Err(KeyError::Format("a public key where a private key was expected".to_owned()));
        }
        if text.starts_with("-----BEGIN") {
            let key = SigningKey::from_pkcs8_pem(text)
                .map_err(|e| KeyError::Format(format!("not a PKCS#8 ed25519 private key: {e}")))?;
            return Ok(Signer { key });
        }
        Ok(Signer { key: SigningKey::from_bytes(&raw_key(text)?) })
    }

    /// [`Signer::from_pem`] of a file's contents; errors name the file.
    pub fn load(path: &Path) -> Result<Signer, KeyError> {
        Signer::from_pem(&read_key(path)?).map_err(|e| e.at(path))
    }

    /// The key id: hex SHA-256 of the 32 raw public key bytes.
    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    /// The public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`, what `openssl pkey -pubout`
    /// writes), ending in '\n'.
    pub fn public_pem(&self) -> String {
        self.verifier().public_pem()
    }

    /// The verifier of this key's signatures.
    pub fn verifier(&self) -> Verifier {
        Verifier { key: self.key.verifying_key() }
    }
}

impl From<SigningKey> for Signer {
    fn from(key: SigningKey) -> Signer {
        Signer { key }
    }
}

/// Shows the key id only, never the secret.
impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("key_id", &self.key_id()).finish()
    }
}

/// An ed25519 public key that provenance envelopes are checked against.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier {
    key: VerifyingKey,
}

impl Verifier {
    /// A key from an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`) or the bare 32 bytes as 64
    /// hex characters or base64. Surrounding whitespace is ignored.
    pub fn from_pem(text: &str) -> Result<Verifier, KeyError> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            let key = VerifyingKey::from_public_key_pem(text)
                .map_err(|e| KeyError::Format(format!("not an SPKI ed25519 public key: {e}")))?;
            return Ok(Verifier { key });
        }
        let key = VerifyingKey::from_bytes(&raw_key(text)?)
            .map_err(|_| KeyError::Format("32 bytes that are not an ed25519 public key".to_owned()))?;
        Ok(Verifier { key })
    }

    /// [`Verifier::from_pem`] of a file's contents; errors name the file.
    pub fn load(path: &Path) -> Result<Verifier, KeyError> {
        Verifier::from_pem(&read_key(path)?).map_err(|e| e.at(path))
    }

    /// The key id: hex SHA-256 of the 32 raw public key bytes.
    pub fn key_id(&self) -> String {
        key_id(&self.key)
    }

    /// The key as SPKI PEM, ending in '\n'.
    pub fn public_pem(&self) -> String {
        self.key.to_public_key_pem(LineEnding::LF).expect("an ed25519 public key always encodes as SPKI")
    }
}

impl From<VerifyingKey> for Verifier {
    fn from(key: VerifyingKey) -> Verifier {
        Verifier { key }
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier").field("key_id", &self.key_id()).finish()
    }
}

/// Hex SHA-256 of the raw public key.
fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// 32 bytes from 64 hex characters or base64 (standard or URL-safe, padded).
fn raw_key(text: &str) -> Result<[u8; 32], KeyError> {
    let mut bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|_| KeyError::Format("not hex".to_owned()))?
    } else {
        decode_base64(text)
            .ok_or_else(|| KeyError::Format("neither a PEM key, 64 hex characters nor base64".to_owned()))?
    };
    let key = <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| KeyError::Format(format!("a raw key of {} bytes, not 32", bytes.len())));
    bytes.fill(0);
    key
}

/// A key file's text.
fn read_key(path: &Path) -> Result<String, KeyError> {
    let bytes = fs::read(path).map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
    String::from_utf8(bytes).map_err(|_| KeyError::Format(format!("{}: not text", path.display())))
}

/// Standard base64, or URL-safe (DSSE allows either).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).or_else(|_| URL_SAFE.decode(text)).ok()
}

/// Why a key could not be loaded. Messages never hold key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
    /// The text is not a key in a form this module reads.
    #[error("not a usable ed25519 key: {0}")]
    Format(String),
}

impl KeyError {
    /// The error with the file it came from named.
    fn at(self, path: &Path) -> KeyError {
        match self {
            KeyError::Format(reason) => KeyError::Format(format!("{}: {reason}", path.display())),
            read @ KeyError::Read { .. } => read,
        }
    }
}

/// Why a provenance envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    /// The line is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not a DSSE envelope (fields missing or of the wrong type, payload not base64).
    #[error("not a DSSE envelope: {0}")]
    Malformed(String),
    /// The envelope carries something other than an in-toto statement.
    #[error("payload type \"{0}\", not \"application/vnd.in-toto+json\"")]
    WrongPayloadType(String),
    /// No signature verifies with the key: the envelope was tampered with, or another key signed
    /// it.
    #[error("no signature verifies with the key (tampered with, or signed by another key)")]
    BadSignature,
    /// Signed, but not an in-toto v1 statement of SLSA Provenance v1 as this farm writes them.
    #[error("not an in-toto SLSA provenance statement: {0}")]
    NotAStatement(String),
}

/// A statement whose signature verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The build id (`invocationId`).
    pub build_id: String,
    /// The subjects, in the statement's order.
    pub subjects: Vec<VerifiedSubject>,
    /// The whole statement.
    pub statement: Value,
}

/// One archive a verified statement vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSubject {
    /// The Composer package name.
    pub name: String,
    /// The Composer version.
    pub version: String,
    /// Hex SHA-256 of the archive.
    pub sha256: String,
    /// Hex SHA-1 of the archive, when the statement has it.
    pub sha1: Option<String>,
    /// The storage key, when the statement has it.
    pub key: Option<String>,
}

/// The envelope fields read; others are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSignature>,
}

/// One envelope signature.
#[derive(Deserialize)]
struct EnvelopeSignature {
    #[serde(default)]
    keyid: Option<String>,
    sig: String,
}

/// Opens one envelope line (a trailing newline is fine): checks the payload type, that a
/// signature verifies with `verifier` (strictly; signatures whose `keyid` names another key are
/// skipped, ones without a keyid are tried), and that the payload is an in-toto v1 statement of
/// SLSA Provenance v1.
pub fn open(envelope_line: &[u8], verifier: &Verifier) -> Result<Verified, ProvenanceError> {
    let envelope = parse_envelope(envelope_line)?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(ProvenanceError::WrongPayloadType(shown(&envelope.payload_type)));
    }
    let payload = decode_base64(&envelope.payload)
        .ok_or_else(|| ProvenanceError::Malformed("the payload is not base64".to_owned()))?;
    check_signatures(&envelope, &payload, verifier)?;
    read_statement(payload)
}

/// [`open`] of every non-empty line of a provenance file, in order; the first line that fails
/// fails the whole file. A file without any line gives an empty list.
pub fn open_all(file_bytes: &[u8], verifier: &Verifier) -> Result<Vec<Verified>, ProvenanceError> {
    file_bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.trim_ascii().is_empty())
        .map(|line| open(line, verifier))
        .collect()
}

/// The envelope of a line.
fn parse_envelope(line: &[u8]) -> Result<Envelope, ProvenanceError> {
    let value: Value =
        serde_json::from_slice(line.trim_ascii()).map_err(|e| ProvenanceError::NotJson(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| ProvenanceError::Malformed(e.to_string()))
}

/// Whether one signature meant for `verifier`'s key verifies over the PAE of the payload.
fn check_signatures(envelope: &Envelope, payload: &[u8], verifier: &Verifier) -> Result<(), ProvenanceError> {
    let message = pae(&envelope.payload_type, payload);
    let key_id = verifier.key_id();
    let verified = envelope
        .signatures
        .iter()
        .filter(|s| s.keyid.as_deref().is_none_or(|id| id.is_empty() || id.eq_ignore_ascii_case(&key_id)))
        .any(|s| verifies(&verifier.key, &message, &s.sig));
    if verified { Ok(()) } else { Err(ProvenanceError::BadSignature) }
}

/// Whether a base64 signature verifies strictly; undecodable signatures do not.
fn verifies(key: &VerifyingKey, message: &[u8], sig: &str) -> bool {
    let Some(bytes) = decode_base64(sig) else { return false };
    let Ok(signature) = Signature::from_slice(&bytes) else { return false };
    key.verify_strict(message, &signature).is_ok()
}

/// The verified payload read as a statement.
fn read_statement(payload: Vec<u8>) -> Result<Verified, ProvenanceError> {
    let statement: Value = serde_json::from_slice(&payload)
        .map_err(|e| ProvenanceError::NotAStatement(format!("the payload is not JSON: {e}")))?;
    expect_str(&statement, "/_type", STATEMENT_TYPE)?;
    expect_str(&statement, "/predicateType", PREDICATE_TYPE)?;
    let build_id = str_at(&statement, "/predicate/runDetails/metadata/invocationId")?.to_owned();
    let subjects = statement
        .get("subject")
        .and_then(Value::as_array)
        .ok_or_else(|| not_a_statement("no subject list"))?
        .iter()
        .map(verified_subject)
        .collect::<Result<_, _>>()?;
    Ok(Verified { build_id, subjects, statement })
}

/// One statement subject, `name@version` split at the first '@' (a Composer name has none, a
/// branch version may: `dev-fix@2`).
fn verified_subject(subject: &Value) -> Result<VerifiedSubject, ProvenanceError> {
    let full = str_at(subject, "/name")?;
    let (name, version) = full
        .split_once('@')
        .filter(|(name, version)| !name.is_empty() && !version.is_empty())
        .ok_or_else(|| not_a_statement(&format!("subject \"{}\" is not name@version", shown(full))))?;
    let optional = |pointer: &str| subject.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
    Ok(VerifiedSubject {
        name: name.to_owned(),
        version: version.to_owned(),
        sha256: str_at(subject, "/digest/sha256")?.to_owned(),
        sha1: optional("/digest/sha1"),
        key: optional("/annotations/key"),
    })
}

/// The string at a JSON pointer.
fn str_at<'a>(value: &'a Value, pointer: &str) -> Result<&'a str, ProvenanceError> {
    value.pointer(pointer).and_then(Value::as_str).ok_or_else(|| not_a_statement(&format!("no string at {pointer}")))
}

/// That the string at a JSON pointer is `expected`.
fn expect_str(value: &Value, pointer: &str, expected: &str) -> Result<(), ProvenanceError> {
    let found = str_at(value, pointer)?;
    if found == expected {
        return Ok(());
    }
    Err(not_a_statement(&format!("{pointer} is \"{}\", not \"{expected}\"", shown(found))))
}

/// A [`ProvenanceError::NotAStatement`].
fn not_a_statement(reason: &str) -> ProvenanceError {
    ProvenanceError::NotAStatement(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;

    use super::*;

    /// RFC 8410's example private key, as `openssl genpkey -algorithm ed25519` writes keys.
    const OPENSSL_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----
";
    /// Its public key, as `openssl pkey -pubout` writes it.
    const OPENSSL_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=
-----END PUBLIC KEY-----
";
    /// Its 32-byte seed.
    const OPENSSL_SEED: &str = "d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842";

    fn signer(seed: u8) -> Signer {
        Signer::from(SigningKey::from_bytes(&[seed; 32]))
    }

    fn subject(name: &str, version: &str, sha256: char) -> Subject {
        Subject {
            name: name.to_owned(),
            version: version.to_owned(),
            key: format!("packages/{name}-{version}.zip"),
            sha256: sha256.to_string().repeat(64),
            sha1: sha256.to_string().repeat(40),
        }
    }

    fn material(repo: &str, git_ref: &str, commit: char) -> Material {
        Material { repo: repo.to_owned(), git_ref: git_ref.to_owned(), commit: commit.to_string().repeat(40) }
    }

    fn facts() -> BuildFacts {
        BuildFacts {
            build_id: "20240501T120000Z-1".to_owned(),
            started_on: "2024-05-01T12:00:00Z".to_owned(),
            finished_on: "2024-05-01T12:03:00Z".to_owned(),
            farm_version: "0.1.0".to_owned(),
            inputs: json!({ "config": "abc", "mode": "nightly" }),
            rules: BTreeMap::from([("magento".to_owned(), "f00d".to_owned())]),
            subjects: vec![subject("acme/b", "2.0.0", 'b'), subject("acme/a", "1.0.0", 'a')],
            materials: vec![
                material("https://example.com/b.git", "refs/tags/2.0.0", 'd'),
                material("https://example.com/a.git", "refs/tags/1.0.0", 'c'),
            ],
        }
    }

    /// The envelope line as JSON.
    fn parsed(line: &[u8]) -> Value {
        serde_json::from_slice(line).unwrap()
    }

    /// The envelope with `edit` applied to it, as a line.
    fn edited(line: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut envelope = parsed(line);
        edit(&mut envelope);
        envelope.to_string().into_bytes()
    }

    #[test]
    fn a_signed_statement_opens_with_its_subjects_and_build_id() {
        let signer = signer(7);
        let verified = open(&sign(&facts(), &signer), &signer.verifier()).unwrap();
        assert_eq!(verified.build_id, "20240501T120000Z-1");
        let names: Vec<_> = verified.subjects.iter().map(|s| (s.name.as_str(), s.version.as_str())).collect();
        assert_eq!(names, [("acme/a", "1.0.0"), ("acme/b", "2.0.0")]);
        assert_eq!(verified.subjects[0].sha256, "a".repeat(64));
        assert_eq!(verified.subjects[0].sha1.as_deref(), Some("a".repeat(40).as_str()));
        assert_eq!(verified.subjects[0].key.as_deref(), Some("packages/acme/a-1.0.0.zip"));
        assert_eq!(verified.statement, statement(&facts()));
    }

    #[test]
    fn the_statement_follows_in_toto_v1_and_slsa_provenance_v1() {
        let statement = statement(&facts());
        assert_eq!(statement["_type"], STATEMENT_TYPE);
        assert_eq!(statement["predicateType"], PREDICATE_TYPE);
        assert_eq!(
            statement["subject"][0],
            json!({
                "name": "acme/a@1.0.0",
                "digest": { "sha256": "a".repeat(64), "sha1": "a".repeat(40) },
                "annotations": { "key": "packages/acme/a-1.0.0.zip" },
            })
        );
        let definition = &statement["predicate"]["buildDefinition"];
        assert_eq!(definition["buildType"], BUILD_TYPE);
        assert_eq!(definition["externalParameters"], json!({ "inputs": facts().inputs }));
        assert_eq!(definition["internalParameters"], json!({ "rules": { "magento": "f00d" } }));
        assert_eq!(
            definition["resolvedDependencies"][0],
            json!({
                "uri": "git+https://example.com/a.git@refs/tags/1.0.0",
                "digest": { "gitCommit": "c".repeat(40) },
                "name": "refs/tags/1.0.0",
            })
        );
        assert_eq!(
            statement["predicate"]["runDetails"],
            json!({
                "builder": { "id": BUILDER_ID, "version": { "composer-farm": "0.1.0" } },
                "metadata": {
                    "invocationId": "20240501T120000Z-1",
                    "startedOn": "2024-05-01T12:00:00Z",
                    "finishedOn": "2024-05-01T12:03:00Z",
                },
            })
        );
    }

    #[test]
    fn statement_bytes_do_not_depend_on_input_order_or_duplicates() {
        let mut shuffled = facts();
        shuffled.subjects.reverse();
        shuffled.materials.reverse();
        shuffled.materials.push(shuffled.materials[0].clone());
        assert_eq!(statement_bytes(&shuffled), statement_bytes(&facts()));
        assert_eq!(
            statement(&shuffled)["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().unwrap().len(),
            2
        );
        assert_eq!(sign(&shuffled, &signer(1)), sign(&facts(), &signer(1)));
    }

    #[test]
    fn the_envelope_is_one_dsse_line_with_the_key_id() {
        let signer = signer(7);
        let line = sign(&facts(), &signer);
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(line.last(), Some(&b'\n'));
        let envelope = parsed(&line);
        assert_eq!(envelope["payloadType"], PAYLOAD_TYPE);
        let payload = STANDARD.decode(envelope["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, statement_bytes(&facts()));
        let public = SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes();
        assert_eq!(envelope["signatures"][0]["keyid"], hex::encode(Sha256::digest(public)));
        assert_eq!(signer.key_id(), signer.verifier().key_id());
    }

    #[test]
    fn a_tampered_payload_is_a_bad_signature() {
        let signer = signer(7);
        let line = edited(&sign(&facts(), &signer), |envelope| {
            let payload = STANDARD.decode(envelope["payload"].as_str().unwrap()).unwrap();
            let mut statement: Value = serde_json::from_slice(&payload).unwrap();
            statement["subject"][0]["digest"]["sha256"] = json!("e".repeat(64));
            envelope["payload"] = json!(STANDARD.encode(statement.to_string()));
        });
        assert_eq!(open(&line, &signer.verifier()), Err(ProvenanceError::BadSignature));
    }

    #[test]
    fn a_tampered_signature_is_a_bad_signature() {
        let signer = signer(7);
        let line = edited(&sign(&facts(), &signer), |envelope| {
            let mut sig = STANDARD.decode(envelope["signatures"][0]["sig"].as_str().unwrap()).unwrap();
            sig[10] ^= 1;
            envelope["signatures"][0]["sig"] = json!(STANDARD.encode(sig));
        });
        assert_eq!(open(&line, &signer.verifier()), Err(ProvenanceError::BadSignature));
        let garbled = edited(&sign(&facts(), &signer), |envelope| envelope["signatures"][0]["sig"] = json!("!!"));
        assert_eq!(open(&garbled, &signer.verifier()), Err(ProvenanceError::BadSignature));
    }

    #[test]
    fn another_key_is_a_bad_signature() {
        let line = sign(&facts(), &signer(7));
        assert_eq!(open(&line, &signer(8).verifier()), Err(ProvenanceError::BadSignature));
        let unsigned = edited(&line, |envelope| envelope["signatures"] = json!([]));
        assert_eq!(open(&unsigned, &signer(7).verifier()), Err(ProvenanceError::BadSignature));
    }

    #[test]
    fn a_signature_for_another_key_id_is_skipped_and_one_without_a_key_id_is_tried() {
        let signer = signer(7);
        let line = sign(&facts(), &signer);
        let other = edited(&line, |envelope| envelope["signatures"][0]["keyid"] = json!("00".repeat(32)));
        assert_eq!(open(&other, &signer.verifier()), Err(ProvenanceError::BadSignature));
        let anonymous = edited(&line, |envelope| {
            envelope["signatures"][0].as_object_mut().unwrap().remove("keyid");
        });
        assert!(open(&anonymous, &signer.verifier()).is_ok());
    }

    #[test]
    fn another_payload_type_is_refused_before_the_signature() {
        let signer = signer(7);
        let line = edited(&sign(&facts(), &signer), |envelope| envelope["payloadType"] = json!("text/plain"));
        assert_eq!(open(&line, &signer.verifier()), Err(ProvenanceError::WrongPayloadType("text/plain".to_owned())));
    }

    #[test]
    fn garbage_is_not_json_and_other_json_is_malformed() {
        let verifier = signer(7).verifier();
        assert!(matches!(open(b"\x00garbage", &verifier), Err(ProvenanceError::NotJson(_))));
        assert!(matches!(open(b"{\"payloadType\":1}", &verifier), Err(ProvenanceError::Malformed(_))));
        let envelope = json!({ "payloadType": PAYLOAD_TYPE, "payload": "***", "signatures": [] });
        assert!(matches!(open(envelope.to_string().as_bytes(), &verifier), Err(ProvenanceError::Malformed(_))));
    }

    #[test]
    fn a_signed_payload_that_is_not_a_provenance_statement_is_refused() {
        let signer = signer(7);
        let mut other = statement(&facts());
        other["predicateType"] = json!("https://slsa.dev/provenance/v0.2");
        let cases = ["not json".to_owned(), json!({ "_type": STATEMENT_TYPE }).to_string(), other.to_string()];
        for payload in cases {
            let line = envelope(PAYLOAD_TYPE, payload.as_bytes(), &signer);
            assert!(matches!(open(&line, &signer.verifier()), Err(ProvenanceError::NotAStatement(_))));
        }
    }

    #[test]
    fn open_all_opens_every_non_empty_line() {
        let signer = signer(7);
        let mut second = facts();
        second.build_id = "second".to_owned();
        let mut file = sign(&facts(), &signer);
        file.extend_from_slice(b"\n  \n");
        file.extend_from_slice(&sign(&second, &signer));
        let opened = open_all(&file, &signer.verifier()).unwrap();
        let ids: Vec<_> = opened.iter().map(|v| v.build_id.as_str()).collect();
        assert_eq!(ids, ["20240501T120000Z-1", "second"]);
        file.extend_from_slice(b"garbage\n");
        assert!(matches!(open_all(&file, &signer.verifier()), Err(ProvenanceError::NotJson(_))));
        assert_eq!(open_all(b"", &signer.verifier()), Ok(Vec::new()));
    }

    #[test]
    fn a_pkcs8_pem_round_trips() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        assert_eq!(Signer::from_pem(&pem).unwrap().key_id(), Signer::from(key).key_id());
    }

    #[test]
    fn an_openssl_key_loads_and_gives_the_openssl_public_key() {
        let signer = Signer::from_pem(OPENSSL_PRIVATE).unwrap();
        assert_eq!(signer.public_pem().trim_end(), OPENSSL_PUBLIC.trim_end());
        let verifier = Verifier::from_pem(OPENSSL_PUBLIC).unwrap();
        assert_eq!(verifier.key_id(), signer.key_id());
        assert!(open(&sign(&facts(), &signer), &verifier).is_ok());
    }

    #[test]
    fn hex_and_base64_seeds_load_the_same_key() {
        let seed = hex::decode(OPENSSL_SEED).unwrap();
        let from_pem = Signer::from_pem(OPENSSL_PRIVATE).unwrap().key_id();
        assert_eq!(Signer::from_pem(&format!("  {OPENSSL_SEED}\n")).unwrap().key_id(), from_pem);
        assert_eq!(Signer::from_pem(&OPENSSL_SEED.to_uppercase()).unwrap().key_id(), from_pem);
        assert_eq!(Signer::from_pem(&format!("{}\n", STANDARD.encode(&seed))).unwrap().key_id(), from_pem);
    }

    #[test]
    fn raw_public_keys_load_as_hex_or_base64() {
        let signer = Signer::from_pem(OPENSSL_PRIVATE).unwrap();
        let public = SigningKey::from_bytes(&hex::decode(OPENSSL_SEED).unwrap().try_into().unwrap()).verifying_key();
        assert_eq!(Verifier::from_pem(&hex::encode(public.as_bytes())).unwrap().key_id(), signer.key_id());
        assert_eq!(Verifier::from_pem(&STANDARD.encode(public.as_bytes())).unwrap().key_id(), signer.key_id());
    }

    #[test]
    fn keys_in_other_forms_are_format_errors() {
        for text in [
            "",
            "abcd",
            &"a".repeat(63),
            OPENSSL_PUBLIC,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        ] {
            assert!(matches!(Signer::from_pem(text), Err(KeyError::Format(_))), "{text}");
        }
        assert!(matches!(Verifier::from_pem(OPENSSL_PRIVATE), Err(KeyError::Format(_))));
        assert!(matches!(Verifier::from_pem(&STANDARD.encode([0u8; 31])), Err(KeyError::Format(_))));
    }

    #[test]
    fn loading_names_the_file_and_never_shows_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("farm.key");
        fs::write(&good, OPENSSL_PRIVATE).unwrap();
        assert_eq!(Signer::load(&good).unwrap().key_id(), Signer::from_pem(OPENSSL_PRIVATE).unwrap().key_id());
        let public = dir.path().join("farm.pub");
        fs::write(&public, OPENSSL_PUBLIC).unwrap();
        assert!(Verifier::load(&public).is_ok());

        let bad = dir.path().join("bad.key");
        let secret = &OPENSSL_SEED[..63];
        fs::write(&bad, secret).unwrap();
        let message = Signer::load(&bad).unwrap_err().to_string();
        assert!(message.contains("bad.key") && !message.contains(secret), "{message}");
        let missing = dir.path().join("missing.key");
        assert!(matches!(Signer::load(&missing), Err(KeyError::Read { path, .. }) if path == missing));
        assert!(!format!("{:?}", Signer::from_pem(OPENSSL_SEED).unwrap()).contains(OPENSSL_SEED));
    }

    #[test]
    fn pae_matches_the_dsse_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }
}
