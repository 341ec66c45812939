//! A local HTTP/1.1 server on 127.0.0.1 that replays captured responses, for the network
//! tests: routes by path (query ignored unless a route names it), realistic headers (ETag,
//! Content-Type, optional gzip content encoding), conditional requests answered 304,
//! scripted sequences (500, 500, then 200), delays (timeouts) and broken bodies. Every
//! request is recorded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    /// Sent with `Content-Encoding: gzip` (compressed here).
    pub gzip: bool,
    /// Send only the first n bytes of the (encoded) body, with a Content-Length that
    /// says so: a complete HTTP message whose gzip stream is cut.
    pub truncate_to: Option<usize>,
    pub etag: Option<String>,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>, content_type: &str) -> Reply {
        let body = body.into();
        let etag = format!("\"{:016x}\"", fnv(&body));
        Reply {
            status: 200,
            body,
            content_type: content_type.into(),
            gzip: false,
            truncate_to: None,
            etag: Some(etag),
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }

    pub fn file(path: &std::path::Path, content_type: &str) -> Reply {
        Reply::ok(
            std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            content_type,
        )
    }

    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            etag: None,
            ..Reply::ok(body, "application/json")
        }
    }

    pub fn gzip(mut self) -> Reply {
        self.gzip = true;
        self
    }

    pub fn delayed(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }

    pub fn truncated(mut self, n: usize) -> Reply {
        self.truncate_to = Some(n);
        self
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub status: u16,
}

#[derive(Debug, Default)]
struct State {
    /// Path (with query when the route has one) → replies: the first ones are used once
    /// each, the last one for ever.
    routes: HashMap<String, Vec<Reply>>,
    seen: Vec<Seen>,
}

#[derive(Debug, Clone)]
pub struct Replay {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl Replay {
    pub fn start() -> Replay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        Replay { port, state }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers `path` (with its query, if given) with `replies` in turn, the last for ever.
    pub fn route(&self, path: &str, replies: Vec<Reply>) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_owned(), replies);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn clear_seen(&self) {
        self.state.lock().unwrap().seen.clear();
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let path_only = target.split('?').next().unwrap_or("").to_owned();
    let reply = {
        let mut st = state.lock().unwrap();
        let key = if st.routes.contains_key(&target) {
            Some(target.clone())
        } else if st.routes.contains_key(&path_only) {
            Some(path_only.clone())
        } else {
            None
        };
        match key {
            Some(k) => {
                let replies = st.routes.get_mut(&k).unwrap();
                if replies.len() > 1 {
                    replies.remove(0)
                } else {
                    replies[0].clone()
                }
            }
            None => Reply::status(404, format!("no route for {target}")),
        }
    };
    std::thread::sleep(reply.delay);
    let not_modified = reply.status == 200
        && reply.etag.is_some()
        && headers.get("if-none-match") == reply.etag.as_ref();
    let status = if not_modified { 304 } else { reply.status };
    state.lock().unwrap().seen.push(Seen {
        path: target,
        headers,
        status,
    });
    let mut body = if not_modified {
        Vec::new()
    } else if reply.gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&reply.body).unwrap();
        e.finish().unwrap()
    } else {
        reply.body.clone()
    };
    if let Some(n) = reply.truncate_to {
        body.truncate(n);
    }
    let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    if !not_modified {
        head.push_str(&format!("Content-Type: {}\r\n", reply.content_type));
        if reply.gzip {
            head.push_str("Content-Encoding: gzip\r\n");
        }
    }
    if let Some(e) = &reply.etag {
        head.push_str(&format!("ETag: {e}\r\n"));
    }
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut stream = reader.into_inner();
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
    // Drain anything left so the client sees a clean close.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut sink = [0u8; 64];
    let _ = stream.read(&mut sink);
}
