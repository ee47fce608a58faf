//! Conditional list requests: the answer to a list page is kept with its
//! `ETag`, the next request for that page carries `If-None-Match`, and a
//! `304 Not Modified` is answered from the kept body. An idle poll then costs
//! the forge a comparison instead of a query and a page of JSON.
//!
//! Forgejo 11 and Gitea send `ETag` only for files, attachments and avatars,
//! not for the JSON API (the swagger documents neither `ETag` nor 304), so
//! against them nothing is kept and every request is a plain one; a forge or
//! caching proxy that does send it is used as it should be.

use reqwest::header::{ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;

use super::ForgejoClient;
use crate::forge::{ForgeError, ForgeResult};
use crate::http::retry::{Replay, perform_retryable};

/// One page as the forge last sent it.
#[derive(Clone)]
pub(super) struct KeptPage {
    etag: HeaderValue,
    /// The raw body: decoded again on every 304, as cheap as keeping values
    /// of every type a list may hold.
    body: Vec<u8>,
    /// `X-Total-Count` and friends, which the paging decision reads.
    headers: HeaderMap,
}

impl ForgejoClient {
    /// One page of a list, `If-None-Match` its kept `ETag`; `None` items for a
    /// `null` answer. The headers are those of the answer the items came from.
    pub(super) async fn conditional_page<T: DeserializeOwned>(
        &self,
        url: Url,
    ) -> ForgeResult<(Option<Vec<T>>, HeaderMap)> {
        let key = url.as_str().to_string();
        let kept = self.kept_page(&key);
        let (attempt, build) = self.prepare(Method::GET, url, None, Replay::Safe);
        let build = || match &kept {
            Some(k) => build().header(IF_NONE_MATCH, k.etag.clone()),
            None => build(),
        };
        let decode = |bytes: &[u8]| {
            serde_json::from_slice::<Option<Vec<T>>>(bytes).map(|items| (items, bytes.to_vec()))
        };
        match perform_retryable(&self.policy, &attempt, build, decode).await {
            Ok(reply) => {
                let (items, body) = reply.value;
                let mut pages = self.pages.lock().expect("page cache poisoned");
                match reply.headers.get(ETAG) {
                    Some(etag) => {
                        let page = KeptPage {
                            etag: etag.clone(),
                            body,
                            headers: reply.headers.clone(),
                        };
                        pages.insert(key, page);
                    }
                    None => {
                        pages.remove(&key);
                    }
                }
                Ok((items, reply.headers))
            }
            Err(e) if e.status() == Some(StatusCode::NOT_MODIFIED) => match kept {
                Some(k) => {
                    let items = serde_json::from_slice(&k.body).map_err(|e| {
                        ForgeError::Other(anyhow::anyhow!(
                            "{}: the kept answer no longer decodes: {e}",
                            attempt.path
                        ))
                    })?;
                    Ok((items, k.headers))
                }
                // 304 to a request that asked nothing conditional.
                None => Err(self.error(e)),
            },
            Err(e) => Err(self.error(e)),
        }
    }

    /// Drop the kept answers of the URLs `gone` picks: lists that will not
    /// be asked for again must not pile up.
    pub(super) fn forget_pages(&self, gone: impl Fn(&str) -> bool) {
        self.pages
            .lock()
            .expect("page cache poisoned")
            .retain(|url, _| !gone(url));
    }

    fn kept_page(&self, key: &str) -> Option<KeptPage> {
        self.pages
            .lock()
            .expect("page cache poisoned")
            .get(key)
            .cloned()
    }
}
