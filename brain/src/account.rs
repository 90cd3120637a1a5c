//! Accounts: whose is what, and who is signed in. The tenancy keys ([`user_owner`],
//! [`session_owner`]), the move of an anonymous session's work to the user who signed in with
//! it, and the refresh-token families behind the edge's sign-ins ([`Accounts`]).

use std::time::Duration;

use shared_types::account::{
    MAX_USER_FIELD_BYTES, MAX_USER_SCOPES, RefreshGrant, RevokeRefreshToken, RotateRefreshToken,
    SessionClaim, SignedInUser, StartRefreshFamily, is_token_hash,
};

use crate::clock::Clock;
use crate::store::claims::{ClaimOutcome, ClaimRequest};
use crate::store::refresh::{Exchange, Exchanged, NewFamily, REVOKED_BY_SIGN_OUT};
use crate::store::{Store, StoreError};

/// The owner key of a signed-in user's resources. The kinds never share a key, and a user id
/// is the exact `sub` (the edge refuses control characters, so the key is valid text for
/// either database).
pub fn user_owner(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// The owner key of an anonymous session's resources.
pub fn session_owner(session_id: &str) -> String {
    format!("session:{session_id}")
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("this session was claimed by another account: sign out to start a new session")]
    ClaimedByAnotherUser,
    #[error("{0}")]
    Invalid(String),
    /// The refresh token is not accepted (unknown, expired, revoked, or reused — which has
    /// just revoked its family). One message for all: the caller signs in again.
    #[error("the refresh token is not valid ({0}): sign in again")]
    RefreshRefused(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// The accounts service.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
    clock: Clock,
    /// `--refresh-reuse-leeway-ms`: how long after a refresh token was exchanged it may still
    /// be presented without revoking its family — the other requests a browser sent with the
    /// same cookie while the first one refreshed (Okta's default grace period is the same 30 s).
    reuse_leeway: Duration,
}

impl Accounts {
    pub fn new(store: Store, clock: Clock, reuse_leeway: Duration) -> Self {
        Self {
            store,
            clock,
            reuse_leeway,
        }
    }

    /// Moves what `session_id` made anonymously to `user_id` (see
    /// [`Store::claim_session`]) and binds the session to the user.
    pub async fn claim_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<SessionClaim, AccountError> {
        let (session, user) = (session_owner(session_id), user_owner(user_id));
        let request = ClaimRequest {
            session_id,
            user_id,
            session_owner: &session,
            user_owner: &user,
            now_ms: self.clock.now_ms(),
        };
        match self.store.claim_session(&request).await? {
            ClaimOutcome::ClaimedByAnotherUser => Err(AccountError::ClaimedByAnotherUser),
            ClaimOutcome::Moved(claim) => {
                // Once per sign-in: worth a line.
                tracing::info!(
                    first_claim = claim.first_claim,
                    threads = claim.threads,
                    runs = claim.runs,
                    datasets = claim.datasets,
                    documents = claim.documents,
                    "a session's work moved to its user"
                );
                Ok(claim)
            }
        }
    }
}

impl Accounts {
    /// Stores a new sign-in's refresh-token family and its first token.
    pub async fn start_refresh_family(
        &self,
        request: &StartRefreshFamily,
    ) -> Result<RefreshGrant, AccountError> {
        check_user(&request.user)?;
        check_hash("token_hash", &request.token_hash)?;
        let now_ms = self.clock.now_ms();
        if request.family_expires_at_ms <= now_ms || request.token_expires_at_ms <= now_ms {
            return Err(AccountError::Invalid(
                "the refresh token and its family must expire in the future".to_owned(),
            ));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let user_json = serde_json::to_string(&request.user)
            .map_err(|error| AccountError::Internal(error.into()))?;
        self.store
            .start_refresh_family(&NewFamily {
                id: &id,
                user_id: &request.user.user_id,
                user_json: &user_json,
                token_hash: &request.token_hash,
                now_ms,
                token_expires_at_ms: request.token_expires_at_ms,
                family_expires_at_ms: request.family_expires_at_ms,
            })
            .await
            .map_err(|error| match error {
                StoreError::Conflict(_) => {
                    AccountError::Invalid("this refresh token hash is already stored".to_owned())
                }
                other => other.into(),
            })?;
        Ok(RefreshGrant {
            user: request.user.clone(),
            family_id: id,
            rotated: true,
            family_expires_at_ms: request.family_expires_at_ms,
        })
    }

    /// Exchanges a refresh token for the successor the edge minted.
    pub async fn rotate_refresh_token(
        &self,
        request: &RotateRefreshToken,
    ) -> Result<RefreshGrant, AccountError> {
        check_hash("token_hash", &request.token_hash)?;
        check_hash("new_token_hash", &request.new_token_hash)?;
        if request.token_hash == request.new_token_hash {
            return Err(AccountError::Invalid(
                "the successor must be a new token".to_owned(),
            ));
        }
        let exchange = Exchange {
            token_hash: &request.token_hash,
            new_token_hash: &request.new_token_hash,
            new_token_expires_at_ms: request.new_token_expires_at_ms,
            now_ms: self.clock.now_ms(),
            reuse_leeway_ms: i64::try_from(self.reuse_leeway.as_millis()).unwrap_or(i64::MAX),
        };
        let exchanged = self
            .store
            .exchange_refresh_token(&exchange)
            .await
            .map_err(|error| match error {
                StoreError::Conflict(_) => {
                    AccountError::Invalid("the successor's hash is already stored".to_owned())
                }
                other => other.into(),
            })?;
        let (family, rotated) = match exchanged {
            Exchanged::Rotated(family) => (family, true),
            Exchanged::WithinLeeway(family) => (family, false),
            Exchanged::Reused => {
                tracing::warn!("a used refresh token was presented again: its family is revoked");
                return Err(AccountError::RefreshRefused("already used"));
            }
            Exchanged::Unknown => return Err(AccountError::RefreshRefused("unknown")),
            Exchanged::Expired => return Err(AccountError::RefreshRefused("expired")),
            Exchanged::Revoked => return Err(AccountError::RefreshRefused("revoked")),
        };
        let user: SignedInUser = serde_json::from_str(&family.user_json).map_err(|error| {
            AccountError::Internal(anyhow::anyhow!(
                "refresh family {} holds an unreadable user: {error}",
                family.id
            ))
        })?;
        Ok(RefreshGrant {
            user,
            family_id: family.id,
            rotated,
            family_expires_at_ms: family.expires_at_ms,
        })
    }

    /// Signs out: revokes the family of the token. Idempotent (an unknown token is fine).
    pub async fn revoke_refresh_token(
        &self,
        request: &RevokeRefreshToken,
    ) -> Result<(), AccountError> {
        check_hash("token_hash", &request.token_hash)?;
        self.store
            .revoke_refresh_family(
                &request.token_hash,
                self.clock.now_ms(),
                REVOKED_BY_SIGN_OUT,
            )
            .await?;
        Ok(())
    }
}

fn check_hash(field: &str, value: &str) -> Result<(), AccountError> {
    if is_token_hash(value) {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!(
            "`{field}` must be a SHA-256 in lower-case hex (64 characters)"
        )))
    }
}

/// The user as the edge describes it: a non-empty id, bounded fields, no control characters
/// (they would be refused in the identity headers later anyway).
fn check_user(user: &SignedInUser) -> Result<(), AccountError> {
    let bad = |what: &str| {
        Err(AccountError::Invalid(format!(
            "`user.{what}` must be non-empty text of at most {MAX_USER_FIELD_BYTES} bytes \
             without control characters"
        )))
    };
    let fine = |text: &str| {
        !text.is_empty()
            && text.len() <= MAX_USER_FIELD_BYTES
            && !text.chars().any(char::is_control)
    };
    if !fine(&user.user_id) {
        return bad("user_id");
    }
    if user.name.as_deref().is_some_and(|name| !fine(name)) {
        return bad("name");
    }
    if user.scopes.len() > MAX_USER_SCOPES {
        return Err(AccountError::Invalid(format!(
            "at most {MAX_USER_SCOPES} scopes"
        )));
    }
    if user
        .scopes
        .iter()
        .any(|scope| !fine(scope) || scope.contains(' '))
    {
        return bad("scopes[]");
    }
    Ok(())
}
