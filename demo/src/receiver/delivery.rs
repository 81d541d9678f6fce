//! One delivery as the handlers see it: the event id from the `webhook-id` header, and the body.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use sha2::{Digest, Sha256};

use super::reply::Reply;
use crate::webhook::ID_HEADER;

/// Longer ids are refused: an id becomes a Redis key and a database value, and Standard Webhooks
/// ids are short (`msg_` and a few dozen characters).
const MAX_ID_BYTES: usize = 256;

/// A delivery that carries an event id. As an axum extractor it answers 400 by itself when the
/// id is missing, empty, not text or too long.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The event id: the same on every delivery of one event.
    pub id: String,
    /// The body, exactly as sent.
    pub payload: Bytes,
}

impl Delivery {
    /// The SHA-256 of the body. Claimed with the id, it lets the dedup store tell a duplicate
    /// (same id, same body) from an id reused for a different payload.
    pub fn fingerprint(&self) -> Vec<u8> {
        Sha256::digest(&self.payload).to_vec()
    }

    /// The id's key in Redis. The prefix keeps webhook ids apart from any other use of the same
    /// servers.
    pub fn dedup_key(&self) -> String {
        format!("webhook:{}", self.id)
    }
}

impl<S: Send + Sync> FromRequest<S> for Delivery {
    type Rejection = Reply;

    async fn from_request(request: Request, state: &S) -> Result<Delivery, Reply> {
        let id = match request.headers().get(ID_HEADER).map(|value| value.to_str()) {
            None => return Err(Reply::bad_request(format!("the {ID_HEADER} header is missing"))),
            Some(Err(_)) => return Err(Reply::bad_request(format!("the {ID_HEADER} header is not text"))),
            Some(Ok("")) => return Err(Reply::bad_request(format!("the {ID_HEADER} header is empty"))),
            Some(Ok(id)) if id.len() > MAX_ID_BYTES => {
                return Err(Reply::bad_request(format!("the {ID_HEADER} header is longer than {MAX_ID_BYTES} bytes")))
            }
            Some(Ok(id)) => id.to_owned(),
        };
        let payload =
            Bytes::from_request(request, state).await.map_err(|rejection| Reply::bad_request(rejection.body_text()))?;
        Ok(Delivery { id, payload })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_the_sha256_of_the_body() {
        let delivery = Delivery { id: "msg_1".into(), payload: Bytes::from_static(b"abc") };
        let hex: String = delivery.fingerprint().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(delivery.dedup_key(), "webhook:msg_1");
    }
}
