//! One HTTP client for every source: reqwest (already compiled for polars, with rustls)
//! driven by a current-thread tokio runtime, so the rest of the program stays blocking.
//! Timeouts per request; bounded retries with exponential backoff on 5xx, 429 (honouring
//! `Retry-After`), timeouts, dropped connections and broken bodies; bodies decoded here
//! (gzip) so that a truncated transfer is a failure, never a short body.

use std::io::Read;
use std::time::Duration;

/// A response as kept: status, the headers that matter, the decoded body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_type: Option<String>,
    /// `Retry-After`, as sent.
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

/// Validators of a cached copy, sent so that an unchanged resource answers 304.
#[derive(Debug, Clone, Default)]
pub struct Conditional {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A request that got no usable response, after its retries.
#[derive(Debug, Clone)]
pub struct Failure {
    /// What went wrong the last time, in words.
    pub why: String,
    /// How many requests were made.
    pub attempts: u32,
    /// The last response, when the server answered (a 5xx or 429 still failing).
    pub response: Option<Box<Response>>,
}

/// The longest wait a `Retry-After` may ask for before we give up instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// The first backoff; doubled after each failure.
const BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> Result<Http, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
        let client = reqwest::Client::builder()
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION"),
                " (territorial indicators batch)"
            ))
            .connect_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Http { runtime, client })
    }

    /// GET with retries: a response with a status below 500 (other than 429) is returned
    /// as is, to be judged by the caller; the rest is retried up to `retries` times.
    pub fn get(
        &self,
        url: &str,
        conditional: &Conditional,
        timeout: Duration,
        retries: u32,
    ) -> Result<Response, Failure> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (why, wait, response) = match self.once(url, conditional, timeout) {
                Ok(r) if r.status < 500 && r.status != 429 => return Ok(r),
                Ok(r) => {
                    let asked = retry_after(&r);
                    let why = format!("HTTP {}{}", r.status, reason(r.status));
                    (why, asked, Some(Box::new(r)))
                }
                Err(why) => (why, None, None),
            };
            let failure = |why: String| Failure {
                why,
                attempts,
                response: response.clone(),
            };
            if attempts > retries {
                return Err(failure(why));
            }
            let backoff = BACKOFF * 2u32.saturating_pow(attempts - 1);
            let wait = match wait {
                Some(w) if w > MAX_RETRY_AFTER => {
                    return Err(failure(format!(
                        "{why}, and the server asks to retry after {} s",
                        w.as_secs()
                    )));
                }
                Some(w) => w.max(backoff),
                None => backoff,
            };
            std::thread::sleep(wait);
        }
    }

    fn once(
        &self,
        url: &str,
        conditional: &Conditional,
        timeout: Duration,
    ) -> Result<Response, String> {
        use reqwest::header;
        let mut request = self
            .client
            .get(url)
            .timeout(timeout)
            .header(header::ACCEPT_ENCODING, "gzip");
        if let Some(e) = &conditional.etag {
            request = request.header(header::IF_NONE_MATCH, e);
        }
        if let Some(m) = &conditional.last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, m);
        }
        let describe = |e: reqwest::Error| -> String {
            if e.is_timeout() {
                format!("no answer within {} s (timeout)", timeout.as_secs_f64())
            } else if e.is_connect() {
                format!("cannot connect: {}", root_cause(&e))
            } else {
                format!("the transfer failed: {}", root_cause(&e))
            }
        };
        self.runtime.block_on(async {
            let r = request.send().await.map_err(describe)?;
            let status = r.status().as_u16();
            let text = |name: header::HeaderName| {
                r.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let etag = text(header::ETAG);
            let last_modified = text(header::LAST_MODIFIED);
            let content_type = text(header::CONTENT_TYPE);
            let encoding = text(header::CONTENT_ENCODING);
            let retry = text(header::RETRY_AFTER);
            let raw = r.bytes().await.map_err(describe)?.to_vec();
            let body = match encoding.as_deref().map(str::trim) {
                None | Some("") | Some("identity") => raw,
                Some(e) if e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip") => {
                    let mut out = Vec::new();
                    flate2::read::MultiGzDecoder::new(&raw[..])
                        .read_to_end(&mut out)
                        .map_err(|e| {
                            format!("the gzip-encoded body is broken (truncated transfer?): {e}")
                        })?;
                    out
                }
                Some(other) => return Err(format!("unsupported content encoding \"{other}\"")),
            };
            Ok(Response {
                status,
                etag,
                last_modified,
                content_type,
                retry_after: retry,
                body,
            })
        })
    }
}

/// The wait a 429 or 503 asks for: `Retry-After` in seconds, or as an HTTP date.
fn retry_after(r: &Response) -> Option<Duration> {
    let v = r.retry_after.as_deref()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = crate::clock::parse_http_date(v)?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        429 => " (too many requests)",
        500 => " (internal server error)",
        502 => " (bad gateway)",
        503 => " (service unavailable)",
        504 => " (gateway timeout)",
        _ => "",
    }
}

/// The innermost cause of an error (reqwest's own message is "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last: &dyn std::error::Error = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

/// What an error response says, in the API's own words: Eurostat's
/// `{"error":[{"status","id","label"}]}`, SDMX's SOAP fault `faultstring`, the World
/// Bank's `[{"message":[{"id","key","value"}]}]`, a `message` member, or the first line
/// of a short text body.
pub fn api_message(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        return json_message(&v);
    }
    for tag in ["faultstring", "com:Text", "message", "Message", "title"] {
        let open = format!("<{tag}");
        if let Some(start) = text.find(&open)
            && let Some(gt) = text[start..].find('>')
        {
            let from = start + gt + 1;
            if let Some(len) = text[from..].find(&format!("</{tag}>")) {
                let inner = text[from..from + len].trim();
                if !inner.is_empty() {
                    return Some(inner.to_owned());
                }
            }
        }
    }
    if text.starts_with('<') {
        return None;
    }
    let first = text.lines().next().unwrap_or("");
    Some(first.chars().take(200).collect())
}

fn json_message(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let field = |o: &Value, k: &str| -> Option<String> {
        match o.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    match v {
        Value::Object(o) => {
            if let Some(err) = o.get("error") {
                let items: Vec<&Value> = match err {
                    Value::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                let parts: Vec<String> = items
                    .iter()
                    .filter_map(|e| {
                        if let Value::String(s) = e {
                            return Some(s.clone());
                        }
                        let label = field(e, "label").or_else(|| field(e, "message"))?;
                        Some(match field(e, "id") {
                            Some(id) => format!("{label} (error id {id})"),
                            None => label,
                        })
                    })
                    .collect();
                if !parts.is_empty() {
                    return Some(parts.join("; "));
                }
            }
            field(v, "message")
                .or_else(|| field(v, "detail"))
                .or_else(|| field(v, "title"))
        }
        Value::Array(a) => {
            let first = a.first()?;
            let msgs = first.get("message")?.as_array()?;
            let parts: Vec<String> = msgs
                .iter()
                .map(|m| {
                    let key = field(m, "key").unwrap_or_default();
                    let value = field(m, "value").unwrap_or_default();
                    match field(m, "id") {
                        Some(id) => format!("{key}: {value} (error id {id})"),
                        None => format!("{key}: {value}"),
                    }
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_messages_in_the_publishers_words() {
        let eurostat = br#"{"error":[{"status":413,"id":413,"label":"EXTRACTION_TOO_BIG: The requested extraction is too big"}]}"#;
        assert_eq!(
            api_message(eurostat).unwrap(),
            "EXTRACTION_TOO_BIG: The requested extraction is too big (error id 413)"
        );
        let wb = br#"[{"message":[{"id":"120","key":"Invalid value","value":"The provided parameter value is not valid"}]}]"#;
        assert_eq!(
            api_message(wb).unwrap(),
            "Invalid value: The provided parameter value is not valid (error id 120)"
        );
        let fault = b"<S:Envelope><S:Body><S:Fault><faultcode>413</faultcode><faultstring>EXTRACTION_TOO_BIG: too big</faultstring></S:Fault></S:Body></S:Envelope>";
        assert_eq!(api_message(fault).unwrap(), "EXTRACTION_TOO_BIG: too big");
        assert_eq!(api_message(b"Not Found\n").unwrap(), "Not Found");
        assert_eq!(api_message(b"<html><body>x</body></html>"), None);
        assert_eq!(api_message(b"  "), None);
    }
}
