//! The answers this process gave most recently to ticket commands, by user and
//! Idempotency-Key, so that a retry arriving soon after its first request (a phone
//! that lost the answer on a bad network and sends again) is answered from memory.
//!
//! Without it a retry is decided and appended as a first request would be, refused
//! at the append by its key's unique index, and only then reads the stored record,
//! the ticket's stream and its contact to render the first answer again
//! ([`super::App::replay`]): its latency was the longest of every command under the
//! mixed load (BENCHMARKS.md), and each such retry took a ticket number that no
//! ticket then carried. From memory it is answered before any of that.
//!
//! Only what this process committed (or replayed from the log) is kept, so an answer
//! from here is the one the log's record would give: the record is the source of
//! truth, and a miss (another instance answered first, a restart, an answer older
//! than [`KEEP_FOR`] or pushed out by [`CAPACITY`] newer ones) takes the log's path
//! as before. A retry whose request differs from the first one (another body under
//! the same key) is not answered here either: the log's path refuses it with the 422
//! that says why.
//!
//! A first answer to a creation can carry the reporter's contact, so the copies go
//! after [`KEEP_FOR`]: a retry is a matter of minutes, and a purge of contacts
//! (`yiwang purge`, which removes records days or months old) never has a copy here
//! to miss.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::Reply;

/// How many answers are kept, each a ticket's JSON (for scale: a ticket's stored
/// view is 1.17 kB on average in a seeded year).
pub const CAPACITY: usize = 4096;

/// How long an answer is kept after it was given.
pub const KEEP_FOR: Duration = Duration::minutes(10);

struct Kept {
    request_hash: String,
    reply: Reply,
    given_at: DateTime<Utc>,
}

/// See the module comment.
pub struct RecentAnswers(Mutex<lru::LruCache<(String, String), Kept>>);

impl Default for RecentAnswers {
    fn default() -> Self {
        // A non-zero constant: the conversion cannot fail.
        let cap = NonZeroUsize::new(CAPACITY).expect("non-zero capacity");
        RecentAnswers(Mutex::new(lru::LruCache::new(cap)))
    }
}

impl RecentAnswers {
    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<(String, String), Kept>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `reply` as the answer to `user`'s request `key` with `request_hash`,
    /// given at `now`.
    pub fn keep(
        &self,
        user: &str,
        key: &str,
        request_hash: &str,
        reply: &Reply,
        now: DateTime<Utc>,
    ) {
        let reply = Reply {
            replayed: true,
            ..reply.clone()
        };
        self.lock().put(
            (user.to_string(), key.to_string()),
            Kept {
                request_hash: request_hash.to_string(),
                reply,
                given_at: now,
            },
        );
    }

    /// The kept answer to `user`'s request `key`, marked replayed, when the request
    /// is the same (`request_hash`) and the answer is younger than [`KEEP_FOR`] at
    /// `now`.
    pub fn get(
        &self,
        user: &str,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> Option<Reply> {
        let mut cache = self.lock();
        let id = (user.to_string(), key.to_string());
        let kept = cache.peek(&id)?;
        if now - kept.given_at > KEEP_FOR {
            cache.pop(&id);
            return None;
        }
        if kept.request_hash != request_hash {
            return None;
        }
        cache.get(&id).map(|k| k.reply.clone())
    }

    /// How many answers are kept now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: &str) -> Reply {
        Reply {
            status: 201,
            body: body.to_string(),
            version: 1,
            replayed: false,
        }
    }

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + Duration::minutes(minute)
    }

    #[test]
    fn a_kept_answer_comes_back_replayed_to_the_same_user_key_and_request() {
        let answers = RecentAnswers::default();
        answers.keep("wang", "k1", "h1", &reply("{\"a\":1}"), at(0));
        let got = answers.get("wang", "k1", "h1", at(1)).expect("kept");
        assert_eq!(
            (got.status, got.body.as_str(), got.version),
            (201, "{\"a\":1}", 1)
        );
        assert!(got.replayed);
        // Keys are each user's own; another body under the key is not this answer.
        assert!(answers.get("li", "k1", "h1", at(1)).is_none());
        assert!(answers.get("wang", "k2", "h1", at(1)).is_none());
        assert!(answers.get("wang", "k1", "h2", at(1)).is_none());
    }

    #[test]
    fn an_answer_goes_after_keep_for_and_when_newer_ones_push_it_out() {
        let answers = RecentAnswers::default();
        answers.keep("wang", "k1", "h1", &reply("{}"), at(0));
        assert!(answers.get("wang", "k1", "h1", at(10)).is_some());
        assert!(answers.get("wang", "k1", "h1", at(11)).is_none());
        assert!(answers.is_empty(), "an expired answer is dropped when met");

        for i in 0..=CAPACITY {
            answers.keep("wang", &format!("k{i}"), "h", &reply("{}"), at(0));
        }
        assert_eq!(answers.len(), CAPACITY);
        assert!(answers.get("wang", "k0", "h", at(0)).is_none());
        assert!(
            answers
                .get("wang", &format!("k{CAPACITY}"), "h", at(0))
                .is_some()
        );
    }
}
