//! The GitOps-directory deploy target: the embedded default, no cluster needed.
//!
//! Layout under the state directory:
//!
//! ```text
//! <state>/gitops/<env>/<app>/            what Argo CD / Flux / `kubectl kustomize` consume
//!     kustomization.yaml
//!     01-namespace-my-service-production.yaml
//!     02-serviceaccount-my-service.yaml …
//! <state>/releases/<env>/<app>/<rev>.json  one record per revision (metadata + objects)
//! <state>/.locks/<env>--<app>.lock          serialises concurrent deploys of one app
//! ```
//!
//! Every file is written to a temporary file and renamed into place; the app's directory is
//! built beside the old one and swapped in with renames, so a crash never leaves a
//! half-written release: the revision record is the source of truth and the next operation
//! re-materialises the directory from it. When the state directory is inside a git work tree,
//! each release is one commit.
//!
//! Everything below the state directory is read and written through a [`cap_std`] handle on
//! it: no path, record field or symbolic link (a committed `gitops/production -> /home/ci`)
//! can make paved read or write outside it. Symbolic links below it are refused with a clear
//! error before anything is written, and the state directory itself may not be one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use cap_std::fs::{Dir, OpenOptions};
use paved_core::bookkeeping::{self, not_deployed};
use paved_core::{
    AppName, DeployContext, DeployOutcome, Deployer, DeployerCapabilities, DestroyOutcome, Error, Manifests, Release,
    ReleaseCause, ReleaseKey, ReleaseRecord, ReleaseStatus, Result, Revision,
};
use serde::{Deserialize, Serialize};

/// The name of this target in configuration (`target = "gitops"`).
pub const TARGET_NAME: &str = "gitops";

/// The header of every file paved writes into the GitOps directory.
const HEADER: &str = "# Managed by paved: changes made here are overwritten by the next deploy through paved.\n";

/// Writes releases into a directory that GitOps controllers consume.
#[derive(Debug, Clone)]
pub struct GitOpsTarget {
    state_dir: PathBuf,
    git: bool,
}

/// One stored revision: its record and its objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRelease {
    record: ReleaseRecord,
    manifests: Manifests,
}

impl AsRef<ReleaseRecord> for StoredRelease {
    fn as_ref(&self) -> &ReleaseRecord {
        &self.record
    }
}

impl GitOpsTarget {
    /// A target writing under `state_dir` (created when needed). Commits to git when the
    /// directory is inside a git work tree.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        GitOpsTarget { state_dir: state_dir.into(), git: true }
    }

    /// Turns git commits off even inside a work tree.
    pub fn without_git(mut self) -> Self {
        self.git = false;
        self
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The directory of an app's current objects.
    pub fn app_dir(&self, app: &str, env: &str) -> PathBuf {
        self.state_dir.join(app_rel(app, env))
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(Store) -> Result<T> + Send + 'static) -> Result<T> {
        let store = Store { target: self.clone() };
        tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|e| Error::backend(TARGET_NAME, format!("the file-system task failed: {e}"), None))?
    }
}

#[async_trait]
impl Deployer for GitOpsTarget {
    fn name(&self) -> &str {
        TARGET_NAME
    }

    /// Files only: no secret values, no rollout to watch, history in local files; destroy
    /// removes the app's directory and records (Argo CD and Flux prune what it held).
    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities::none().with_destroy(true)
    }

    async fn deploy(&self, release: &Release, _cx: &DeployContext) -> Result<DeployOutcome> {
        let release = release.clone();
        self.blocking(move |s| s.deploy(&release)).await
    }

    async fn status(&self, key: &ReleaseKey) -> Result<ReleaseStatus> {
        let key = key.clone();
        self.blocking(move |s| s.status(&key)).await
    }

    async fn history(&self, key: &ReleaseKey) -> Result<Vec<ReleaseRecord>> {
        let key = key.clone();
        self.blocking(move |s| Ok(bookkeeping::newest_first(&s.load_all(&key)?))).await
    }

    async fn list(&self) -> Result<Vec<ReleaseRecord>> {
        self.blocking(|s| s.list()).await
    }

    async fn destroy(&self, key: &ReleaseKey, _cx: &DeployContext) -> Result<DestroyOutcome> {
        let key = key.clone();
        self.blocking(move |s| s.destroy(&key)).await
    }

    async fn revision_objects(&self, key: &ReleaseKey, revision: Revision) -> Result<Option<Manifests>> {
        let key = key.clone();
        self.blocking(move |s| {
            Ok(s.load_all(&key)?.into_iter().find(|r| r.record.revision == revision).map(|r| r.manifests))
        })
        .await
    }

    async fn rollback(
        &self,
        key: &ReleaseKey,
        to: Option<Revision>,
        actor: &str,
        _cx: &DeployContext,
    ) -> Result<DeployOutcome> {
        let (key, actor) = (key.clone(), actor.to_string());
        self.blocking(move |s| s.rollback(&key, to, &actor)).await
    }
}

/// An app's objects, relative to the state directory.
fn app_rel(app: &str, env: &str) -> PathBuf {
    Path::new("gitops").join(env).join(app)
}

/// An app's release records, relative to the state directory.
fn releases_rel(app: &str, env: &str) -> PathBuf {
    Path::new("releases").join(env).join(app)
}

/// The blocking half of the target.
struct Store {
    target: GitOpsTarget,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

fn symlink_error(path: &Path, hint: &str) -> Error {
    Error::backend(
        TARGET_NAME,
        format!("{} is a symbolic link: paved writes inside its state directory only", path.display()),
        Some(hint.into()),
    )
}

/// The parent and the last component of a relative path.
fn split(rel: &Path) -> (&Path, &Path) {
    let parent = rel.parent().unwrap_or(Path::new(""));
    (parent, rel.file_name().map(Path::new).unwrap_or(rel))
}

/// A name for a temporary entry beside `name`, unique within this process (`create_new`
/// makes it unique among processes).
fn temp_name(name: &Path, kind: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(format!(".{}.{kind}-{}-{n}", name.display(), std::process::id()))
}

impl Store {
    /// The state directory as a capability (created when missing): paths below it resolve
    /// inside it or fail. The state directory itself may not be a symbolic link (a committed
    /// `.paved -> /home/ci` would hand paved another directory).
    fn root(&self) -> Result<Dir> {
        let state = &self.target.state_dir;
        let root = match self.existing_root()? {
            Some(root) => root,
            None => {
                std::fs::create_dir_all(state).map_err(io(state))?;
                self.existing_root()?.ok_or_else(|| Error::io(state, std::io::ErrorKind::NotFound.into()))?
            }
        };
        // Local state (the ledger, lock files) stays out of git; an existing file is the user's.
        let ignore = Path::new(paved_core::state::GITIGNORE_FILE);
        if !root.try_exists(ignore).map_err(self.io_at(ignore))? {
            self.write_atomic(&root, ignore, paved_core::state::GITIGNORE.as_bytes())?;
        }
        Ok(root)
    }

    /// The state directory as a capability when it exists (reading creates nothing). A
    /// relative state directory (`.paved`, `ci/state`) lies in the repository, so none of its
    /// components may be a symbolic link; of an absolute one, which the operator chose, only
    /// the last.
    fn existing_root(&self) -> Result<Option<Dir>> {
        let state = &self.target.state_dir;
        let checked: Vec<PathBuf> = if state.is_relative() {
            state.ancestors().filter(|a| !a.as_os_str().is_empty()).map(Path::to_path_buf).collect()
        } else {
            vec![state.clone()]
        };
        // Outermost first, so that the error names the link a repository brought.
        for path in checked.iter().rev() {
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(symlink_error(path, "pass the directory it points to as the state directory"));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        Dir::open_ambient_dir(state, cap_std::ambient_authority()).map(Some).map_err(io(state))
    }

    /// The path of `rel` for messages.
    fn shown(&self, rel: &Path) -> PathBuf {
        self.target.state_dir.join(rel)
    }

    /// Maps an error of an operation on `rel`; an escape attempt gets the symlink message.
    fn io_at<'a>(&'a self, rel: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |e| Error::io(self.shown(rel), e)
    }

    /// Refuses to write under `rel` when a directory on the way is a symbolic link: the
    /// handle would refuse one pointing outside anyway, and this says why. Directories that
    /// do not exist yet are created fresh, never through a link.
    fn no_symlinks(&self, root: &Dir, rel: &Path) -> Result<()> {
        let mut path = PathBuf::new();
        for part in rel.components() {
            path.push(part);
            match root.symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(symlink_error(
                        &self.shown(&path),
                        "replace the link with a directory (it may have come with a pull request)",
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(self.io_at(&path)(e)),
            }
        }
        Ok(())
    }

    /// Writes `bytes` to `rel` atomically: a new temporary file beside it, synced, renamed.
    fn write_atomic(&self, root: &Dir, rel: &Path, bytes: &[u8]) -> Result<()> {
        let (parent, name) = split(rel);
        let dir = if parent.as_os_str().is_empty() {
            root.try_clone()
        } else {
            root.create_dir_all(parent).and_then(|()| root.open_dir(parent))
        }
        .map_err(self.io_at(parent))?;
        let tmp = temp_name(name, "tmp");
        let written = dir
            .open_with(&tmp, OpenOptions::new().write(true).create_new(true))
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
            .and_then(|()| dir.rename(&tmp, &dir, name));
        if written.is_err() {
            let _ = dir.remove_file(&tmp);
        }
        written.map_err(self.io_at(rel))
    }

    /// An exclusive lock on `<state>/.locks/<name>.lock`, released when the file is dropped.
    fn lock_file(&self, name: &str) -> Result<File> {
        let root = self.root()?;
        let locks = Path::new(".locks");
        self.no_symlinks(&root, locks)?;
        if !root.try_exists(locks).map_err(self.io_at(locks))? {
            root.create_dir_all(locks).map_err(self.io_at(locks))?;
            // Lock files are local state: keep them out of the user's repository.
            self.write_atomic(&root, &locks.join(".gitignore"), b"*\n")?;
        }
        let rel = locks.join(format!("{name}.lock"));
        // Never through a symbolic link (one planted there would make paved create or lock a
        // file elsewhere).
        self.no_symlinks(&root, &rel)?;
        let file = root
            .open_with(&rel, OpenOptions::new().create(true).truncate(false).write(true))
            .map_err(self.io_at(&rel))?
            .into_std();
        file.lock().map_err(self.io_at(&rel))?;
        Ok(file)
    }

    /// Serialises changes to one app in one environment.
    fn lock(&self, key: &ReleaseKey) -> Result<File> {
        self.lock_file(&format!("{}--{}", key.environment, key.app))
    }

    /// The stored revisions, oldest first.
    fn load_all(&self, key: &ReleaseKey) -> Result<Vec<StoredRelease>> {
        let Some(root) = self.existing_root()? else { return Ok(Vec::new()) };
        let rel = releases_rel(key.app.as_str(), &key.environment);
        self.no_symlinks(&root, &rel)?;
        let dir = match root.open_dir(&rel) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_at(&rel)(e)),
        };
        let mut out = Vec::new();
        for entry in dir.entries().map_err(self.io_at(&rel))? {
            let name = PathBuf::from(entry.map_err(self.io_at(&rel))?.file_name());
            let path = self.shown(&rel.join(&name));
            let is_record = name.extension().is_some_and(|e| e == "json")
                && name.file_stem().and_then(|s| s.to_str()).is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()));
            if !is_record {
                continue;
            }
            let bytes = dir.read(&name).map_err(io(&path))?;
            let stored: StoredRelease = serde_json::from_slice(&bytes).map_err(|e| {
                Error::backend(
                    TARGET_NAME,
                    format!("release record {} is corrupt: {e}", path.display()),
                    Some("restore it from git, or remove it if it is the newest revision".into()),
                )
            })?;
            // A record's fields decide where a rollback or an unchanged redeploy writes: they
            // must be the request's own (a committed record is input like any other file).
            let r = &stored.record;
            let number = name.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u64>().ok());
            if r.app != key.app.as_str() || r.environment != key.environment || number != Some(r.revision) {
                return Err(Error::backend(
                    TARGET_NAME,
                    format!(
                        "release record {} names app {:?}, environment {:?} and revision {}, not those of its place ({} in {})",
                        path.display(),
                        r.app,
                        r.environment,
                        r.revision,
                        key.app,
                        key.environment
                    ),
                    Some("it was edited by hand or forged: restore it from git".into()),
                ));
            }
            out.push(stored);
        }
        out.sort_by_key(|r| r.record.revision);
        Ok(out)
    }
}

/// The files of an app directory: `(file name, contents)` in apply order, kustomization last.
fn directory_files(manifests: &Manifests) -> Vec<(String, String)> {
    let mut files = Vec::with_capacity(manifests.len() + 1);
    for (i, m) in manifests.iter().enumerate() {
        let name = format!("{:02}-{}-{}.yaml", i + 1, m.kind().to_ascii_lowercase(), m.name());
        files.push((name, format!("{HEADER}{}", m.to_yaml())));
    }
    // Written by the YAML serializer: a file name is always one quoted-as-needed scalar.
    let resources: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    let kustomization = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    });
    files.push(("kustomization.yaml".into(), format!("{HEADER}{}", paved_core::yaml::to_string(&kustomization))));
    files
}

impl Store {
    fn deploy(&self, release: &Release) -> Result<DeployOutcome> {
        let key = release.key();
        let _lock = self.lock(&key)?;
        let history = self.load_all(&key)?;
        if let Some(current) = bookkeeping::unchanged(&history, &release.digest) {
            let restored = self.materialize(current)?;
            self.commit(current)?;
            return Ok(self.outcome(current.record.clone(), false).with_restored(restored));
        }
        let record = bookkeeping::new_record(&history, release);
        self.store(&StoredRelease { record, manifests: release.manifests.clone() })
    }

    fn store(&self, stored: &StoredRelease) -> Result<DeployOutcome> {
        let r = &stored.record;
        let root = self.root()?;
        for rel in [releases_rel(&r.app, &r.environment), app_rel(&r.app, &r.environment)] {
            self.no_symlinks(&root, &rel)?;
        }
        let rel = releases_rel(&r.app, &r.environment).join(format!("{:06}.json", r.revision));
        let json = serde_json::to_vec_pretty(stored).expect("records serialize");
        self.write_atomic(&root, &rel, &json)?;
        self.materialize(stored)?;
        self.commit(stored)?;
        Ok(self.outcome(stored.record.clone(), true))
    }

    fn outcome(&self, record: ReleaseRecord, changed: bool) -> DeployOutcome {
        let location = self.target.app_dir(&record.app, &record.environment).display().to_string();
        DeployOutcome::new(record, changed, location)
    }

    /// Makes the app directory hold exactly the files of `stored`: the new directory is built
    /// beside the old one and exchanged with it in one atomic `renameat2(RENAME_EXCHANGE)`, so
    /// a reader sees the old release or the new one, never a mix or nothing. Returns `false`
    /// when the directory already matched.
    fn materialize(&self, stored: &StoredRelease) -> Result<bool> {
        let r = &stored.record;
        let root = self.root()?;
        let rel = app_rel(&r.app, &r.environment);
        self.no_symlinks(&root, &rel)?;
        let (parent_rel, name) = split(&rel);
        root.create_dir_all(parent_rel).map_err(self.io_at(parent_rel))?;
        let parent = root.open_dir(parent_rel).map_err(self.io_at(parent_rel))?;
        let files = directory_files(&stored.manifests);
        if dir_matches(&parent, name, &files) {
            return Ok(false);
        }
        // Leftovers of a crash between building and swapping (we hold the app's lock).
        let prefix = format!(".{}.staging-", r.app);
        for entry in parent.entries().map_err(self.io_at(parent_rel))?.flatten() {
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
                let _ = parent.remove_dir_all(entry.file_name());
            }
        }
        let staging = temp_name(name, "staging");
        parent.create_dir(&staging).map_err(self.io_at(&rel))?;
        let swapped = (|| {
            let dir = parent.open_dir(&staging)?;
            for (file, contents) in &files {
                let mut f = dir.open_with(file, OpenOptions::new().write(true).create_new(true))?;
                f.write_all(contents.as_bytes())?;
                f.sync_all()?;
            }
            // After an exchange the staging name holds the old directory, removed below.
            let exists = parent.symlink_metadata(name).is_ok();
            if !(exists && exchange(&parent, &staging, name)?) {
                if exists {
                    parent.remove_dir_all(name)?;
                }
                parent.rename(&staging, &parent, name)?;
            }
            Ok(())
        })();
        let _ = parent.remove_dir_all(&staging);
        swapped.map_err(self.io_at(&rel))?;
        Ok(true)
    }

    fn status(&self, key: &ReleaseKey) -> Result<ReleaseStatus> {
        let history = self.load_all(key)?;
        let current = bookkeeping::current(&history).ok_or_else(|| not_deployed(key, None))?;
        let dir = self.target.app_dir(key.app.as_str(), &key.environment);
        let rel = app_rel(key.app.as_str(), &key.environment);
        let (parent_rel, name) = split(&rel);
        let parent = self.existing_root()?.and_then(|root| root.open_dir(parent_rel).ok());
        let differences = match &parent {
            Some(p) => dir_differences(p, name, &directory_files(&current.manifests)),
            None => vec![Difference::DirectoryMissing],
        };
        let in_sync = differences.is_empty();
        let detail = if in_sync {
            format!("{} objects in sync with revision {}", current.record.objects, current.record.revision)
        } else if differences == [Difference::DirectoryMissing] {
            format!(
                "{} is gone (removed by hand?): revision {} is no longer in the directory; `Platform::deploy` or \
                 `Platform::rollback` restores it, `Platform::destroy` removes the app for good",
                dir.display(),
                current.record.revision
            )
        } else {
            let files: Vec<String> = differences.iter().map(ToString::to_string).collect();
            format!(
                "{} differs from revision {} ({}): it was edited by hand or a write was interrupted; \
                 `Platform::deploy` or `Platform::rollback` restores it",
                dir.display(),
                current.record.revision,
                files.join(", ")
            )
        };
        Ok(ReleaseStatus::new(current.record.clone(), in_sync, detail, dir.display().to_string()))
    }

    fn rollback(&self, key: &ReleaseKey, to: Option<Revision>, actor: &str) -> Result<DeployOutcome> {
        // Check before locking, so that a refused rollback writes nothing at all.
        bookkeeping::plan_rollback(key, &self.load_all(key)?, to, actor, None)?;
        let _lock = self.lock(key)?;
        let history = self.load_all(key)?;
        let plan = bookkeeping::plan_rollback(key, &history, to, actor, None)?;
        self.store(&StoredRelease { record: plan.record, manifests: plan.target.manifests.clone() })
    }

    /// The current record of every app with a release directory.
    fn list(&self) -> Result<Vec<ReleaseRecord>> {
        let Some(root) = self.existing_root()? else { return Ok(Vec::new()) };
        let releases = Path::new("releases");
        self.no_symlinks(&root, releases)?;
        let envs = match root.open_dir(releases) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_at(releases)(e)),
        };
        let names = |dir: &Dir, rel: &Path| -> Result<Vec<String>> {
            let mut out = Vec::new();
            for entry in dir.entries().map_err(self.io_at(rel))? {
                let entry = entry.map_err(self.io_at(rel))?;
                if entry.file_type().is_ok_and(|t| t.is_dir())
                    && let Some(name) = entry.file_name().to_str().filter(|n| !n.starts_with('.'))
                {
                    out.push(name.to_string());
                }
            }
            out.sort();
            Ok(out)
        };
        let mut out = Vec::new();
        for env in names(&envs, releases)? {
            let rel = releases.join(&env);
            let apps = envs.open_dir(&env).map_err(self.io_at(&rel))?;
            for app in names(&apps, &rel)? {
                // Only names paved writes: anything else in the directory is not a release.
                let Ok(app) = AppName::new(app.as_str()) else { continue };
                let history = self.load_all(&ReleaseKey::new(app, env.clone()))?;
                out.extend(bookkeeping::current(&history).map(|s| s.record.clone()));
            }
        }
        Ok(out)
    }

    /// Removes the app's directory and its release records, as one commit when in git.
    fn destroy(&self, key: &ReleaseKey) -> Result<DestroyOutcome> {
        let _lock = self.lock(key)?;
        let history = self.load_all(key)?;
        if history.is_empty() {
            return Err(not_deployed(key, None));
        }
        let root = self.root()?;
        let (app, env) = (key.app.as_str(), key.environment.as_str());
        let mut deleted = Vec::new();
        if let Some(current) = bookkeeping::current(&history) {
            deleted.extend(current.manifests.iter().map(|m| m.key().to_string()));
        }
        deleted.extend(history.iter().map(|s| format!("Revision/{}", s.record.revision)));
        for rel in [app_rel(app, env), releases_rel(app, env)] {
            self.no_symlinks(&root, &rel)?;
            match root.remove_dir_all(&rel) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io_at(&rel)(e)),
            }
        }
        self.git_commit(app, env, &format!("paved: destroy {app} in {env}\n\nrevisions: {}\n", history.len()))?;
        Ok(DestroyOutcome::new(app, env, deleted, self.target.app_dir(app, env).display().to_string()))
    }

    /// Commits the release's paths when the state directory is inside a git work tree and
    /// they have uncommitted changes.
    fn commit(&self, stored: &StoredRelease) -> Result<()> {
        let r = &stored.record;
        let what = match &r.cause {
            ReleaseCause::Rollback { to } => format!("roll back {} in {} to revision {to}", r.app, r.environment),
            _ => format!("deploy {} {} to {}", r.app, r.image, r.environment),
        };
        let hatches = if r.escape_hatches.is_empty() {
            "none".to_string()
        } else {
            r.escape_hatches.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        };
        let message = format!(
            "paved: {} (revision {})\n\nimage: {}\nreplicas: {}\nteam: {}\nescape-hatches: {}\ndigest: sha256:{}\ndeployed-by: {}\n",
            one_line(&what),
            r.revision,
            one_line(&r.image),
            r.replicas,
            one_line(r.team.as_str()),
            one_line(&hatches),
            one_line(&r.digest),
            one_line(&r.deployed_by)
        );
        self.git_commit(&r.app, &r.environment, &message).map_err(|e| {
            Error::backend(
                TARGET_NAME,
                format!(
                    "revision {} of {} in {} was written, but committing it failed: {e}",
                    r.revision, r.app, r.environment
                ),
                Some("fix the repository, then run the same deploy again: it commits the written revision".into()),
            )
        })
    }

    /// Commits the app's directory and records (written or removed) with `message`, when the
    /// state directory is inside a git work tree and they have uncommitted changes.
    fn git_commit(&self, app: &str, env: &str, message: &str) -> Result<()> {
        if !self.target.git {
            return Ok(());
        }
        let state = &self.target.state_dir;
        let Some(top) = git(state, &["rev-parse", "--show-toplevel"]).ok().map(|s| PathBuf::from(s.trim())) else {
            return Ok(());
        };
        // Every app shares the repository's index: one git operation at a time.
        let _git_lock = self.lock_file("git")?;
        // Absolute, so that git (run in the top directory) finds removed paths too.
        let state = state.canonicalize().map_err(io(state))?;
        let paths: Vec<String> =
            [app_rel(app, env), releases_rel(app, env)].iter().map(|p| state.join(p).display().to_string()).collect();
        let mut status_args = vec!["status", "--porcelain", "--"];
        status_args.extend(paths.iter().map(String::as_str));
        if git(&top, &status_args)?.trim().is_empty() {
            return Ok(());
        }
        let mut add = vec!["add", "-A", "--"];
        add.extend(paths.iter().map(String::as_str));
        git(&top, &add)?;
        let mut commit = vec!["commit", "--quiet", "--no-verify", "-m", message, "--"];
        commit.extend(paths.iter().map(String::as_str));
        git(&top, &commit).map(drop)
    }
}

/// Exchanges two entries of `dir` atomically; `Ok(false)` where the platform or file system
/// cannot, so the caller falls back to remove + rename. Both are single names in `dir`, so
/// nothing is resolved outside it.
#[cfg(target_os = "linux")]
fn exchange(dir: &Dir, a: &Path, b: &Path) -> std::io::Result<bool> {
    use rustix::fs::{RenameFlags, renameat_with};
    match renameat_with(dir, a, dir, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::NOTSUP) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_dir: &Dir, _a: &Path, _b: &Path) -> std::io::Result<bool> {
    Ok(false)
}

/// Whether `parent/name` holds exactly `files`.
fn dir_matches(parent: &Dir, name: &Path, files: &[(String, String)]) -> bool {
    dir_differences(parent, name, files).is_empty()
}

/// How an app directory differs from a revision's files.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Difference {
    /// The directory is gone.
    DirectoryMissing,
    /// A file of the revision is missing.
    Missing(String),
    /// A file differs from the revision's.
    Changed(String),
    /// A file the revision does not have.
    Extra(String),
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::DirectoryMissing => f.write_str("the directory is missing"),
            Difference::Missing(file) => write!(f, "{file} missing"),
            Difference::Changed(file) => write!(f, "{file} changed"),
            Difference::Extra(file) => write!(f, "{file} added"),
        }
    }
}

/// What in `parent/name` differs from `files`, by file.
fn dir_differences(parent: &Dir, name: &Path, files: &[(String, String)]) -> Vec<Difference> {
    let Ok(dir) = parent.open_dir(name) else { return vec![Difference::DirectoryMissing] };
    let mut out = Vec::new();
    for (file, contents) in files {
        match dir.read(file) {
            Ok(bytes) if bytes == contents.as_bytes() => {}
            Ok(_) => out.push(Difference::Changed(file.clone())),
            Err(_) => out.push(Difference::Missing(file.clone())),
        }
    }
    let mut extra: Vec<String> = dir
        .entries()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !files.iter().any(|(f, _)| f == n))
        .collect();
    extra.sort();
    out.extend(extra.into_iter().map(Difference::Extra));
    out
}

/// Runs git in `dir`; a missing identity falls back to `paved <paved@localhost>`.
/// Credentials paved holds in its environment that git and whatever it runs (hooks, helpers)
/// never get (issue 18).
const CREDENTIAL_VARS: [&str; 8] = [
    "VAULT_TOKEN",
    "BAO_TOKEN",
    "VAULT_SECRET_ID",
    "BAO_SECRET_ID",
    "VAULT_ROLE_ID",
    "BAO_ROLE_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// `git -C dir` without paved's credentials in its environment, and without running anything
/// the repository (or a pull request changing it) brings along: no hooks (a husky-style
/// `core.hooksPath` points into the tree), no fsmonitor program; pathspecs are literal, never
/// globs.
fn git_command(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).args(["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"]);
    cmd.env("GIT_LITERAL_PATHSPECS", "1");
    for var in CREDENTIAL_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// `value` on one line: line breaks and other control characters become spaces, so a field
/// (an actor name, an image) can never add lines, such as forged trailers, to a commit message.
fn one_line(value: &str) -> String {
    value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let mut cmd = git_command(dir);
    let has_identity = git_command(dir)
        .args(["config", "user.email"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !has_identity {
        cmd.args(["-c", "user.name=paved", "-c", "user.email=paved@localhost"]);
    }
    let output = cmd.args(args).output().map_err(|e| Error::Backend {
        backend: TARGET_NAME.into(),
        message: "cannot run git".into(),
        hint: Some("install git, or keep the state directory outside a git work tree".into()),
        source: Some(Box::new(e)),
    })?;
    if !output.status.success() {
        return Err(Error::backend(
            TARGET_NAME,
            format!("git {} failed: {}", args.first().unwrap_or(&""), String::from_utf8_lossy(&output.stderr).trim()),
            Some(format!("check the git repository at {}", dir.display())),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn store(state: &Path) -> Store {
        Store { target: GitOpsTarget::new(state).without_git() }
    }

    #[test]
    fn the_handle_never_writes_outside_the_state_directory() {
        let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let state = dir.path().join("state");
        let s = store(&state);
        let root = s.root().unwrap();
        // A link planted after the friendly check (a race) still cannot lead out: the handle
        // refuses to resolve it.
        std::os::unix::fs::symlink(outside.path(), state.join("gitops")).unwrap();
        let rel = Path::new("gitops/production/my-service/01-x.yaml");
        assert!(s.write_atomic(&root, rel, b"x").is_err());
        assert!(s.write_atomic(&root, Path::new("gitops/x.yaml"), b"x").is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing was written outside");
        // And the friendly check names the link.
        let e = s.no_symlinks(&root, rel).unwrap_err();
        assert!(e.to_string().contains("gitops is a symbolic link"), "{e}");
        // Inside, it writes atomically and leaves no temporary files.
        std::fs::remove_file(state.join("gitops")).unwrap();
        s.write_atomic(&root, rel, b"x").unwrap();
        let written: Vec<_> = std::fs::read_dir(state.join("gitops/production/my-service")).unwrap().collect();
        assert_eq!(written.len(), 1);
    }

    #[test]
    fn a_relative_state_directory_may_not_go_through_a_link() {
        let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::os::unix::fs::symlink(outside.path(), dir.path().join("ci")).unwrap();
        // Relative to the working directory, as `--state-dir ci/state` would be.
        let relative = pathdiff(dir.path().join("ci/state"));
        let e = store(&relative).root().unwrap_err();
        assert!(e.to_string().contains("ci is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing was created outside");
    }

    /// `path` relative to the working directory.
    fn pathdiff(path: PathBuf) -> PathBuf {
        let cwd = std::env::current_dir().unwrap();
        let up = cwd.components().count() - 1;
        let mut relative: PathBuf = std::iter::repeat_n("..", up).collect();
        relative.push(path.strip_prefix("/").unwrap());
        relative
    }

    #[test]
    fn a_state_directory_that_is_a_symlink_is_refused() {
        let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let state = dir.path().join(".paved");
        std::os::unix::fs::symlink(outside.path(), &state).unwrap();
        let e = store(&state).root().unwrap_err();
        assert!(e.to_string().contains(".paved is a symbolic link"), "{e}");
        assert!(e.hint().unwrap().contains("pass the directory it points to"));
    }
}
