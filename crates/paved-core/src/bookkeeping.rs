//! Release bookkeeping that every deploy target shares, so that all targets number revisions,
//! skip unchanged releases and choose rollback targets the same way.
//!
//! A target keeps its history as a slice of entries, oldest first, each holding a
//! [`ReleaseRecord`] (`T: AsRef<ReleaseRecord>`: the record itself, or the target's stored
//! revision with its objects). The rules:
//!
//! - the **current** revision is the newest one that is deployed: its
//!   [state](ReleaseRecord::state) is unset (targets that do not watch rollouts) or
//!   [`RevisionState::Deployed`];
//! - a release whose digest equals the current revision's is **unchanged**: the target creates
//!   no revision;
//! - a new revision is numbered one past the highest revision in the history;
//! - a **rollback** restores a revision that rolled out (state unset, deployed or superseded),
//!   by default the newest one whose objects differ from the current revision's, as a new
//!   revision; a revision with the current objects is refused;
//! - timestamps are UTC with whole seconds ([`now`]).
//!
//! ```
//! use paved_core::bookkeeping;
//! let history: Vec<paved_core::ReleaseRecord> = Vec::new();
//! assert_eq!(bookkeeping::next_revision(&history), 1);
//! assert!(bookkeeping::current(&history).is_none());
//! ```

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::release::{Release, ReleaseKey, ReleaseRecord, Revision, RevisionState};

/// The time to record: now, in UTC, with whole seconds (records are compared and shown to the
/// second).
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).expect("0 is a valid nanosecond")
}

/// The number of the next revision: one past the highest in `history` (1 for the first).
pub fn next_revision<T: AsRef<ReleaseRecord>>(history: &[T]) -> Revision {
    history.iter().map(|e| e.as_ref().revision).max().map_or(1, |r| r + 1)
}

/// The records of `history` newest first, as [`Deployer::history`](crate::Deployer::history)
/// returns them.
pub fn newest_first<T: AsRef<ReleaseRecord>>(history: &[T]) -> Vec<ReleaseRecord> {
    history.iter().rev().map(|e| e.as_ref().clone()).collect()
}

/// `true` when the revision is deployed (state unset or [`RevisionState::Deployed`]).
pub fn is_deployed(record: &ReleaseRecord) -> bool {
    matches!(record.state, None | Some(RevisionState::Deployed))
}

/// `true` when the revision rolled out and may be restored by a rollback (state unset,
/// deployed or superseded; not pending or failed).
pub fn is_restorable(record: &ReleaseRecord) -> bool {
    matches!(record.state, None | Some(RevisionState::Deployed | RevisionState::Superseded))
}

/// The current revision: the newest deployed one.
pub fn current<T: AsRef<ReleaseRecord>>(history: &[T]) -> Option<&T> {
    history.iter().rev().find(|e| is_deployed(e.as_ref()))
}

/// The current revision when a release with objects of `digest` ([`Release::digest`]) would
/// not change it: such a release creates no revision.
pub fn unchanged<'a, T: AsRef<ReleaseRecord>>(history: &'a [T], digest: &str) -> Option<&'a T> {
    current(history).filter(|c| c.as_ref().digest == digest)
}

/// The record of `release` as the next revision of `history`, released now by its actor.
pub fn new_record<T: AsRef<ReleaseRecord>>(history: &[T], release: &Release) -> ReleaseRecord {
    ReleaseRecord::for_release(release, next_revision(history), now())
}

/// The error for an app that has no deployed revision; `location` (a cluster, a directory)
/// is named when given.
pub fn not_deployed(key: &ReleaseKey, location: Option<&str>) -> Error {
    let at = location.map(|l| format!(" ({l})")).unwrap_or_default();
    Error::NotFound {
        what: format!("release of {key}{at}"),
        hint: Some(format!("deploy it first with `Platform::deploy` ({} to {})", key.app, key.environment)),
    }
}

/// What a rollback does: restore `target`'s objects over `current` as revision
/// [`record`](RollbackPlan::record).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RollbackPlan<'a, T> {
    /// The current revision.
    pub current: &'a T,
    /// The revision whose objects are restored.
    pub target: &'a T,
    /// The record of the new revision (state unset, released now by the actor).
    pub record: ReleaseRecord,
}

/// Chooses the revision a rollback restores: `to`, or by default the newest revision that
/// rolled out with objects other than the current revision's. Errors (with hints) for no
/// deployed revision, an unknown revision, one that did not roll out, nothing earlier to roll
/// back to, and a revision with the current objects. `location` is passed to
/// [`not_deployed`].
pub fn plan_rollback<'a, T: AsRef<ReleaseRecord>>(
    key: &ReleaseKey,
    history: &'a [T],
    to: Option<Revision>,
    actor: &str,
    location: Option<&str>,
) -> Result<RollbackPlan<'a, T>> {
    let current = current(history).ok_or_else(|| not_deployed(key, location))?;
    let target = rollback_target(key, history, current, to)?;
    let record = target.as_ref().restored_as(next_revision(history), actor, now());
    Ok(RollbackPlan { current, target, record })
}

/// The revision a rollback from `current` restores: `to`, or by default the newest revision
/// that rolled out with objects other than the current revision's (see [`plan_rollback`]).
pub fn rollback_target<'a, T: AsRef<ReleaseRecord>>(
    key: &ReleaseKey,
    history: &'a [T],
    current: &T,
    to: Option<Revision>,
) -> Result<&'a T> {
    let current = current.as_ref();
    // What a hint offers: revisions that rolled out with other objects than the current ones.
    let restorable = || {
        history
            .iter()
            .map(AsRef::as_ref)
            .filter(|r| is_restorable(r) && r.digest != current.digest)
            .map(|r| r.revision.to_string())
            .collect::<Vec<_>>()
    };
    let offer = |prefix: &str| match restorable() {
        revisions if revisions.is_empty() => {
            "no other revision rolled out with other objects: there is nothing to roll back to".to_string()
        }
        revisions => format!("{prefix}: {}", revisions.join(", ")),
    };
    let target = match to {
        Some(rev) => {
            let found = history.iter().find(|e| e.as_ref().revision == rev).ok_or_else(|| Error::NotFound {
                what: format!("revision {rev} of {key}"),
                hint: Some(offer("revisions to roll back to")),
            })?;
            let record = found.as_ref();
            if !is_restorable(record) {
                let state = record.state.map_or("unknown", RevisionState::as_str);
                return Err(Error::invalid(
                    "to",
                    rev.to_string(),
                    format!("revision {rev} of {key} did not roll out (state {state})"),
                    Some(offer("revisions to roll back to")),
                ));
            }
            found
        }
        None => {
            history.iter().rev().find(|e| is_restorable(e.as_ref()) && e.as_ref().digest != current.digest).ok_or_else(
                || Error::NotFound {
                    what: format!("an earlier revision of {key}"),
                    hint: Some("there is nothing to roll back to yet".into()),
                },
            )?
        }
    };
    let record = target.as_ref();
    if record.digest == current.digest {
        return Err(Error::invalid(
            "to",
            record.revision.to_string(),
            format!("revision {} has the same objects as the current revision {}", record.revision, current.revision),
            Some(offer("pick another revision")),
        ));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::AppName;
    use crate::release::ReleaseCause;

    fn key() -> ReleaseKey {
        ReleaseKey::new(AppName::new("shop").unwrap(), "production")
    }

    fn record(revision: Revision, digest: &str, state: Option<RevisionState>) -> ReleaseRecord {
        ReleaseRecord {
            revision,
            app: "shop".into(),
            environment: "production".into(),
            team: "payments".into(),
            image: format!("ghcr.io/company/shop:{digest}"),
            replicas: 1,
            digest: digest.into(),
            deployed_at: OffsetDateTime::UNIX_EPOCH,
            deployed_by: "alice".into(),
            escape_hatches: Vec::new(),
            cause: ReleaseCause::Deploy,
            url: None,
            namespace: "shop-production".into(),
            objects: 3,
            state,
            source: None,
        }
    }

    /// A history whose targets do not watch rollouts (no states), like the GitOps target.
    fn plain(digests: &[&str]) -> Vec<ReleaseRecord> {
        digests.iter().enumerate().map(|(i, d)| record(i as Revision + 1, d, None)).collect()
    }

    #[test]
    fn revisions_are_numbered_past_the_highest() {
        assert_eq!(next_revision::<ReleaseRecord>(&[]), 1);
        assert_eq!(next_revision(&plain(&["a", "b"])), 3);
        let mut out_of_order = plain(&["a", "b", "c"]);
        out_of_order.swap(0, 2);
        assert_eq!(next_revision(&out_of_order), 4);
    }

    #[test]
    fn history_is_listed_newest_first() {
        let listed = newest_first(&plain(&["a", "b", "c"]));
        assert_eq!(listed.iter().map(|r| r.revision).collect::<Vec<_>>(), [3, 2, 1]);
    }

    #[test]
    fn the_current_revision_is_the_newest_deployed_one() {
        assert_eq!(current(&plain(&["a", "b"])).unwrap().revision, 2);
        let history = vec![
            record(1, "a", Some(RevisionState::Superseded)),
            record(2, "b", Some(RevisionState::Deployed)),
            record(3, "c", Some(RevisionState::Failed)),
            record(4, "d", Some(RevisionState::Pending)),
        ];
        assert_eq!(current(&history).unwrap().revision, 2);
        assert!(current(&[record(1, "a", Some(RevisionState::Failed))]).is_none());
    }

    #[test]
    fn a_release_with_the_current_digest_is_unchanged() {
        let history = vec![record(1, "a", Some(RevisionState::Deployed)), record(2, "b", Some(RevisionState::Failed))];
        assert_eq!(unchanged(&history, "a").map(|c| c.revision), Some(1));
        assert_eq!(unchanged(&history, "b"), None, "a failed revision is not current");
        assert_eq!(unchanged(&history, "c"), None);
    }

    #[test]
    fn rollback_defaults_to_the_newest_other_objects() {
        // 1:a 2:b 3:a (a rollback to 1): the default target of 3 is 2, not 1.
        let history = plain(&["a", "b", "a"]);
        let plan = plan_rollback(&key(), &history, None, "bob", None).unwrap();
        assert_eq!((plan.current.revision, plan.target.revision), (3, 2));
        assert_eq!(plan.record.revision, 4);
        assert_eq!(plan.record.cause, ReleaseCause::Rollback { to: 2 });
        assert_eq!(plan.record.deployed_by, "bob");
        assert_eq!(plan.record.digest, "b");
        assert_eq!(plan.record.state, None);
    }

    #[test]
    fn rollback_skips_revisions_that_did_not_roll_out() {
        let history = vec![
            record(1, "a", Some(RevisionState::Superseded)),
            record(2, "b", Some(RevisionState::Failed)),
            record(3, "c", Some(RevisionState::Deployed)),
        ];
        let plan = plan_rollback(&key(), &history, None, "bob", None).unwrap();
        assert_eq!(plan.target.revision, 1);
        let e = plan_rollback(&key(), &history, Some(2), "bob", None).unwrap_err();
        assert!(e.is_user_error(), "{e}");
        assert!(e.to_string().contains("did not roll out (state failed)"), "{e}");
        assert_eq!(e.hint(), Some("revisions to roll back to: 1"), "not the current revision 3");
    }

    #[test]
    fn rollback_errors_have_hints() {
        let e = plan_rollback::<ReleaseRecord>(&key(), &[], None, "bob", Some("kind-dev")).unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }));
        assert_eq!(e.to_string(), "release of shop in production (kind-dev) not found");
        assert!(e.hint().unwrap().contains("deploy it first"));

        let history = plain(&["a", "b"]);
        let e = plan_rollback(&key(), &history, Some(9), "bob", None).unwrap_err();
        assert_eq!(e.to_string(), "revision 9 of shop in production not found");
        assert_eq!(e.hint(), Some("revisions to roll back to: 1"));

        let e = plan_rollback(&key(), &history, Some(2), "bob", None).unwrap_err();
        assert!(e.is_user_error() && e.to_string().contains("same objects as the current revision 2"), "{e}");
        assert_eq!(e.hint(), Some("pick another revision: 1"), "never the current revision again");

        let e = plan_rollback(&key(), &plain(&["a"]), None, "bob", None).unwrap_err();
        assert_eq!(e.to_string(), "an earlier revision of shop in production not found");
        let e = plan_rollback(&key(), &plain(&["a", "a"]), None, "bob", None).unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "the same objects only: {e}");
    }

    #[test]
    fn timestamps_have_whole_seconds() {
        assert_eq!(now().nanosecond(), 0);
        assert_eq!(now().offset(), time::UtcOffset::UTC);
    }
}
