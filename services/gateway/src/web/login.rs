//! Sign-in, sign-out and the language switch.

use super::page::{Console, LANG_COOKIE, Lang, safe_return, url_encode};
use crate::api::error::HttpError;
use crate::auth::{self, accounts};
use crate::limits::ClientAddr;
use crate::state::Gateway;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use bytes::Bytes;
use http::HeaderMap;
use http::header::SET_COOKIE;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
pub struct Next {
    #[serde(default)]
    next: String,
}

fn login_page(lang: Lang, next: &str, username: &str, error: Option<&HttpError>) -> Markup {
    let other = match lang {
        Lang::Zh => ("en", "English"),
        Lang::En => ("zh", "中文"),
    };
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (lang.tr("登录", "Sign in")) " · HCRM" }
                link rel="stylesheet" href="/static/console.css";
            }
            body.plain {
                main.narrow {
                    h1 { "HCRM" }
                    p.lead { (lang.tr("患者服务中心 · 工作人员登录", "Patient service centre · staff sign-in")) }
                    @if let Some(err) = error {
                        div.error role="alert" data-code=(crate::api::error::code_str(err.code)) {
                            p { strong { (err.message) } }
                        }
                    }
                    form.card method="post" action="/login" {
                        input type="hidden" name="next" value=(next);
                        label { (lang.tr("用户名", "Username"))
                            input name="username" autocomplete="username" required value=(username) autofocus[username.is_empty()];
                        }
                        label { (lang.tr("密码", "Password"))
                            input name="password" type="password" autocomplete="current-password" required autofocus[!username.is_empty()];
                        }
                        button type="submit" { (lang.tr("登录", "Sign in")) }
                    }
                    p.small { a data-lang=(other.0) href={ "/lang/" (other.0) "?next=" (url_encode(&format!("/login?next={}", url_encode(next)))) } { (other.1) } }
                }
            }
        }
    }
}

pub async fn show(State(gw): State<Arc<Gateway>>, headers: HeaderMap, Query(q): Query<Next>) -> Response {
    let next = safe_return(&q.next);
    if let Ok(Some(_)) = auth::signed_in(&gw, &headers).await {
        return Redirect::to(&next).into_response();
    }
    Html(login_page(Lang::of(&headers), &next, "", None).into_string()).into_response()
}

#[derive(Debug, Default, Deserialize)]
struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Signs in. There is no session yet to hold a CSRF token, so the form is protected by the
/// origin check (and a cross-site form could only sign the victim in as the attacker).
pub async fn submit(
    State(gw): State<Arc<Gateway>>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::of(&headers);
    let form: SignInForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let next = safe_return(&form.next);
    let result = match auth::check_origin(&gw, &headers) {
        Ok(()) => accounts::sign_in(&gw, &form.username, &form.password, &client.to_string()).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(opened) => {
            let mut response = Redirect::to(&next).into_response();
            if let Ok(value) = auth::session_cookie(&gw, &opened.cookie_value).parse() {
                response.headers_mut().insert(SET_COOKIE, value);
            }
            response
        }
        Err(err) => {
            let err = HttpError::from(err);
            let status = http::StatusCode::from_u16(err.status).unwrap_or(http::StatusCode::UNAUTHORIZED);
            let page = login_page(lang, &next, &form.username, Some(&err));
            (status, Html(page.into_string())).into_response()
        }
    }
}

pub async fn logout(c: Console, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(err) = c
        .form::<std::collections::HashMap<String, String>>(&headers, &body)
        .map(|_| ())
    {
        return c.error(err);
    }
    if let Err(err) = accounts::sign_out(&c.gw, &c.who).await {
        return c.error(err);
    }
    let mut response = Redirect::to("/login").into_response();
    if let Ok(value) = auth::clear_session_cookie(&c.gw).parse() {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// Switches the language (a cookie for a year) and goes back.
pub async fn language(Path(code): Path<String>, Query(q): Query<Next>) -> Response {
    let code = if code == "en" { "en" } else { "zh" };
    let mut response = Redirect::to(&safe_return(&q.next)).into_response();
    let cookie = format!("{LANG_COOKIE}={code}; Path=/; SameSite=Lax; Max-Age=31536000");
    if let Ok(value) = cookie.parse() {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}
