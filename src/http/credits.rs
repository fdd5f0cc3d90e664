//! `GET /credits` (spec §2.8): the balance as a decimal integer.

use actix_web::{web, HttpResponse};

use super::error::ApiError;
use super::params::Params;
use super::{authed, plain};
use crate::state::AppState;

pub async fn credits(state: web::Data<AppState>, params: Params) -> Result<HttpResponse, ApiError> {
    let who = authed(&state, &params).await?;
    let account = state
        .store
        .account(who.gateway().account)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("gateway ID without account")))?;
    Ok(plain(account.balance.to_string()))
}
