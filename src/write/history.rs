//! A pipeline's run history: `outputs/<id>/runs/<run id>/` for every complete run and
//! `outputs/<id>/latest`, a symbolic link to the last one, switched atomically (a new link
//! renamed over the old one; a small pointer file where links are not available). A run is
//! written into `runs/.tmp-<pid>` and renamed to its id only when complete, so `runs/`
//! never lists an incomplete run and `latest` never points to one.
//!
//! One run at a time per history: an advisory `flock` on the history directory itself (the
//! OS releases it when the process dies, so there is no stale lock to clean up); a second
//! run waits up to `--wait` seconds, then fails naming the holder's pid and start time
//! (read from /proc/locks). Retention keeps the newest `keep` runs, never `latest`'s.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::clock::{run_time, run_time_readable};

use super::{
    MARKER, Output, WriteError, absolute, active, legacy_output, marker_text, process_alive,
    read_marker, write_all,
};

/// The name of the link to the last complete run.
pub const LATEST: &str = "latest";
/// The folder of the runs.
pub const RUNS: &str = "runs";

/// A pipeline's run history, as the user named it (`outputs/<id>` by default).
#[derive(Debug, Clone)]
pub struct History {
    pub root: PathBuf,
    pub pipeline_id: String,
    /// Files the pipeline reads: the history may neither be nor contain any of them.
    pub protected: Vec<PathBuf>,
}

/// Held while a run writes its history; released when dropped or when the process dies.
#[derive(Debug)]
pub struct Lock {
    _dir: File,
}

/// A complete run in the history.
#[derive(Debug, Clone)]
pub struct RunEntry {
    pub id: String,
    pub dir: PathBuf,
    pub latest: bool,
}

/// What committing a run gave.
#[derive(Debug)]
pub struct Committed {
    pub id: String,
    pub dir: PathBuf,
    pub warnings: Vec<String>,
}

impl History {
    fn refuse(&self, why: impl Into<String>) -> WriteError {
        WriteError::Refused {
            path: self.root.clone(),
            why: why.into(),
            help: "choose a new or empty directory, or the run history of this pipeline",
        }
    }

    /// What the root is: refused unless absent, empty, this pipeline's history, or an
    /// earlier single run of this pipeline (moved into the history on the next commit).
    pub fn check(&self) -> Result<Root, WriteError> {
        let abs = absolute(&self.root);
        for input in &self.protected {
            let input_abs = absolute(input);
            if input_abs == abs || input_abs.starts_with(&abs) {
                return Err(self.refuse(format!(
                    "it is or contains {}, which the run reads",
                    input.display()
                )));
            }
        }
        let meta = match fs::symlink_metadata(&self.root) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Root::Absent),
            Err(e) => return Err(self.refuse(format!("cannot inspect it: {e}"))),
        };
        if meta.file_type().is_symlink() || !meta.is_dir() {
            return Err(self.refuse("it exists and is not a directory"));
        }
        match read_marker(&self.root) {
            Some(m) if m.pipeline_id != self.pipeline_id => Err(self.refuse(format!(
                "it holds the outputs of another pipeline (\"{}\")",
                m.pipeline_id
            ))),
            Some(m) if m.kind == "history" => Ok(Root::History),
            Some(m) if m.kind == "run" => Ok(Root::SingleRun),
            Some(m) => Err(self.refuse(format!("it holds bienvivre {} outputs", m.kind))),
            None if legacy_output(&self.root, &self.pipeline_id) => Ok(Root::SingleRun),
            None => {
                let empty = fs::read_dir(&self.root)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
                if empty {
                    Ok(Root::Empty)
                } else {
                    Err(self.refuse(format!(
                        "it is an existing directory that bienvivre did not write (no {MARKER} marker of pipeline \"{}\")",
                        self.pipeline_id
                    )))
                }
            }
        }
    }

    /// Takes the history's lock, waiting up to `wait`: a lock on the history directory,
    /// or, before the first run has created it, on the nearest folder above that exists
    /// (nothing is created before a run succeeds).
    pub fn lock(&self, wait: Duration) -> Result<Lock, WriteError> {
        self.check()?;
        loop {
            if self.root.is_dir() {
                let lock = lock_dir(&self.root, wait)?;
                // Under the lock: temporary runs of processes that died (SIGKILL).
                remove_dead_temps(&self.root.join(RUNS));
                return Ok(lock);
            }
            let lock = lock_nearest(&self.root, wait)?;
            // Another first run may have created the history while we waited.
            if !self.root.is_dir() {
                return Ok(lock);
            }
        }
    }

    /// Makes the root a history (creating it, or moving an earlier single run into
    /// `runs/`). Under the lock, once a run is complete.
    fn prepare(&self) -> Result<(), WriteError> {
        let io = |source| WriteError::Io {
            path: self.root.clone(),
            source,
        };
        match self.check()? {
            Root::History => {}
            Root::Absent | Root::Empty => {
                fs::create_dir_all(self.root.join(RUNS)).map_err(io)?;
                write_atomic(
                    &self.root.join(MARKER),
                    marker_text(&self.pipeline_id, "history").as_bytes(),
                )
                .map_err(io)?;
            }
            Root::SingleRun => self.adopt_single_run()?,
        }
        Ok(())
    }

    /// An earlier single run of this pipeline (outputs written straight into the root)
    /// becomes the first run of the history. One exchange keeps a complete directory at
    /// the root throughout.
    fn adopt_single_run(&self) -> Result<(), WriteError> {
        let io = |source| WriteError::Io {
            path: self.root.clone(),
            source,
        };
        let (parent, name) = parent_and_name(&self.root);
        let id = format!(
            "{}-earlier",
            run_time(
                fs::metadata(self.root.join("manifest.json"))
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH)
            )
        );
        let fresh = parent.join(format!(".{name}.history-{}", std::process::id()));
        let _ = fs::remove_dir_all(&fresh);
        fs::create_dir_all(fresh.join(RUNS)).map_err(io)?;
        write_atomic(
            &fresh.join(MARKER),
            marker_text(&self.pipeline_id, "history").as_bytes(),
        )
        .map_err(io)?;
        point_latest(&fresh, &id).map_err(io)?;
        super::exchange(&fresh, &self.root).map_err(io)?;
        // `fresh` now holds the earlier run: into the history it goes.
        fs::rename(&fresh, self.root.join(RUNS).join(&id)).map_err(io)
    }

    /// The run `latest` points to.
    pub fn latest(&self) -> Option<RunEntry> {
        let link = self.root.join(LATEST);
        let target = match fs::read_link(&link) {
            Ok(t) => t,
            // A pointer file where links are not available.
            Err(_) => PathBuf::from(fs::read_to_string(&link).ok()?.trim()),
        };
        let id = target.file_name()?.to_string_lossy().into_owned();
        let dir = self.root.join(RUNS).join(&id);
        dir.is_dir().then_some(RunEntry {
            id,
            dir,
            latest: true,
        })
    }

    /// Every complete run, oldest first.
    pub fn runs(&self) -> Vec<RunEntry> {
        let latest = self.latest().map(|r| r.id);
        let mut out: Vec<RunEntry> = fs::read_dir(self.root.join(RUNS))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let id = e.file_name().to_string_lossy().into_owned();
                let dir = e.path();
                (!id.starts_with('.')
                    && dir.is_dir()
                    && read_marker(&dir).is_some_and(|m| m.kind == "run"))
                .then(|| RunEntry {
                    latest: latest.as_deref() == Some(id.as_str()),
                    id,
                    dir,
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Writes a run into a temporary folder of `runs/`, renames it to `id` once complete,
    /// points `latest` at it, then prunes the history to `keep` runs. Call under the lock.
    pub fn commit<'a>(
        &self,
        _lock: &Lock,
        id: &str,
        keep: usize,
        files: Vec<Output<'a>>,
        last: impl FnOnce() -> Output<'a>,
    ) -> Result<Committed, WriteError> {
        let runs = self.root.join(RUNS);
        let io = |source| WriteError::Io {
            path: self.root.clone(),
            source,
        };
        self.prepare()?;
        fs::create_dir_all(&runs).map_err(io)?;
        let tmp = runs.join(format!(".tmp-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io)?;
        }
        fs::create_dir(&tmp).map_err(io)?;
        active().push(tmp.clone());
        // Errors name the run folder the user will look for.
        let shown = runs.join(id);
        let mut files = files;
        files.insert(
            0,
            Output::Text(MARKER, marker_text(&self.pipeline_id, "run")),
        );
        let written = write_all(&tmp, &shown, files)
            .and_then(|()| write_all(&tmp, &shown, vec![last()]))
            .and_then(|()| {
                let _guard = active();
                if super::aborting() {
                    return Err(WriteError::Interrupted);
                }
                super::rename_new(&tmp, &shown).map_err(|source| WriteError::Io {
                    path: shown.clone(),
                    source,
                })
            });
        active().retain(|p| p != &tmp);
        if let Err(e) = written {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        point_latest(&self.root, id).map_err(io)?;
        let warnings = self.prune(keep);
        Ok(Committed {
            id: id.to_owned(),
            dir: shown,
            warnings,
        })
    }

    /// Removes the oldest runs beyond `keep`, never the one `latest` points to; a run that
    /// cannot be removed is a warning.
    fn prune(&self, keep: usize) -> Vec<String> {
        let runs = self.runs();
        let excess = runs.len().saturating_sub(keep.max(1));
        let mut warnings = Vec::new();
        for run in runs.iter().filter(|r| !r.latest).take(excess) {
            if let Err(e) = fs::remove_dir_all(&run.dir) {
                warnings.push(format!(
                    "retention: could not remove the old run {}: {e}",
                    run.dir.display()
                ));
            }
        }
        warnings
    }

    /// A run id not yet in the history: `start` as UTC time, then `tag`.
    pub fn new_id(&self, start: SystemTime, tag: &str) -> String {
        let base = format!("{}-{tag}", run_time(start));
        let taken = |id: &str| self.root.join(RUNS).join(id).exists();
        if !taken(&base) {
            return base;
        }
        (2..)
            .map(|k| format!("{base}-{k}"))
            .find(|id| !taken(id))
            .expect("a free id")
    }
}

/// Takes an exclusive `flock` on a directory, waiting up to `wait`; the OS releases it when
/// the process ends, however it ends. One-off runs (`-o DIR`) lock the folder `DIR` is in.
pub fn lock_dir(dir: &Path, wait: Duration) -> Result<Lock, WriteError> {
    use rustix::fs::{FlockOperation, flock};
    let io = |source| WriteError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let file = File::open(dir).map_err(io)?;
    let start = Instant::now();
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(Lock { _dir: file }),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                if start.elapsed() >= wait {
                    return Err(WriteError::Locked {
                        path: dir.to_path_buf(),
                        holder: holder_of(&file),
                        waited: wait,
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(io(e.into())),
        }
    }
}

/// Locks the nearest existing folder at or above `path`.
pub fn lock_nearest(path: &Path, wait: Duration) -> Result<Lock, WriteError> {
    let abs = absolute(path);
    let mut dir = abs.as_path();
    while !dir.is_dir() {
        match dir.parent() {
            Some(p) => dir = p,
            None => break,
        }
    }
    lock_dir(dir, wait)
}

/// What the history root is before a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Absent,
    Empty,
    History,
    /// Outputs of a single earlier run of this pipeline, written before the history.
    SingleRun,
}

/// The parent folder of a path (`.` for a bare name) and its last component.
fn parent_and_name(p: &Path) -> (PathBuf, String) {
    let parent = match p.parent() {
        Some(q) if !q.as_os_str().is_empty() => q.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "outputs".into());
    (parent, name)
}

/// Points `root/latest` at `runs/<id>`: a new link renamed over the old one, so that
/// `latest` always names a complete run.
fn point_latest(root: &Path, id: &str) -> std::io::Result<()> {
    let target = Path::new(RUNS).join(id);
    let tmp = root.join(format!(".{LATEST}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    match std::os::unix::fs::symlink(&target, &tmp) {
        Ok(()) => fs::rename(&tmp, root.join(LATEST)),
        // No symbolic links here: a pointer file, written and renamed the same way.
        Err(_) => write_atomic(&root.join(LATEST), target.to_string_lossy().as_bytes()),
    }
}

/// Writes a small file through a temporary one renamed into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let (parent, name) = parent_and_name(path);
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// `runs/.tmp-<pid>` folders of processes that no longer exist.
fn remove_dead_temps(runs: &Path) {
    for entry in fs::read_dir(runs).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(".tmp-")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The process holding a `flock` on `file` and when it started, from /proc (Linux).
fn holder_of(file: &File) -> Option<(u32, String)> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let (ino, dev) = (meta.ino(), meta.dev());
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let locks = fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
        let f: Vec<&str> = line.split_whitespace().collect();
        let (kind, pid, id) = (f.get(1)?, f.get(4)?, f.get(5)?);
        let mut parts = id.split(':');
        let (ma, mi, i) = (parts.next()?, parts.next()?, parts.next()?);
        (*kind == "FLOCK"
            && u32::from_str_radix(ma, 16).ok()? == major
            && u32::from_str_radix(mi, 16).ok()? == minor
            && i.parse::<u64>().ok()? == ino)
            .then(|| pid.parse::<u32>().ok())
            .flatten()
    })?;
    let started = fs::metadata(format!("/proc/{pid}"))
        .and_then(|m| m.modified())
        .map(run_time_readable)
        .unwrap_or_else(|_| "an unknown time".into());
    Some((pid, started))
}
