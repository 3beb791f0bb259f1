//! Bearer JWT → [`Principal`]; roles; per-service permission tables.
//!
//! A forged, expired, `alg=none` or wrong-audience token is `UNAUTHENTICATED`. Which role may do
//! what is decided by each service's own table ([`PermissionTable`]); department scoping is part
//! of the answer ([`Scope`]).

use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::keys;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// Roles of the service centre and its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Guide,
    Inspector,
    OpinionAnalyst,
    Clinician,
    DepartmentHead,
    Auditor,
    Integration,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::Guide,
        Role::Inspector,
        Role::OpinionAnalyst,
        Role::Clinician,
        Role::DepartmentHead,
        Role::Auditor,
        Role::Integration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Guide => "guide",
            Role::Inspector => "inspector",
            Role::OpinionAnalyst => "opinion_analyst",
            Role::Clinician => "clinician",
            Role::DepartmentHead => "department_head",
            Role::Auditor => "auditor",
            Role::Integration => "integration",
        }
    }

    /// Roles whose grants only reach their own department's records.
    pub fn is_department_scoped(self) -> bool {
        matches!(self, Role::Clinician | Role::DepartmentHead)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown role {s:?}; valid roles: {}", names.join(", "))
        })
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub`: a staff id or a system name.
    pub subject: String,
    pub roles: Vec<Role>,
    /// Department code for scoped roles.
    pub department: Option<String>,
}

/// How far a permission reaches for a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every record.
    All,
    /// Only records of this department.
    Department(String),
}

impl Scope {
    /// Whether a record of `department` is within reach.
    pub fn covers(&self, department: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Department(d) => d == department,
        }
    }
}

/// A service's permission table: for each role, the permissions it grants.
pub struct PermissionTable<P: 'static> {
    pub grants: &'static [(Role, &'static [P])],
}

impl<P: PartialEq + fmt::Debug + Copy> PermissionTable<P> {
    /// Whether `role` grants `permission`.
    pub fn grants(&self, role: Role, permission: P) -> bool {
        self.grants
            .iter()
            .any(|(r, perms)| *r == role && perms.contains(&permission))
    }
}

impl Principal {
    /// The scope in which the caller holds `permission`, or `PERMISSION_DENIED`. An unscoped
    /// grant wins over a department-scoped one; a scoped role without a department grants
    /// nothing.
    pub fn authorize<P: PartialEq + fmt::Debug + Copy>(
        &self,
        table: &PermissionTable<P>,
        permission: P,
    ) -> Result<Scope, ApiError> {
        let mut scope = None;
        for role in &self.roles {
            if !table.grants(*role, permission) {
                continue;
            }
            if !role.is_department_scoped() {
                return Ok(Scope::All);
            }
            if let Some(dept) = &self.department {
                scope = Some(Scope::Department(dept.clone()));
            }
        }
        scope.ok_or_else(|| ApiError::PermissionDenied(format!("{permission:?} is not granted to this caller")))
    }

    pub fn roles_text(&self) -> String {
        self.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
    }
}

/// Claims of an HCRM token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept: Option<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Verifies tokens and, where it holds a signing key, mints them.
pub struct Authenticator {
    algorithm: Algorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Builds from configuration. With HS256 and no configured secret, the secret is read from
    /// (or generated into) `{data_dir}/keys/token-signing.key`; the bool says it was generated now.
    pub fn from_config(cfg: &AuthConfig, data_dir: &Path) -> anyhow::Result<(Self, bool)> {
        let algorithm = match cfg.algorithm.as_str() {
            "HS256" => Algorithm::HS256,
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => anyhow::bail!("auth.algorithm {other:?} is not supported; use HS256, RS256 or ES256"),
        };
        let mut generated = false;
        let (decoding, encoding) = match algorithm {
            Algorithm::HS256 => {
                let secret = match &cfg.hs256_secret {
                    Some(secret) => secret.expose().to_string(),
                    None => {
                        let (text, created) = keys::load_or_generate(data_dir, "token-signing.key")?;
                        generated = created;
                        text
                    }
                };
                anyhow::ensure!(secret.len() >= 32, "auth.hs256_secret must be at least 32 characters");
                (
                    DecodingKey::from_secret(secret.as_bytes()),
                    Some(EncodingKey::from_secret(secret.as_bytes())),
                )
            }
            _ => {
                let public = cfg
                    .public_key_file
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("auth.public_key_file is required for {:?}", algorithm))?;
                let pem = std::fs::read(public)?;
                let decoding = if algorithm == Algorithm::RS256 {
                    DecodingKey::from_rsa_pem(&pem)?
                } else {
                    DecodingKey::from_ec_pem(&pem)?
                };
                let encoding = match &cfg.private_key_file {
                    Some(path) => {
                        let pem = std::fs::read(path)?;
                        Some(if algorithm == Algorithm::RS256 {
                            EncodingKey::from_rsa_pem(&pem)?
                        } else {
                            EncodingKey::from_ec_pem(&pem)?
                        })
                    }
                    None => None,
                };
                (decoding, encoding)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&[cfg.audience.as_str()]);
        validation.set_issuer(&[cfg.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
        validation.leeway = 30;
        Ok((
            Self {
                algorithm,
                decoding,
                encoding,
                validation,
                issuer: cfg.issuer.clone(),
                audience: cfg.audience.clone(),
            },
            generated,
        ))
    }

    /// A verifier with a given HS256 secret; for tests and tools.
    pub fn hs256(secret: &str) -> Self {
        let cfg = AuthConfig {
            hs256_secret: Some(crate::secret::Secret::new(secret)),
            ..AuthConfig::default()
        };
        Self::from_config(&cfg, Path::new("/nonexistent"))
            .expect("valid hs256 config")
            .0
    }

    /// Mints a token for `subject` with `roles`, valid for `ttl_secs`.
    pub fn mint(
        &self,
        subject: &str,
        roles: &[Role],
        department: Option<&str>,
        ttl_secs: u64,
    ) -> anyhow::Result<String> {
        let key = self
            .encoding
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no signing key configured (auth.private_key_file)"))?;
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: subject.to_string(),
            roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
            dept: department.map(str::to_string),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + ttl_secs as i64,
        };
        Ok(jsonwebtoken::encode(&Header::new(self.algorithm), &claims, key)?)
    }

    /// Verifies a bearer token (without the `Bearer ` prefix).
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| ApiError::Unauthenticated(format!("invalid token: {e}")))?;
        let claims = data.claims;
        if claims.sub.is_empty() {
            return Err(ApiError::Unauthenticated("token has an empty subject".into()));
        }
        let roles = claims
            .roles
            .iter()
            .filter_map(|r| match r.parse::<Role>() {
                Ok(role) => Some(role),
                Err(_) => {
                    tracing::debug!(role = %r, "ignoring unknown role in token");
                    None
                }
            })
            .collect();
        Ok(Principal {
            subject: claims.sub,
            roles,
            department: claims.dept.filter(|d| !d.is_empty()),
        })
    }

    /// Verifies an `authorization` header value (`Bearer …`).
    pub fn verify_header(&self, header: Option<&str>) -> Result<Principal, ApiError> {
        let header = header.ok_or_else(|| ApiError::Unauthenticated("missing bearer token".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::Unauthenticated("authorization must be `Bearer <token>`".into()))?;
        self.verify(token.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn minted_tokens_verify() {
        let auth = Authenticator::hs256(SECRET);
        let token = auth.mint("alice", &[Role::Clinician], Some("cardiology"), 60).unwrap();
        let p = auth.verify(&token).unwrap();
        assert_eq!(p.subject, "alice");
        assert_eq!(p.roles, vec![Role::Clinician]);
        assert_eq!(p.department.as_deref(), Some("cardiology"));
    }

    #[test]
    fn forged_expired_none_and_wrong_audience_tokens_fail() {
        let auth = Authenticator::hs256(SECRET);
        let other = Authenticator::hs256("ffffffffffffffffffffffffffffffff");
        let forged = other.mint("mallory", &[Role::Admin], None, 60).unwrap();
        assert!(matches!(auth.verify(&forged), Err(ApiError::Unauthenticated(_))));

        let expired = auth.mint("bob", &[Role::Admin], None, 0).unwrap();
        // Expiry is checked with 30 s leeway; build one well in the past instead.
        let _ = expired;
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: "bob".into(),
            roles: vec!["admin".into()],
            dept: None,
            iss: "hcrm".into(),
            aud: "hcrm".into(),
            iat: now - 7200,
            exp: now - 3600,
        };
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(matches!(auth.verify(&old), Err(ApiError::Unauthenticated(_))));

        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                exp: now + 3600,
                iat: now,
                ..claims
            })
            .unwrap(),
        );
        let none = format!("{header}.{body}.");
        assert!(matches!(auth.verify(&none), Err(ApiError::Unauthenticated(_))));

        let claims = Claims {
            sub: "bob".into(),
            roles: vec!["admin".into()],
            dept: None,
            iss: "hcrm".into(),
            aud: "someone-else".into(),
            iat: now,
            exp: now + 3600,
        };
        let wrong_aud = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(matches!(auth.verify(&wrong_aud), Err(ApiError::Unauthenticated(_))));
    }

    #[test]
    fn rs256_and_es256_key_pairs_sign_and_verify() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");
        for alg in ["RS256", "ES256"] {
            let lower = alg.to_lowercase();
            let cfg = AuthConfig {
                algorithm: alg.into(),
                public_key_file: Some(format!("{dir}/{lower}-public.pem").into()),
                private_key_file: Some(format!("{dir}/{lower}-private.pem").into()),
                ..AuthConfig::default()
            };
            let (auth, generated) = Authenticator::from_config(&cfg, Path::new("/nonexistent")).unwrap();
            assert!(!generated);
            let token = auth.mint("svc", &[Role::Integration], None, 60).unwrap();
            assert_eq!(auth.verify(&token).unwrap().roles, vec![Role::Integration]);
            // An HS256 token signed with the public key's text must not pass (algorithm confusion).
            let pem = std::fs::read(format!("{dir}/{lower}-public.pem")).unwrap();
            let now = chrono::Utc::now().timestamp();
            let claims = Claims {
                sub: "x".into(),
                roles: vec!["admin".into()],
                dept: None,
                iss: "hcrm".into(),
                aud: "hcrm".into(),
                iat: now,
                exp: now + 60,
            };
            let confused =
                jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(&pem)).unwrap();
            assert!(matches!(auth.verify(&confused), Err(ApiError::Unauthenticated(_))));
            // A verifier without the private key cannot mint.
            let verify_only = AuthConfig {
                private_key_file: None,
                ..cfg
            };
            let (auth, _) = Authenticator::from_config(&verify_only, Path::new("/nonexistent")).unwrap();
            assert!(auth.mint("svc", &[Role::Admin], None, 60).is_err());
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Perm {
        Read,
        Write,
    }

    static TABLE: PermissionTable<Perm> = PermissionTable {
        grants: &[
            (Role::Admin, &[Perm::Read, Perm::Write]),
            (Role::Clinician, &[Perm::Read]),
        ],
    };

    #[test]
    fn scoped_roles_get_their_department_only() {
        let clinician = Principal {
            subject: "c".into(),
            roles: vec![Role::Clinician],
            department: Some("cardiology".into()),
        };
        assert_eq!(
            clinician.authorize(&TABLE, Perm::Read).unwrap(),
            Scope::Department("cardiology".into())
        );
        assert!(matches!(
            clinician.authorize(&TABLE, Perm::Write),
            Err(ApiError::PermissionDenied(_))
        ));
        let no_dept = Principal {
            department: None,
            ..clinician.clone()
        };
        assert!(no_dept.authorize(&TABLE, Perm::Read).is_err());
        let both = Principal {
            roles: vec![Role::Clinician, Role::Admin],
            ..clinician
        };
        assert_eq!(both.authorize(&TABLE, Perm::Read).unwrap(), Scope::All);
    }
}
