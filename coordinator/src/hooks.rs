//! Webhook checks and payloads: GitHub's `X-Hub-Signature-256` (computed as the body arrives),
//! GitLab's `X-Gitlab-Token`, the bearer token of the generic trigger (all compared in constant
//! time; tokens are headers, checked before any body byte is read), the push payloads, and which
//! upstreams a push concerns.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use shared::config::{Secret, UpstreamConfig};
use subtle::ConstantTimeEq as _;

/// Why a request is not authentic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No signature or token at all.
    #[error("missing {0}")]
    Missing(&'static str),
    /// Present but not in the expected form.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// Present and wrong.
    #[error("{0} does not match")]
    Mismatch(&'static str),
}

/// GitHub's `X-Hub-Signature-256: sha256=<hex>` (HMAC-SHA256 of the raw body), checked as the
/// body arrives: the header is read before any body byte, the body is fed chunk by chunk.
pub struct BodySignature {
    mac: Hmac<sha2::Sha256>,
    expected: Vec<u8>,
}

impl BodySignature {
    const NAME: &str = "X-Hub-Signature-256";

    /// Reads the header: missing or malformed is refused before the body is read.
    pub fn github(secret: &Secret, header: Option<&str>) -> Result<BodySignature, AuthError> {
        let header = header.ok_or(AuthError::Missing(Self::NAME))?;
        let hex_digest = header.strip_prefix("sha256=").ok_or(AuthError::Malformed(Self::NAME))?;
        let expected = hex::decode(hex_digest).map_err(|_| AuthError::Malformed(Self::NAME))?;
        if expected.len() != 32 {
            return Err(AuthError::Malformed(Self::NAME));
        }
        let mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose()).expect("HMAC takes keys of any length");
        Ok(BodySignature { mac, expected })
    }

    /// Feeds the next piece of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        self.mac.update(chunk);
    }

    /// After the last piece: does the signature match?
    pub fn verify(self) -> Result<(), AuthError> {
        // `verify_slice` compares in constant time.
        self.mac.verify_slice(&self.expected).map_err(|_| AuthError::Mismatch(Self::NAME))
    }
}

/// Checks GitHub's `X-Hub-Signature-256` over a whole body.
pub fn verify_github(secret: &Secret, header: Option<&str>, body: &[u8]) -> Result<(), AuthError> {
    let mut signature = BodySignature::github(secret, header)?;
    signature.update(body);
    signature.verify()
}

/// Compares a presented token with the secret in constant time.
pub fn verify_token(secret: &Secret, presented: Option<&str>, name: &'static str) -> Result<(), AuthError> {
    let presented = presented.ok_or(AuthError::Missing(name))?;
    if bool::from(presented.as_bytes().ct_eq(secret.expose())) { Ok(()) } else { Err(AuthError::Mismatch(name)) }
}

/// `Authorization: Bearer <token>`.
pub fn verify_bearer(secret: &Secret, authorization: Option<&str>) -> Result<(), AuthError> {
    const NAME: &str = "bearer token";
    let header = authorization.ok_or(AuthError::Missing(NAME))?;
    let token =
        header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")).ok_or(AuthError::Malformed(NAME))?;
    verify_token(secret, Some(token.trim()), NAME)
}

/// What a push says, from either forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// Repository as `owner/name` (GitHub `repository.full_name`, GitLab
    /// `project.path_with_namespace`).
    pub repository: String,
    /// The pushed ref (`refs/heads/...` or `refs/tags/...`).
    pub git_ref: String,
    /// The commit the ref points to now.
    pub after: String,
}

#[derive(Deserialize)]
struct GithubPush {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    after: String,
    repository: GithubRepository,
}

#[derive(Deserialize)]
struct GithubRepository {
    full_name: String,
}

#[derive(Deserialize)]
struct GitlabPush {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    checkout_sha: Option<String>,
    #[serde(default)]
    after: String,
    project: GitlabProject,
}

#[derive(Deserialize)]
struct GitlabProject {
    path_with_namespace: String,
}

/// Reads a GitHub `push` payload.
pub fn github_push(body: &[u8]) -> Result<Push, serde_json::Error> {
    let push: GithubPush = serde_json::from_slice(body)?;
    Ok(Push { repository: push.repository.full_name, git_ref: push.git_ref, after: push.after })
}

/// Reads a GitLab `Push Hook` / `Tag Push Hook` payload.
pub fn gitlab_push(body: &[u8]) -> Result<Push, serde_json::Error> {
    let push: GitlabPush = serde_json::from_slice(body)?;
    let after = push.checkout_sha.unwrap_or(push.after);
    Ok(Push { repository: push.project.path_with_namespace, git_ref: push.git_ref, after })
}

/// What a push means for the farm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Build these upstreams.
    Build(Vec<String>),
    /// Nothing to do, and why (answered 202 with the reason).
    Ignore(String),
}

/// Which upstreams a push concerns: those whose repository it is, if the ref is a tag or one of
/// their configured branches.
pub fn decide(upstreams: &[UpstreamConfig], push: &Push) -> Decision {
    let repository = push.repository.trim_matches('/').to_lowercase();
    let matching: Vec<&UpstreamConfig> = upstreams.iter().filter(|u| u.hook_names().contains(&repository)).collect();
    if matching.is_empty() {
        return Decision::Ignore(format!("no upstream is configured for repository '{}'", push.repository));
    }
    let wanted: Vec<String> = matching
        .iter()
        .filter(|u| match push.git_ref.strip_prefix("refs/heads/") {
            Some(branch) => u.branches.iter().any(|b| b == branch),
            None => push.git_ref.starts_with("refs/tags/"),
        })
        .map(|u| u.key.clone())
        .collect();
    if wanted.is_empty() {
        return Decision::Ignore(format!("{} is not a tag or a configured branch", push.git_ref));
    }
    Decision::Build(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn github_signatures() {
        let secret = Secret::from("It's a Secret to Everybody");
        // The example of GitHub's documentation.
        let documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(verify_github(&secret, Some(documented), b"Hello, World!"), Ok(()));
        assert_eq!(sign("It's a Secret to Everybody", b"Hello, World!"), documented);
        let body = b"{}";
        assert_eq!(verify_github(&secret, None, body), Err(AuthError::Missing("X-Hub-Signature-256")));
        assert_eq!(verify_github(&secret, Some("sha1=00"), body), Err(AuthError::Malformed("X-Hub-Signature-256")));
        assert_eq!(verify_github(&secret, Some("sha256=zz"), body), Err(AuthError::Malformed("X-Hub-Signature-256")));
        assert_eq!(verify_github(&secret, Some(documented), body), Err(AuthError::Mismatch("X-Hub-Signature-256")));
        assert!(verify_github(&Secret::from("other"), Some(documented), b"Hello, World!").is_err());
        assert_eq!(verify_github(&secret, Some("sha256=00ff"), body), Err(AuthError::Malformed("X-Hub-Signature-256")));
    }

    #[test]
    fn github_signatures_streamed() {
        let secret = Secret::from("It's a Secret to Everybody");
        let documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        for split in 0..=13 {
            let mut signature = BodySignature::github(&secret, Some(documented)).unwrap();
            let (head, tail) = b"Hello, World!".split_at(split);
            signature.update(head);
            signature.update(tail);
            assert_eq!(signature.verify(), Ok(()), "split at {split}");
        }
        let mut signature = BodySignature::github(&secret, Some(documented)).unwrap();
        signature.update(b"Hello, World");
        assert_eq!(signature.verify(), Err(AuthError::Mismatch("X-Hub-Signature-256")));
    }

    #[test]
    fn tokens() {
        let secret = Secret::from("token-1");
        assert_eq!(verify_token(&secret, Some("token-1"), "X-Gitlab-Token"), Ok(()));
        assert!(verify_token(&secret, Some("token-2"), "X-Gitlab-Token").is_err());
        assert!(verify_token(&secret, Some("token-1x"), "X-Gitlab-Token").is_err());
        assert!(verify_token(&secret, None, "X-Gitlab-Token").is_err());
        assert_eq!(verify_bearer(&secret, Some("Bearer token-1")), Ok(()));
        assert_eq!(verify_bearer(&secret, Some("Basic dG9rZW4tMQ==")), Err(AuthError::Malformed("bearer token")));
    }

    fn upstream(key: &str, url: &str, branches: &[&str]) -> UpstreamConfig {
        let text = format!(
            "key = \"{key}\"\nurl = \"{url}\"\nbranches = [{}]\n",
            branches.iter().map(|b| format!("\"{b}\"")).collect::<Vec<_>>().join(", ")
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn pushes_are_matched_to_upstreams() {
        let upstreams = [
            upstream("magento2", "https://github.com/mage-os/mirror-magento2.git", &["2.4-develop"]),
            upstream("inventory", "git@github.com:mage-os/mirror-inventory.git", &[]),
        ];
        let push = |repository: &str, git_ref: &str| Push {
            repository: repository.into(),
            git_ref: git_ref.into(),
            after: "abc".into(),
        };
        assert_eq!(
            decide(&upstreams, &push("Mage-OS/mirror-magento2", "refs/heads/2.4-develop")),
            Decision::Build(vec!["magento2".into()])
        );
        assert_eq!(
            decide(&upstreams, &push("mage-os/mirror-inventory", "refs/tags/1.2.3")),
            Decision::Build(vec!["inventory".into()])
        );
        assert!(matches!(
            decide(&upstreams, &push("mage-os/mirror-inventory", "refs/heads/main")),
            Decision::Ignore(_)
        ));
        assert!(matches!(decide(&upstreams, &push("someone/else", "refs/tags/1.0.0")), Decision::Ignore(_)));
    }

    #[test]
    fn payloads() {
        let github = br#"{"ref":"refs/heads/main","after":"abc","repository":{"full_name":"acme/up","id":1}}"#;
        assert_eq!(
            github_push(github).unwrap(),
            Push { repository: "acme/up".into(), git_ref: "refs/heads/main".into(), after: "abc".into() }
        );
        let gitlab = br#"{"object_kind":"push","ref":"refs/tags/1.0.0","checkout_sha":"def","after":"0","project":{"path_with_namespace":"group/sub/up"}}"#;
        assert_eq!(gitlab_push(gitlab).unwrap().after, "def");
        assert!(github_push(b"[]").is_err());
    }
}
