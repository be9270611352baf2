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

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use async_trait::async_trait;
use paved_core::bookkeeping::{self, not_deployed};
use paved_core::{
    DeployContext, DeployOutcome, Deployer, DeployerCapabilities, Error, Manifests, Release, ReleaseCause, ReleaseKey,
    ReleaseRecord, ReleaseStatus, Result, Revision,
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
        self.state_dir.join("gitops").join(env).join(app)
    }

    fn releases_dir(&self, app: &str, env: &str) -> PathBuf {
        self.state_dir.join("releases").join(env).join(app)
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

    /// Files only: no secret values, no destroy, no rollout to watch, history in local files.
    fn capabilities(&self) -> DeployerCapabilities {
        DeployerCapabilities::none()
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

/// The blocking half of the target.
struct Store {
    target: GitOpsTarget,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// Refuses to write under `dir` when a directory between `state` and `dir` is a symbolic link
/// (a committed `gitops/production -> /home/ci` would make paved replace `/home/ci/<app>`):
/// paved writes inside its state directory only. Directories that do not exist yet are created
/// fresh, never through a link.
fn no_symlinks_below(state: &Path, dir: &Path) -> Result<()> {
    let Ok(relative) = dir.strip_prefix(state) else {
        return Ok(());
    };
    let mut path = state.to_path_buf();
    for part in relative.components() {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::backend(
                    TARGET_NAME,
                    format!("{} is a symbolic link: paved writes inside its state directory only", path.display()),
                    Some("replace the link with a directory (it may have come with a pull request)".into()),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(())
}

/// `O_NOFOLLOW`: opening a symbolic link fails.
#[cfg(target_os = "linux")]
fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, synced, renamed.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("paths written here have a parent");
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut tmp = tempfile::Builder::new().prefix(".paved-").tempfile_in(dir).map_err(io(dir))?;
    tmp.write_all(bytes).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
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
    /// An exclusive lock on `<state>/.locks/<name>.lock`, released when the file is dropped.
    fn lock_file(&self, name: &str) -> Result<File> {
        let dir = self.target.state_dir.join(".locks");
        no_symlinks_below(&self.target.state_dir, &dir)?;
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(io(&dir))?;
            // Lock files are local state: keep them out of the user's repository.
            write_atomic(&dir.join(".gitignore"), b"*\n")?;
        }
        let path = dir.join(format!("{name}.lock"));
        let mut options = File::options();
        options.create(true).truncate(false).write(true);
        // Never through a symbolic link (one planted there would make paved create or lock
        // a file elsewhere).
        #[cfg(target_os = "linux")]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, nofollow());
        let file = options.open(&path).map_err(|e| match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => Error::backend(
                TARGET_NAME,
                format!("{} is a symbolic link: paved writes inside its state directory only", path.display()),
                Some("remove the link; paved creates the lock file itself".into()),
            ),
            _ => Error::io(&path, e),
        })?;
        file.lock().map_err(io(&path))?;
        Ok(file)
    }

    /// Serialises changes to one app in one environment.
    fn lock(&self, key: &ReleaseKey) -> Result<File> {
        self.lock_file(&format!("{}--{}", key.environment, key.app))
    }

    /// The stored revisions, oldest first.
    fn load_all(&self, key: &ReleaseKey) -> Result<Vec<StoredRelease>> {
        let dir = self.target.releases_dir(key.app.as_str(), &key.environment);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(io(&dir))?.path();
            let is_record = path.extension().is_some_and(|e| e == "json")
                && path.file_stem().and_then(|s| s.to_str()).is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()));
            if !is_record {
                continue;
            }
            let bytes = fs::read(&path).map_err(io(&path))?;
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
            let number = path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u64>().ok());
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
        for dir in [self.target.releases_dir(&r.app, &r.environment), self.target.app_dir(&r.app, &r.environment)] {
            no_symlinks_below(&self.target.state_dir, &dir)?;
        }
        let path = self.target.releases_dir(&r.app, &r.environment).join(format!("{:06}.json", r.revision));
        let json = serde_json::to_vec_pretty(stored).expect("records serialize");
        write_atomic(&path, &json)?;
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
        let final_dir = self.target.app_dir(&r.app, &r.environment);
        let files = directory_files(&stored.manifests);
        if dir_matches(&final_dir, &files) {
            return Ok(false);
        }
        let parent = final_dir.parent().expect("has a parent");
        fs::create_dir_all(parent).map_err(io(parent))?;
        // Leftovers of a crash between building and swapping (we hold the app's lock).
        let prefix = format!(".{}.staging-", r.app);
        for entry in fs::read_dir(parent).map_err(io(parent))?.flatten() {
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let staging = tempfile::Builder::new().prefix(&prefix).tempdir_in(parent).map_err(io(parent))?;
        for (name, contents) in &files {
            let path = staging.path().join(name);
            let mut f = File::create(&path).map_err(io(&path))?;
            f.write_all(contents.as_bytes()).map_err(io(&path))?;
            f.sync_all().map_err(io(&path))?;
        }
        // After an exchange the staging path holds the old directory; dropping `staging`
        // removes it.
        if !(final_dir.exists() && exchange(staging.path(), &final_dir)?) {
            if final_dir.exists() {
                fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
            }
            fs::rename(staging.path(), &final_dir).map_err(io(&final_dir))?;
        }
        Ok(true)
    }

    fn status(&self, key: &ReleaseKey) -> Result<ReleaseStatus> {
        let history = self.load_all(key)?;
        let current = bookkeeping::current(&history).ok_or_else(|| not_deployed(key, None))?;
        let dir = self.target.app_dir(key.app.as_str(), &key.environment);
        let in_sync = dir_matches(&dir, &directory_files(&current.manifests));
        let detail = if in_sync {
            format!("{} objects in sync with revision {}", current.record.objects, current.record.revision)
        } else {
            format!(
                "{} differs from revision {}: it was edited by hand or a write was interrupted; `Platform::deploy` or `Platform::rollback` restores it",
                dir.display(),
                current.record.revision
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

    /// Commits the release's paths when the state directory is inside a git work tree and
    /// they have uncommitted changes.
    fn commit(&self, stored: &StoredRelease) -> Result<()> {
        if !self.target.git {
            return Ok(());
        }
        let r = &stored.record;
        let state = &self.target.state_dir;
        let Some(top) = git(state, &["rev-parse", "--show-toplevel"]).ok().map(|s| PathBuf::from(s.trim())) else {
            return Ok(());
        };
        // Every app shares the repository's index: one git operation at a time.
        let _git_lock = self.lock_file("git")?;
        let paths = [self.target.app_dir(&r.app, &r.environment), self.target.releases_dir(&r.app, &r.environment)];
        let paths: Vec<String> =
            paths.iter().map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()).display().to_string()).collect();
        let mut status_args = vec!["status", "--porcelain", "--"];
        status_args.extend(paths.iter().map(String::as_str));
        if git(&top, &status_args)?.trim().is_empty() {
            return Ok(());
        }
        let mut add = vec!["add", "-A", "--"];
        add.extend(paths.iter().map(String::as_str));
        git(&top, &add)?;
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
        let mut commit = vec!["commit", "--quiet", "--no-verify", "-m", &message, "--"];
        commit.extend(paths.iter().map(String::as_str));
        git(&top, &commit).map(drop).map_err(|e| {
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
}

/// Exchanges two directories atomically; `Ok(false)` where the platform or file system
/// cannot, so the caller falls back to remove + rename.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::NOTSUP) => Ok(false),
        Err(e) => Err(Error::io(b, e.into())),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> Result<bool> {
    Ok(false)
}

fn dir_matches(dir: &Path, files: &[(String, String)]) -> bool {
    let Ok(entries) = fs::read_dir(dir) else { return false };
    let count = entries.filter_map(|e| e.ok()).filter(|e| e.path().is_file()).count();
    count == files.len()
        && files.iter().all(|(name, contents)| fs::read(dir.join(name)).is_ok_and(|b| b == contents.as_bytes()))
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
