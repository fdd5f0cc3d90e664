//! `POST /upload_blob` and `GET /blobs/{id}` (spec §2.9, §2.10).
//!
//! The upload is streamed to a temporary file and the size cap is enforced while reading,
//! so an oversized upload is refused without ever being held in memory. The upload is
//! charged before its bytes are taken (402 at once when the balance cannot cover it); the
//! metadata row follows once the bytes are safely stored, and an upload refused after the
//! charge (too large, empty, too slow, the store full) gets its credits back in the ledger
//! as `upload_blob refund`.

use std::time::Duration;

use actix_multipart::{Field, Multipart};
use actix_web::{web, HttpResponse};
use tocsin_sdk::protocol::BlobId;

use super::body::Deadline;
use super::error::ApiError;
use super::params::Params;
use super::{authed, plain};
use crate::blobs::{BlobStore, BlobUpload, FsUpload};
use crate::domain::UnixMs;
use crate::meter::Operation;
use crate::state::AppState;
use crate::store::NewBlob;

/// Bytes of other multipart fields tolerated next to the blob (SDKs may add text fields).
const OTHER_FIELDS_LIMIT: u64 = 64 * 1024;

fn internal(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(e.into())
}

fn malformed(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("malformed multipart body: {e}"))
}

/// Streams one field into `upload`; returns its size.
async fn receive(
    field: &mut Field,
    upload: &mut FsUpload,
    max: u64,
    deadline: &Deadline,
) -> Result<u64, ApiError> {
    let mut size = 0u64;
    while let Some(chunk) = deadline.next(field).await? {
        let chunk = chunk.map_err(malformed)?;
        size += chunk.len() as u64;
        if size > max {
            return Err(ApiError::TooLarge(format!("blob over {max} bytes")));
        }
        upload.write(&chunk).await.map_err(internal)?;
    }
    Ok(size)
}

/// Reads and discards a field that is not the blob, within a small budget.
async fn skip(field: &mut Field, budget: &mut u64, deadline: &Deadline) -> Result<(), ApiError> {
    while let Some(chunk) = deadline.next(field).await? {
        let len = chunk.map_err(malformed)?.len() as u64;
        *budget = budget
            .checked_sub(len)
            .ok_or_else(|| ApiError::TooLarge("too much data besides the blob".into()))?;
    }
    Ok(())
}

/// Finds the part named `blob` (file part or plain field, any content type) and stores it,
/// all of it within `blobs.upload_timeout_secs`. On any refusal nothing is left behind.
async fn store_blob_part(
    state: &AppState,
    multipart: &mut Multipart,
) -> Result<(FsUpload, u64), ApiError> {
    let mut stored = None;
    match read_parts(state, multipart, &mut stored).await {
        Ok(()) => stored.ok_or_else(|| ApiError::bad_request("multipart part \"blob\" is missing")),
        Err(e) => {
            if let Some((upload, _)) = stored {
                upload.abort().await;
            }
            Err(e)
        }
    }
}

/// Reads every part, storing the first one named `blob` in `stored`.
async fn read_parts(
    state: &AppState,
    multipart: &mut Multipart,
    stored: &mut Option<(FsUpload, u64)>,
) -> Result<(), ApiError> {
    let max = state.settings.blobs.max_bytes;
    let deadline = Deadline::after(Duration::from_secs(
        state.settings.blobs.upload_timeout_secs,
    ));
    let mut budget = OTHER_FIELDS_LIMIT;
    while let Some(field) = deadline.next(multipart).await? {
        let mut field = field.map_err(malformed)?;
        if field.name() != Some("blob") || stored.is_some() {
            skip(&mut field, &mut budget, &deadline).await?;
            continue;
        }
        let mut upload = state.blobs.begin().await.map_err(internal)?;
        match receive(&mut field, &mut upload, max, &deadline).await {
            Ok(size) => *stored = Some((upload, size)),
            Err(e) => {
                upload.abort().await;
                return Err(e);
            }
        }
    }
    Ok(())
}

pub async fn upload(
    state: web::Data<AppState>,
    params: Params,
    mut multipart: Multipart,
) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    let account = who.gateway().account;
    let quota = state.settings.blobs.max_total_bytes;
    let held = match quota {
        0 => 0,
        _ => state.store.blob_bytes().await?,
    };
    if quota > 0 && held >= quota {
        return Err(full(quota));
    }
    // Paid before a byte is taken, so concurrent uploads of one account cannot all pass a
    // balance check that only one of them could pay; a refused or failed upload gets its
    // credits back.
    let paid = state.meter.reserve(account, Operation::UploadBlob);
    let Some(mut prepaid) = prepay(state.get_ref(), paid).await? else {
        return Err(ApiError::NoCredits);
    };
    let received = receive_and_record(&state, &params, account, held, &mut multipart).await;
    prepaid.settled = true;
    match received {
        Ok(id) => {
            state.meter.taken(paid);
            Ok(plain(id.to_string()))
        }
        Err(e) => {
            // Given back before the answer, so a balance read after it shows the credits.
            refund(&state, &paid).await;
            Err(e)
        }
    }
}

/// An upload's charge, taken before its bytes. A refused upload gets it back before its
/// answer; one whose request is dropped halfway (the client went away, the server is
/// stopping) gets it back when this is dropped unsettled.
struct Prepaid {
    state: AppState,
    paid: crate::meter::Reservation,
    settled: bool,
}

impl Drop for Prepaid {
    fn drop(&mut self) {
        if !self.settled {
            let (state, paid) = (self.state.clone(), self.paid);
            actix_web::rt::spawn(async move { refund(&state, &paid).await });
        }
    }
}

/// Stores the upload's blob part and records it; `held` is what the blob store held
/// before. On any refusal nothing is left behind.
async fn receive_and_record(
    state: &AppState,
    params: &Params,
    account: crate::store::AccountId,
    held: u64,
    multipart: &mut Multipart,
) -> Result<BlobId, ApiError> {
    let quota = state.settings.blobs.max_total_bytes;
    let (upload, size) = store_blob_part(state, multipart).await?;
    if size == 0 {
        upload.abort().await;
        return Err(ApiError::bad_request("blob is empty"));
    }
    // Checked again with the size known (concurrent uploads may overshoot by a few).
    if quota > 0 && held.saturating_add(size) > quota {
        upload.abort().await;
        return Err(full(quota));
    }
    let id = BlobId::random();
    upload.commit(&id).await.map_err(internal)?;
    let now = UnixMs::now();
    let ttl_ms =
        i64::try_from(state.settings.blobs.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let blob = NewBlob {
        id,
        account,
        size: i64::try_from(size).unwrap_or(i64::MAX),
        persist: params.flag("persist"),
        expires_at: now.plus_ms(ttl_ms),
    };
    if let Err(e) = state.store.record_blob(&blob, now).await {
        if let Err(e) = state.blobs.delete(&id).await {
            tracing::warn!(blob = %id, "cannot remove unrecorded blob: {e}");
        }
        return Err(e.into());
    }
    Ok(id)
}

/// Charges an upload and hands its charge over held by a [`Prepaid`]; `None` when the
/// balance does not cover it. The charge commits in a task of its own: a request dropped
/// while it commits drops the guard with the channel, and the charge is given back.
async fn prepay(
    state: &AppState,
    paid: crate::meter::Reservation,
) -> Result<Option<Prepaid>, ApiError> {
    let guard = move |state: AppState| Prepaid {
        state,
        paid,
        settled: false,
    };
    if paid.is_free() {
        return Ok(Some(guard(state.clone())));
    }
    let (handed, taken) = tokio::sync::oneshot::channel();
    let state = state.clone();
    actix_web::rt::spawn(async move {
        let charged = state.store.charge(&paid.charge(), UnixMs::now()).await;
        // Refused by a request gone meanwhile: the guard in it is dropped and refunds.
        let _ = handed.send(charged.map(|c| c.map(|_| guard(state.clone()))));
    });
    match taken.await {
        Ok(charged) => Ok(charged?),
        Err(lost) => Err(internal(lost)),
    }
}

/// Gives back what a refused or failed upload was charged.
async fn refund(state: &AppState, paid: &crate::meter::Reservation) {
    let charge = paid.charge();
    if charge.amount.is_zero() {
        return;
    }
    let credited = state
        .store
        .add_credits(
            charge.account,
            charge.amount.as_i64(),
            REFUND_REASON,
            UnixMs::now(),
        )
        .await;
    if let Err(e) = credited {
        tracing::error!(
            account = charge.account.0,
            "an upload failed, and its charge could not be given back: {e}"
        );
    }
}

/// The ledger's reason for the credits of a refused upload, given back.
const REFUND_REASON: &str = "upload_blob refund";

fn full(quota: u64) -> ApiError {
    ApiError::StoreFull(format!(
        "the blob store holds its {quota} bytes; retry once blobs have expired"
    ))
}

/// `GET /blobs/{id}` for gateway IDs (credentials required, free of charge).
pub async fn download(
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    authed(&state, &params).await?;
    stream_blob(&state, &id).await
}

/// `GET /api/v1/blobs/{id}` for devices. The 128-bit random ID is the capability: it is
/// only ever written inside end-to-end encrypted messages, and the bytes are themselves
/// encrypted. Rate-limited per client IP against guessing.
pub async fn device_download(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if let Some(ip) = state.proxies.client_ip(&req) {
        state.limits.check_ip(ip)?;
    }
    stream_blob(&state, &id).await
}

/// Streams a stored, unexpired blob with its length; 404 for anything else.
async fn stream_blob(state: &AppState, raw_id: &str) -> Result<HttpResponse, ApiError> {
    const UNKNOWN: ApiError = ApiError::NotFound("no such blob");
    let id = BlobId::parse(raw_id).map_err(|_| UNKNOWN)?;
    let record = state
        .store
        .blob(&id)
        .await?
        .filter(|b| b.expires_at > UnixMs::now())
        .ok_or(UNKNOWN)?;
    let file = state
        .blobs
        .open(&id)
        .await
        .map_err(internal)?
        .ok_or(UNKNOWN)?;
    let length = u64::try_from(record.size).unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .no_chunking(length)
        .streaming(tokio_util::io::ReaderStream::new(file)))
}
