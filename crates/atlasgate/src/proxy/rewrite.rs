//! Links in Atlassian's JSON answers point at the gateway
//! (`https://api.atlassian.com/ex/jira/{cloud_id}/rest/api/3/issue/10000`).
//! Client libraries follow them (pycontribs `jira` keeps their path and swaps
//! only the host), so the proxy rewrites that prefix to its own
//! (`{PUBLIC_URL}/v1/connections/{id}/proxy/jira`) — while streaming: a
//! match cut in two by a chunk boundary is carried over to the next chunk.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

/// Replace every `from` by `to` in a byte stream. A chunk that holds no
/// match (and ends in no partial one) passes as it is, without a copy.
pub fn replace_stream<S, E>(
    inner: S,
    from: Vec<u8>,
    to: Bytes,
) -> impl Stream<Item = Result<Bytes, E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let from = Bytes::from(from);
    struct St<S> {
        inner: S,
        carry: Vec<u8>,
        done: bool,
    }
    futures::stream::unfold(
        St {
            inner,
            carry: Vec::new(),
            done: false,
        },
        move |mut st| {
            let from = from.clone();
            let to = to.clone();
            async move {
                if st.done {
                    return None;
                }
                loop {
                    match st.inner.next().await {
                        Some(Ok(chunk)) => {
                            if st.carry.is_empty() && find(&chunk, &from).is_none() {
                                let keep = partial_suffix(&chunk, &from);
                                if keep > 0 {
                                    st.carry = chunk[chunk.len() - keep..].to_vec();
                                }
                                let pass = chunk.slice(..chunk.len() - keep);
                                if !pass.is_empty() {
                                    return Some((Ok(pass), st));
                                }
                                continue;
                            }
                            let mut buf = std::mem::take(&mut st.carry);
                            buf.extend_from_slice(&chunk);
                            let (out, carry) = replace_chunk(&buf, &from, &to);
                            st.carry = carry;
                            if !out.is_empty() {
                                return Some((Ok(out), st));
                            }
                        }
                        Some(Err(e)) => {
                            st.done = true;
                            return Some((Err(e), st));
                        }
                        None => {
                            st.done = true;
                            let rest = std::mem::take(&mut st.carry);
                            if rest.is_empty() {
                                return None;
                            }
                            return Some((Ok(Bytes::from(rest)), st));
                        }
                    }
                }
            }
        },
    )
}

/// The length of the longest tail of `hay` that begins `needle` (a match
/// the next chunk may complete).
fn partial_suffix(hay: &[u8], needle: &[u8]) -> usize {
    let max = needle.len().saturating_sub(1).min(hay.len());
    (1..=max)
        .rev()
        .find(|&k| hay[hay.len() - k..] == needle[..k])
        .unwrap_or(0)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        // Candidates by the first byte, found with SIMD (a `memmem::Finder`
        // built per chunk costs more than the search).
        match memchr::memchr(first, &hay[i..hay.len() + 1 - needle.len()]) {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

/// Replace whole matches in `buf`; keep a tail that may begin a match.
fn replace_chunk(buf: &[u8], from: &[u8], to: &[u8]) -> (Bytes, Vec<u8>) {
    let mut out = BytesMut::with_capacity(buf.len());
    let mut i = 0;
    while let Some(p) = find(&buf[i..], from) {
        out.extend_from_slice(&buf[i..i + p]);
        out.extend_from_slice(to);
        i += p + from.len();
    }
    let keep = from.len().saturating_sub(1).min(buf.len() - i);
    out.extend_from_slice(&buf[i..buf.len() - keep]);
    (out.freeze(), buf[buf.len() - keep..].to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn run(chunks: &[&str], from: &str, to: &str) -> String {
        let items: Vec<Result<Bytes, std::io::Error>> = chunks
            .iter()
            .map(|c| Ok(Bytes::from(c.to_string())))
            .collect();
        let s = replace_stream(
            futures::stream::iter(items),
            from.as_bytes().to_vec(),
            Bytes::from(to.to_string()),
        );
        let parts: Vec<Bytes> = s.map(|r| r.unwrap()).collect().await;
        String::from_utf8(parts.concat()).unwrap()
    }

    #[tokio::test]
    async fn replaces_across_chunk_boundaries() {
        let from = "http://gw/ex/jira/c1";
        let to = "http://me/v1/connections/x/proxy/jira";
        let whole = r#"{"self":"http://gw/ex/jira/c1/rest/api/3/issue/1","other":"http://gw/ex/jira/c2/x","n":"http://gw/ex/jira/c1"}"#;
        let want = whole.replace(from, to);
        for cut in 0..whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(run(&[a, b], from, to).await, want, "cut at {cut}");
        }
        assert_eq!(
            run(
                &whole
                    .split("")
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>(),
                from,
                to
            )
            .await,
            want
        );
        assert_eq!(run(&["no match here"], from, to).await, "no match here");
        assert_eq!(run(&[], from, to).await, "");
    }
}
