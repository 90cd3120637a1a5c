//! A caller's conversations: create a thread (with its agent), list, read, rename and delete
//! threads, page their messages, and the caller's usage. The rules live here — title length,
//! a known agent, ownership (another owner's thread is no thread, exactly like a missing one);
//! the HTTP layer only parses pages and cursors.

use shared_types::chat::{Message, Thread, UsageReport};
use uuid::Uuid;

use super::{ChatError, ChatService};

/// Longest thread title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The title of a thread created without one.
pub const DEFAULT_TITLE: &str = "New conversation";

/// `title` trimmed, if it has 1 to [`MAX_TITLE_CHARS`] characters.
fn checked_title(title: &str) -> Result<String, ChatError> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(ChatError::InvalidTitle);
    }
    Ok(title.to_owned())
}

impl ChatService {
    /// A new thread of `owner`'s, answered by `agent` (default: the configured default agent).
    pub async fn create_thread(
        &self,
        owner: &str,
        title: Option<&str>,
        agent: Option<&str>,
    ) -> Result<Thread, ChatError> {
        let title = match title {
            Some(title) => checked_title(title)?,
            None => DEFAULT_TITLE.to_owned(),
        };
        let agent = &self
            .agents
            .get(agent)
            .ok_or_else(|| ChatError::UnknownAgent(agent.unwrap_or_default().to_owned()))?
            .name;
        let id = Uuid::new_v4().to_string();
        let now = self.fleet.clock.now_ms();
        Ok(self
            .store
            .create_thread(&id, owner, &title, Some(agent), now)
            .await?)
    }

    /// `owner`'s threads, newest activity first, after the cursor `(updated_at_ms, id)`: at most
    /// `limit + 1` (one more tells the caller there is a next page).
    pub async fn list_threads(
        &self,
        owner: &str,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<Thread>, ChatError> {
        Ok(self.store.list_threads(owner, after, limit).await?)
    }

    pub async fn thread(&self, owner: &str, id: &str) -> Result<Thread, ChatError> {
        self.store
            .get_thread(owner, id)
            .await?
            .ok_or(ChatError::ThreadNotFound)
    }

    pub async fn rename_thread(
        &self,
        owner: &str,
        id: &str,
        title: &str,
    ) -> Result<Thread, ChatError> {
        let title = checked_title(title)?;
        let now = self.fleet.clock.now_ms();
        if !self.store.rename_thread(owner, id, &title, now).await? {
            return Err(ChatError::ThreadNotFound);
        }
        self.thread(owner, id).await
    }

    /// Cancels the thread's runs, then deletes it with its messages and runs.
    pub async fn delete_thread(&self, owner: &str, id: &str) -> Result<(), ChatError> {
        self.thread(owner, id).await?;
        self.cancel_thread_runs(id);
        if !self.store.delete_thread(owner, id).await? {
            return Err(ChatError::ThreadNotFound);
        }
        Ok(())
    }

    /// The thread's messages after message number `after_seq`, oldest first: at most
    /// `limit + 1`, each with its number (the next page's cursor).
    pub async fn messages(
        &self,
        owner: &str,
        thread_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Message)>, ChatError> {
        self.thread(owner, thread_id).await?;
        Ok(self
            .store
            .list_messages(owner, thread_id, after_seq, limit)
            .await?)
    }

    /// The assistant message run `run_id` stored, if it stored one.
    pub async fn reply_of_run(&self, run_id: &str) -> Result<Option<Message>, ChatError> {
        Ok(self.store.assistant_message_of_run(run_id).await?)
    }

    /// What `owner`'s runs cost, the budget, and how their answers fared against the data.
    pub async fn usage(&self, owner: &str) -> Result<UsageReport, ChatError> {
        let (runs, usage) = self.store.owner_usage(owner).await?;
        let grounding = self.store.owner_grounding(owner).await?;
        Ok(UsageReport {
            owner: owner.to_owned(),
            runs,
            usage,
            budget_tokens: self.settings.budget_tokens_per_owner,
            grounding,
        })
    }
}
