//! [`AuthPolicy`]: what a route demands of its caller.

use serde::Deserialize;

use super::config::is_quotable;
use super::jwt::Principal;

/// Per-route authentication policy, as it appears in the route table:
///
/// ```json
/// {"mode": "public"}
/// {"mode": "optional"}
/// {"mode": "required"}
/// {"mode": "required", "scopes": ["reports:read"], "any_role": ["admin", "analyst"]}
/// ```
///
/// - `public`: the `Authorization` header is not looked at; the caller is anonymous.
/// - `optional`: no token → anonymous; a token → it must be valid (an invalid token is refused,
///   never downgraded to anonymous).
/// - `required`: a valid token; additionally every scope in `scopes`, and at least one role of
///   `any_role` when that list is non-empty (403 otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PolicyFile")]
pub enum AuthPolicy {
    Public,
    Optional,
    Required {
        scopes: Vec<String>,
        any_role: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
enum PolicyFile {
    // Struct variants, so `deny_unknown_fields` applies to them too (it does not to unit variants).
    Public {},
    Optional {},
    Required {
        #[serde(default)]
        scopes: Vec<String>,
        #[serde(default)]
        any_role: Vec<String>,
    },
}

impl TryFrom<PolicyFile> for AuthPolicy {
    type Error = String;

    fn try_from(file: PolicyFile) -> Result<Self, Self::Error> {
        Ok(match file {
            PolicyFile::Public {} => AuthPolicy::Public,
            PolicyFile::Optional {} => AuthPolicy::Optional,
            PolicyFile::Required { scopes, any_role } => {
                for (field, names) in [("scopes", &scopes), ("any_role", &any_role)] {
                    if let Some(bad) = names
                        .iter()
                        .find(|n| n.is_empty() || n.contains(' ') || !is_quotable(n))
                    {
                        return Err(format!(
                            "auth policy `{field}` entry {bad:?} must be non-empty printable \
                             ASCII without spaces, quotes or backslashes"
                        ));
                    }
                }
                AuthPolicy::Required { scopes, any_role }
            }
        })
    }
}

/// What a principal lacks for a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// Required scopes the token does not carry.
    pub scopes: Vec<String>,
    /// The acceptable roles, when the token carries none of them (empty otherwise).
    pub any_role: Vec<String>,
}

impl AuthPolicy {
    /// `Err` with what is missing when `principal` may not use a route with this policy.
    pub fn check(&self, principal: &Principal) -> Result<(), Missing> {
        let AuthPolicy::Required { scopes, any_role } = self else {
            return Ok(());
        };
        let missing_scopes: Vec<String> = scopes
            .iter()
            .filter(|s| !principal.scopes.contains(*s))
            .cloned()
            .collect();
        let role_ok = any_role.is_empty() || any_role.iter().any(|r| principal.roles.contains(r));
        if missing_scopes.is_empty() && role_ok {
            return Ok(());
        }
        Err(Missing {
            scopes: missing_scopes,
            any_role: if role_ok {
                Vec::new()
            } else {
                any_role.clone()
            },
        })
    }
}
