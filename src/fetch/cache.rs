//! The download cache: one file per URL, `<dir>/http/<sha256 of the URL>.entry`, holding a
//! JSON header line (URL, status, validators, content type, SHA-256 and size of the body,
//! retrieval time) and then the body as received (after content decoding). One file, so
//! an entry is replaced by a single rename and a reader never sees half of one; the body's
//! digest in the header detects any later corruption, and a corrupted entry is never used.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What is kept of a response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EntryMeta {
    pub url: String,
    pub status: u16,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_type: Option<String>,
    pub sha256: String,
    pub bytes: u64,
    /// When the body was downloaded (UTC, RFC 3339).
    pub retrieved: String,
}

/// A cache entry read back and checked.
#[derive(Debug)]
pub struct Entry {
    pub meta: EntryMeta,
    pub body: Vec<u8>,
}

/// Why an entry cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("no entry")]
    Missing,
    #[error("the cache entry {} is corrupted ({why})", path.display())]
    Corrupted { path: PathBuf, why: String },
    #[error("cannot write the cache entry {}: {why}", path.display())]
    Write { path: PathBuf, why: String },
}

#[derive(Debug, Clone)]
pub struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Self {
        Cache { dir }
    }

    /// The user's cache directory for bienvivre (`$XDG_CACHE_HOME/bienvivre` on Linux).
    pub fn default_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("bienvivre"))
    }

    /// The file of a URL's entry.
    pub fn path_of(&self, url: &str) -> PathBuf {
        let key = crate::files::sha256_hex(url.as_bytes());
        self.dir.join("http").join(format!("{key}.entry"))
    }

    /// The entry of a URL, checked against its digest.
    pub fn get(&self, url: &str) -> Result<Entry, CacheError> {
        let path = self.path_of(url);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CacheError::Missing),
            Err(e) => {
                return Err(CacheError::Corrupted {
                    path,
                    why: e.to_string(),
                });
            }
        };
        let corrupted = |why: &str| CacheError::Corrupted {
            path: path.clone(),
            why: why.to_owned(),
        };
        let Some(nl) = data.iter().position(|&b| b == b'\n') else {
            return Err(corrupted("no header line"));
        };
        let meta: EntryMeta =
            serde_json::from_slice(&data[..nl]).map_err(|_| corrupted("unreadable header"))?;
        if meta.url != url {
            return Err(corrupted("it is the entry of another URL"));
        }
        let body = data[nl + 1..].to_vec();
        if body.len() as u64 != meta.bytes {
            return Err(corrupted(&format!(
                "{} bytes instead of {}",
                body.len(),
                meta.bytes
            )));
        }
        if crate::files::sha256_hex(&body) != meta.sha256 {
            return Err(corrupted("its SHA-256 does not match"));
        }
        Ok(Entry { meta, body })
    }

    /// Stores an entry: written beside, synced, then renamed over the old one.
    pub fn put(&self, meta: &EntryMeta, body: &[u8]) -> Result<PathBuf, CacheError> {
        let path = self.path_of(&meta.url);
        let fail = |why: String| CacheError::Write {
            path: path.clone(),
            why,
        };
        let parent = path.parent().expect("entries are in a folder");
        std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
        let tmp = temp_name(&path);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            let header = serde_json::to_string(meta).expect("entry header serialises");
            f.write_all(header.as_bytes())?;
            f.write_all(b"\n")?;
            f.write_all(body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(e.to_string())
        })?;
        Ok(path)
    }
}

/// A name beside `path` no other writer uses (process id and a counter).
fn temp_name(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().expect("a file name").to_os_string();
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(url: &str, body: &[u8]) -> EntryMeta {
        EntryMeta {
            url: url.into(),
            status: 200,
            etag: Some("\"v1\"".into()),
            last_modified: None,
            content_type: Some("application/json".into()),
            sha256: crate::files::sha256_hex(body),
            bytes: body.len() as u64,
            retrieved: "2026-11-27T10:00:00Z".into(),
        }
    }

    #[test]
    fn entries_round_trip_and_corruption_is_detected() {
        let dir = std::env::temp_dir().join(format!("bienvivre-cache-test-{}", std::process::id()));
        let cache = Cache::new(dir.clone());
        let url = "http://127.0.0.1:1/data?x=1";
        assert!(matches!(cache.get(url), Err(CacheError::Missing)));
        let body = b"{\"a\": 1}\n\nsecond line";
        let path = cache.put(&meta(url, body), body).unwrap();
        let e = cache.get(url).unwrap();
        assert_eq!(e.body, body);
        assert_eq!(e.meta.etag.as_deref(), Some("\"v1\""));
        // Flip one byte of the body: the digest no longer matches.
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        std::fs::write(&path, &data).unwrap();
        assert!(matches!(cache.get(url), Err(CacheError::Corrupted { .. })));
        // Truncated.
        std::fs::write(&path, &data[..data.len() - 3]).unwrap();
        assert!(matches!(cache.get(url), Err(CacheError::Corrupted { .. })));
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
