//! Housekeeping: what a node does on its own every few seconds or minutes. Messages past
//! their TTL expire, blobs past theirs go, history past its retention is purged, devices
//! not seen for too long stop holding messages, idempotency keys past their window are
//! forgotten, and the sessions of revoked identities end.

use std::time::Duration;

use crate::domain::UnixMs;
use crate::state::AppState;

/// How often housekeeping runs: idle rate-limit buckets are forgotten, and blobs past
/// their TTL are expired (so such an expiry is late by at most this much).
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// How often messages past their TTL are deleted and reported `expired`. Senders set TTLs
/// of seconds (one-time passwords), so this runs more often than the rest. (No device
/// gets an expired message meanwhile: delivery checks the expiry itself.)
const EXPIRY_INTERVAL: Duration = Duration::from_secs(5);

/// Periodic housekeeping until the task is aborted at shutdown. A node without the role
/// `housekeeping` still keeps what is its own: its rate-limit buckets, the marks of the
/// devices connected to it, and the sessions of revoked identities.
pub(crate) async fn maintain(state: AppState) {
    let roles = state.settings.roles;
    let mut every = tokio::time::interval(EXPIRY_INTERVAL);
    let full_every = (MAINTENANCE_INTERVAL.as_secs() / EXPIRY_INTERVAL.as_secs()).max(1);
    for round in 0u64.. {
        every.tick().await;
        let now = UnixMs::now();
        match (roles.housekeeping, round % full_every == 0) {
            (true, true) => housekeeping(&state, now).await,
            (true, false) => expire_messages(&state, now).await,
            (false, true) => {
                state.limits.sweep();
                mark_connected_devices(&state, now).await;
            }
            (false, false) => {}
        }
        if let Err(e) = close_revoked(&state).await {
            tracing::warn!("checking connected identities for revocation failed: {e}");
        }
    }
}

/// Marks the devices connected to this node seen, when their mark is a quarter of
/// `devices.stale_after_secs` old, so that no node drops them while they are connected;
/// `false` when that failed.
async fn mark_connected_devices(state: &AppState, now: UnixMs) -> bool {
    let Some(stale_after) = state.settings.devices.stale_after() else {
        return true;
    };
    let connected = state.hub.devices();
    match state
        .store
        .touch_devices(&connected, now.minus(stale_after / 4), now)
        .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!("marking the connected devices seen failed: {e}");
            false
        }
    }
}

/// Ends the sessions of connected identities that have been revoked (by `tocsin admin`,
/// in another process, or through another node): within [`EXPIRY_INTERVAL`] of the
/// revocation. Returns how many identities' sessions were ended.
pub async fn close_revoked(state: &AppState) -> Result<usize, crate::store::StoreError> {
    let connected = state.hub.identities();
    if connected.is_empty() {
        return Ok(0);
    }
    let revoked = state.store.revoked_among(&connected).await?;
    for id in &revoked {
        tracing::info!(identity = %id, "ending the sessions of a revoked identity");
        state.hub.end_sessions(id, crate::hub::REVOKED);
    }
    Ok(revoked.len())
}

/// Deletes the messages past their TTL, which become `expired`.
async fn expire_messages(state: &AppState, now: UnixMs) {
    match state.store.expire_messages(now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(expired = n, "undelivered messages expired"),
        Err(e) => tracing::warn!("expiring messages failed: {e}"),
    }
}

/// Drops the devices not seen for `devices.stale_after_secs` (see `store::devices`),
/// once the devices connected here are marked seen: each node marks its own sessions
/// when their mark is a quarter of that old, so none is dropped while connected.
async fn drop_stale_devices(state: &AppState, now: UnixMs) {
    let Some(stale_after) = state.settings.devices.stale_after() else {
        return;
    };
    // After a failed mark, a drop could take a device that is connected here.
    if !mark_connected_devices(state, now).await {
        return;
    }
    let dropped = match state
        .store
        .drop_stale_devices(now.minus(stale_after), now)
        .await
    {
        Ok(dropped) => dropped,
        Err(e) => {
            tracing::warn!("dropping stale devices failed: {e}");
            return;
        }
    };
    for d in &dropped.devices {
        state.metrics.devices_dropped.inc();
        let unseen_secs = now.ms_since(d.last_seen_at) / 1000;
        let device = tocsin_sdk::protocol::csp::CspDeviceId::new(d.device_id);
        tracing::warn!(identity = %d.identity, %device, unseen_secs,
            unseen_days = unseen_secs / 86_400, "device dropped, not seen for \
            devices.stale_after_secs: it no longer holds its identity's messages");
    }
    if dropped.messages > 0 {
        let messages = dropped.messages;
        tracing::info!(messages, "messages the dropped devices held left the queue");
    }
}

/// One housekeeping pass at time `now` (unix ms): forget idle rate-limit buckets and the
/// idempotency keys past their window, expire messages and blobs past their TTL (removing
/// the blobs' bytes too), drop devices not seen for too long.
pub async fn housekeeping(state: &AppState, now: UnixMs) {
    use crate::blobs::BlobStore;
    state.limits.sweep();
    expire_messages(state, now).await;
    drop_stale_devices(state, now).await;
    let window_ms = i64::try_from(
        state
            .settings
            .messages
            .idempotency_window_secs
            .saturating_mul(1000),
    )
    .unwrap_or(i64::MAX);
    let max_keys = state.settings.messages.idempotency_max_keys;
    match state
        .store
        .forget_idempotency_keys(now.minus_ms(window_ms), max_keys)
        .await
    {
        Ok(forgotten) => {
            if forgotten.early > 0 {
                tracing::warn!(
                    forgotten = forgotten.early,
                    max_keys,
                    "idempotency keys forgotten before their window ended: more keys than \
                     messages.idempotency_max_keys; a retry of those requests would be charged again"
                );
            }
            if forgotten.total > 0 {
                tracing::debug!(forgotten = forgotten.total, "idempotency keys forgotten");
            }
        }
        Err(e) => tracing::warn!("forgetting old idempotency keys failed: {e}"),
    }
    match state.store.expire_blobs(now).await {
        Ok(ids) => {
            for id in ids {
                if let Err(e) = state.blobs.delete(&id).await {
                    tracing::warn!(blob = %id, "cannot remove an expired blob: {e}");
                }
            }
        }
        Err(e) => tracing::warn!("expiring blobs failed: {e}"),
    }
    sweep_uploads(state, UPLOAD_IDLE).await;
    let settings = &state.settings;
    let events_before = now.minus(Duration::from_secs(settings.messages.status_retention_secs));
    let dead_before = now.minus(Duration::from_secs(settings.callbacks.dead_retention_secs));
    match state.store.purge_history(events_before, dead_before).await {
        Ok((0, 0)) => {}
        Ok((events, dead)) => {
            tracing::info!(
                events,
                dead,
                "status events and dead callbacks past retention purged"
            );
        }
        Err(e) => tracing::warn!("purging old status events failed: {e}"),
    }
    match state.store.purge_invites(events_before).await {
        Ok(0) => {}
        Ok(gone) => tracing::info!(gone, "invites expired past retention purged"),
        Err(e) => tracing::warn!("purging old invites failed: {e}"),
    }
}

/// An upload file not written to for this long was left behind: a body takes far less.
const UPLOAD_IDLE: Duration = Duration::from_secs(3600);

/// Removes upload files left behind that were idle for `idle`.
pub(crate) async fn sweep_uploads(state: &AppState, idle: Duration) {
    match state.blobs.sweep_uploads(idle).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "upload files left behind were removed"),
        Err(e) => tracing::warn!("sweeping upload files failed: {e}"),
    }
}
