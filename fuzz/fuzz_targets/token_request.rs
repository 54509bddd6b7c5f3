//! Building a token request is a pure function of the request and the credentials: any token
//! URL, client id, secret, scopes, extra parameter and assertion give a request or a typed
//! error, never a panic. A built request carries exactly what was asked for (the form body
//! parses back into the same fields, a Basic header decodes back into the id and secret), and
//! the planted secret is in neither the credentials' `Debug` nor any error.
//!
//! The input is split at `\n` into: token URL path, client id, secret (after the planted one),
//! scope, extra parameter name, its value, assertion; the first byte picks the method and
//! where `grant_type` travels.
#![no_main]

use base64::Engine;
use futures_util::FutureExt;
use libfuzzer_sys::fuzz_target;
use tower_bearer::oauth::{ClientAuth, ClientCredentialsRequest, GrantTypeIn};

/// Starts every secret, so that it can be looked for in what is shown.
const SECRET: &str = "Pl4nted-S3cret";

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut parts = text.split('\n');
    let mut next = || parts.next().unwrap_or_default();
    let (path, id, secret_tail, scope, name, value, assertion) =
        (next(), next(), next(), next(), next(), next(), next());
    let secret = format!("{SECRET}{secret_tail}");
    // The secret is planted in the secret field only: if the fuzzer wrote it elsewhere, it may
    // be shown from there.
    let elsewhere = [path, id, scope, name, value, assertion]
        .iter()
        .any(|s| s.contains(SECRET) || s.contains("S3cret"));

    let Ok(request) = ClientCredentialsRequest::new(&format!("https://as.example/{path}")) else {
        return;
    };
    let place = if choice & 4 == 0 {
        GrantTypeIn::Body
    } else {
        GrantTypeIn::Query
    };
    let mut request = request.grant_type_in(place).scope(scope);
    if !name.is_empty() {
        request = request.param(name, value);
    }
    let auth = match choice % 4 {
        0 => ClientAuth::client_secret_post(id, &secret),
        1 => ClientAuth::client_secret_basic(id, &secret),
        2 => match ClientAuth::client_secret_basic_raw(id, &secret) {
            Ok(auth) => auth,
            Err(err) => {
                assert!(id.contains(':'));
                assert!(elsewhere || !format!("{err} {err:?}").contains(SECRET));
                return;
            }
        },
        _ => {
            let assertion = format!("{SECRET}{assertion}");
            ClientAuth::client_assertion(id, move |_| {
                let assertion = assertion.clone();
                async move { Ok(assertion) }
            })
        }
    };
    let credentials = auth
        .credentials(request.token_url())
        .now_or_never()
        .expect("ready at once")
        .expect("no method here fails to make credentials");
    let shown = format!("{credentials:?} {auth:?} {request:?}");
    assert!(elsewhere || !shown.contains(SECRET), "{shown}");

    let built = match request.http_request(&credentials) {
        Ok(built) => built,
        Err(err) => {
            assert!(elsewhere || !format!("{err} {err:?}").contains(SECRET));
            return;
        }
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(built.body())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let in_query = form_urlencoded::parse(built.uri().query().unwrap_or_default().as_bytes())
        .filter(|(k, v)| k == "grant_type" && v == "client_credentials")
        .count();
    let in_body = form.iter().filter(|(k, _)| k == "grant_type").count();
    assert_eq!(in_query + in_body, 1, "grant_type sent once");
    if place == GrantTypeIn::Query {
        assert_eq!(in_query, 1);
    }
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    assert_eq!(
        get("scope").map(str::to_owned),
        (!scopes.is_empty()).then(|| scopes.join(" "))
    );
    if !name.is_empty() {
        assert!(form.contains(&(name.to_owned(), value.to_owned())));
    }
    let basic = built.headers().get(http::header::AUTHORIZATION);
    match choice % 4 {
        0 => {
            assert_eq!(get("client_id"), Some(id));
            assert_eq!(get("client_secret"), Some(secret.as_str()));
            assert!(basic.is_none());
        }
        1 | 2 => {
            assert_eq!(get("client_secret"), None);
            let basic = basic.expect("a Basic header");
            assert!(basic.is_sensitive());
            let b64 = basic.to_str().unwrap().strip_prefix("Basic ").unwrap();
            let joined = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            let joined = String::from_utf8(joined).unwrap();
            let (got_id, got_secret) = joined.split_once(':').unwrap();
            let back = |s: &str| {
                if choice % 4 == 2 {
                    s.to_owned()
                } else {
                    form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .unwrap()
                        .1
                        .into_owned()
                }
            };
            assert_eq!(back(got_id), id);
            assert_eq!(back(got_secret), secret);
        }
        _ => {
            assert_eq!(get("client_id"), Some(id));
            assert_eq!(
                get("client_assertion").map(str::to_owned),
                Some(format!("{SECRET}{assertion}"))
            );
        }
    }
});
