//! `/account`: change your own password (admins and viewers alike). The current
//! password is checked first; the change ends every session of the user (as
//! `pixeltrack user passwd` does), so the next page is the sign-in form.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::blocking;
use crate::web::accounts::{hash_password, validate_password, verify_password};
use crate::web::layout::{self, csrf_field};
use crate::web::{CsrfForm, CurrentUser, WebError, WebState};

/// `GET /account`.
pub async fn show(user: CurrentUser) -> Result<Response, WebError> {
    let body = html! {
        h1 { "Your account" }
        p { "Signed in as " strong { (user.username) } " (" (user.role.as_str()) ")." }
        section.account {
            h2 { "Change your password" }
            form.password method="post" action="/account" {
                (csrf_field(&user))
                label { "Current password" input type="password" name="current" autocomplete="current-password" required; }
                label { "New password (at least 10 characters)" input type="password" name="new" autocomplete="new-password" required minlength="10"; }
                label { "New password again" input type="password" name="again" autocomplete="new-password" required minlength="10"; }
                button type="submit" { "Change password" }
            }
            p.muted.small { "Every session of yours ends: sign in again with the new password." }
        }
    };
    Ok(layout::render(layout::page("Account", Some(&user), body)))
}

#[derive(Deserialize)]
pub struct NewPassword {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    again: String,
}

/// `POST /account`.
pub async fn change_password(
    State(state): State<WebState>,
    f: CsrfForm<NewPassword>,
) -> Result<Response, WebError> {
    let p = f.form;
    if p.new != p.again {
        return Err(WebError::BadRequest(
            "the two new passwords differ: type the same one twice".into(),
        ));
    }
    validate_password(&p.new).map_err(|e| WebError::BadRequest(e.to_string()))?;
    let store = state.store.clone();
    let name = f.user.username.clone();
    blocking(move || {
        let ok = store
            .user_with_hash(&name)
            .map_err(WebError::internal)?
            .is_some_and(|(_, hash)| {
                p.current.len() <= crate::web::accounts::MAX_PASSWORD_BYTES
                    && verify_password(&p.current, &hash)
            });
        if !ok {
            return Err(WebError::BadRequest(
                "the current password is wrong; nothing changed".into(),
            ));
        }
        let hash = hash_password(&p.new).map_err(WebError::internal)?;
        store
            .set_password(&name, &hash)
            .map_err(super::store_err)?
            .ok_or(WebError::NotFound)?;
        Ok(())
    })
    .await?;
    Ok(Redirect::to("/login?changed=1").into_response())
}
