//! Email: `/api/v1/email/tag` tags a campaign's HTML (the open pixel and signed click
//! links, for one recipient or a merge tag), and `/api/v1/consent` records or withdraws
//! a recipient's consent to open and click tracking.

use axum::extract::State;
use axum::routing::on;
use axum::Json;
use serde_json::{json, Value};

use super::campaigns::own_campaign;
use super::{blocking, keyring, ApiError, ApiRoute, ApiState, Auth, Body, Op};
use crate::model::SiteId;
use crate::store::{PrivacyStore, Scope};
use crate::tag::{Recipient, Tagger};

pub(super) const ROUTES: &[ApiRoute] = &[
    ApiRoute {
        path: "/api/v1/email/tag",
        summary: "Tag email HTML (POST {campaign, recipient or merge_tag, html})",
        methods: &[Op::post(Scope::Write, |m| on(m, tag))
            .body(|| json!({"type": "object", "additionalProperties": false, "required": ["campaign", "html"], "properties": {
                "campaign": {"type": "integer"},
                "recipient": {"type": "string", "description": "one recipient's id; or merge_tag"},
                "merge_tag": {"type": "string", "description": "your mail tool's placeholder for the recipient id"},
                "html": {"type": "string"}
            }}))
            .returns(|| json!({"type": "object", "required": ["html", "links"], "properties": {
                "html": {"type": "string"},
                "links": {"type": "integer"},
                "refused": {"type": "array", "items": {"type": "string"}}
            }}))],
        parameters: None,
    },
    ApiRoute {
        path: "/api/v1/consent",
        summary: "Record or withdraw an email recipient's consent (POST {recipient, granted, campaign or site})",
        methods: &[Op::post(Scope::Write, |m| on(m, consent))
            .body(|| json!({"type": "object", "additionalProperties": false, "required": ["recipient", "granted"], "properties": {
                "recipient": {"type": "string"},
                "granted": {"type": "boolean"},
                "campaign": {"type": "integer"},
                "site": {"type": "string"}
            }}))
            .returns(|| json!({"type": "object", "required": ["recipient", "granted"], "properties": {
                "recipient": {"type": "string"},
                "granted": {"type": "boolean"},
                "campaign": {"type": "integer", "nullable": true}
            }}))],
        parameters: None,
    },
];

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TagRequest {
    campaign: i64,
    recipient: Option<String>,
    merge_tag: Option<String>,
    html: String,
}

/// `POST /api/v1/email/tag`: the HTML with the open pixel and signed click links.
async fn tag(
    State(state): State<ApiState>,
    auth: Auth,
    Body(b): Body<TagRequest>,
) -> Result<Json<Value>, ApiError> {
    let c = own_campaign(&state, &auth, &b.campaign.to_string()).await?;
    let ring = keyring(&state).await?;
    let tagger = Tagger {
        keyring: &ring,
        base: &state.public_url,
        site_id: c.site_id,
        campaign_id: c.id,
    };
    let recipient = match (&b.recipient, &b.merge_tag) {
        (Some(r), None) => Recipient::Id(r),
        (None, Some(t)) => Recipient::MergeTag(t),
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of 'recipient' or 'merge_tag'".into(),
            ))
        }
    };
    let out = tagger
        .tag(&b.html, recipient)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(
        json!({"html": out.html, "links": out.links, "refused": out.refused}),
    ))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    recipient: String,
    granted: bool,
    /// One campaign, or (without it) every campaign of `site`.
    campaign: Option<i64>,
    site: Option<String>,
}

/// `POST /api/v1/consent`: records or withdraws an email recipient's consent; a
/// withdrawal applies at once, also to emails already sent.
async fn consent(
    State(state): State<ApiState>,
    auth: Auth,
    Body(b): Body<ConsentRequest>,
) -> Result<Json<Value>, ApiError> {
    if b.recipient.is_empty()
        || b.recipient.len() > crate::token::MAX_RECIPIENT
        || b.recipient.chars().any(char::is_control)
    {
        return Err(ApiError::BadRequest(
            "'recipient' must be 1 to 256 characters".into(),
        ));
    }
    let (site_id, campaign_id) = match b.campaign {
        Some(id) => {
            let c = own_campaign(&state, &auth, &id.to_string()).await?;
            (SiteId(c.site_id), c.id)
        }
        None => (auth.site(&state, b.site.as_deref()).await?.id, 0),
    };
    let store = state.store.clone();
    let now = state.clock.now_ms();
    let (recipient, granted) = (b.recipient.clone(), b.granted);
    blocking(move || store.set_consent(site_id, campaign_id, &recipient, granted, now)).await?;
    Ok(Json(
        json!({"recipient": b.recipient, "granted": b.granted, "campaign": b.campaign}),
    ))
}
