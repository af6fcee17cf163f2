//! `docs/openapi.json` against the running gateway: every documented path and method exists,
//! and real responses (status, content type, required JSON fields and their types, documented
//! headers) are what the document declares.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Follows a local `$ref`.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').unwrap();
            resolve(
                doc,
                doc.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling {r}")),
            )
        }
        None => v,
    }
}

fn check_schema(doc: &Value, schema: &Value, value: &Value, at: &str) {
    if let Err(e) = conforms(doc, schema, value, at) {
        panic!("{e}");
    }
}

/// Whether `value` is what `schema` declares: types (one or a list, `null` included),
/// required fields, properties, array items, `enum` and `oneOf`.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let fits = options
            .iter()
            .filter(|o| conforms(doc, o, value, at).is_ok())
            .count();
        return (fits == 1)
            .then_some(())
            .ok_or_else(|| format!("{at}: {value} fits {fits} of the oneOf schemas"));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not among {allowed:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        other => {
            return Err(format!(
                "{at}: schema type {other} not covered by this test"
            ));
        }
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
    if !fits {
        return Err(format!("{at}: expected {types:?}, got {value}"));
    }
    match value {
        Value::Object(fields) => {
            for req in schema["required"].as_array().into_iter().flatten() {
                let key = req.as_str().unwrap_or_default();
                if !fields.contains_key(key) {
                    return Err(format!("{at}: required `{key}` missing in {value}"));
                }
            }
            for (key, prop) in schema["properties"].as_object().into_iter().flatten() {
                if let Some(v) = fields.get(key) {
                    conforms(doc, prop, v, &format!("{at}.{key}"))?;
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    conforms(doc, item, v, &format!("{at}[{i}]"))?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

struct Checker {
    doc: Value,
    seen: BTreeSet<(String, String, u16)>,
}

impl Checker {
    /// Asserts `resp` to `method template` is documented as it is.
    fn check(&mut self, method: &str, template: &str, resp: &Resp) {
        let doc = &self.doc;
        let op = &doc["paths"][template][method];
        assert!(op.is_object(), "{method} {template} is not documented");
        let documented = &op["responses"][resp.status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {template}: status {} is not documented ({})",
            resp.status,
            resp.text()
        );
        let documented = resolve(doc, documented);
        for (name, _) in documented["headers"].as_object().into_iter().flatten() {
            assert!(
                resp.header(name).is_some(),
                "{method} {template} {}: documented header {name} missing",
                resp.status
            );
        }
        match documented.get("content").and_then(Value::as_object) {
            None => assert!(
                resp.body.is_empty(),
                "{method} {template} {}: documented without a body",
                resp.status
            ),
            Some(content) => {
                let ct = resp.content_type();
                let media = content.get(&ct).unwrap_or_else(|| {
                    panic!(
                        "{method} {template} {}: content type {ct} not among {:?}",
                        resp.status,
                        content.keys().collect::<Vec<_>>()
                    )
                });
                let schema = resolve(doc, &media["schema"]);
                match ct.as_str() {
                    "application/json" => check_schema(
                        doc,
                        schema,
                        &resp.json(),
                        &format!("{method} {template} {}", resp.status),
                    ),
                    "text/xml" => {
                        resp.assert_twiml();
                    }
                    _ => assert!(!resp.body.is_empty(), "{method} {template}: empty body"),
                }
            }
        }
        self.seen
            .insert((template.to_string(), method.to_string(), resp.status));
    }

    /// Every documented path and method was exercised.
    fn assert_covered(&self) {
        let exercised: BTreeSet<(String, String)> = self
            .seen
            .iter()
            .map(|(p, m, _)| (p.clone(), m.clone()))
            .collect();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                assert!(
                    exercised.contains(&(path.clone(), method.clone())),
                    "{method} {path} is documented but not exercised"
                );
            }
        }
        for (path, method, status) in &self.seen {
            assert!(
                self.doc["paths"][path][method]["responses"][status.to_string()].is_object(),
                "{method} {path} {status}"
            );
        }
    }
}

/// Given the running gateway, then real requests to every documented endpoint (successes and
/// every error status the gateway produces) are answered as `docs/openapi.json` declares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_running_gateway() {
    let mut nats = Nats::start().await;
    let gw = Gateway::start(&nats.url(), &[]).await;
    let mut c = Checker {
        doc: document(),
        seen: BTreeSet::new(),
    };
    assert_eq!(c.doc["openapi"], "3.1.0");
    let a = gw.addr;

    const VOICE: &str = "/v1/tenants/{tenant}/twilio/voice";
    const STATUS: &str = "/v1/tenants/{tenant}/twilio/dial-status";
    const CALLS: &str = "/v1/tenants/{tenant}/calls";
    const SETTINGS: &str = "/v1/tenants/{tenant}/settings/{kind}/{id}";
    let addr = gw.addr;
    let keyed = move |method: &'static str,
                      path: &'static str,
                      key: &'static str,
                      body: Option<serde_json::Value>| async move {
        let auth = format!("Bearer {key}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        request(addr, method, path, &headers, body.as_bytes()).await
    };
    let voice = voice_params("CA0500", "+16502530000", "+14158675310");
    let status = [
        ("AccountSid", ACME_ACCOUNT),
        ("CallSid", "CA0500"),
        ("DialCallStatus", "busy"),
    ];

    c.check(
        "post",
        VOICE,
        &twilio(a, &voice_path("acme"), ACME_TOKEN, &voice).await,
    );
    c.check(
        "post",
        VOICE,
        &twilio(a, &voice_path("acme"), ACME_TOKEN, &voice[..2]).await,
    );
    c.check(
        "post",
        VOICE,
        &twilio(a, &voice_path("acme"), BETA_TOKEN, &voice).await,
    );
    c.check(
        "post",
        VOICE,
        &twilio(a, &voice_path("zed"), ACME_TOKEN, &voice).await,
    );
    c.check(
        "post",
        VOICE,
        &request_announcing(a, &voice_path("acme"), FORM, 1 << 20).await,
    );
    c.check(
        "post",
        VOICE,
        &request(
            a,
            "POST",
            &voice_path("acme"),
            &[("Content-Type", "text/plain")],
            b"x",
        )
        .await,
    );

    c.check(
        "post",
        STATUS,
        &twilio(a, &status_path("acme", 0), ACME_TOKEN, &status).await,
    );
    c.check(
        "post",
        STATUS,
        &twilio(
            a,
            "/v1/tenants/acme/twilio/dial-status",
            ACME_TOKEN,
            &status,
        )
        .await,
    );
    c.check(
        "post",
        STATUS,
        &request(
            a,
            "POST",
            &status_path("acme", 0),
            &[("Content-Type", FORM)],
            form(&status).as_bytes(),
        )
        .await,
    );
    c.check(
        "post",
        STATUS,
        &twilio(a, &status_path("zed", 0), ACME_TOKEN, &status).await,
    );
    c.check(
        "post",
        STATUS,
        &request_announcing(a, &status_path("acme", 0), FORM, 1 << 20).await,
    );
    c.check(
        "post",
        STATUS,
        &request(a, "POST", &status_path("acme", 0), &[], b"").await,
    );

    const NO_INSTRUCTION: &str = "/v1/tenants/{tenant}/twilio/no-instruction";
    let waited = |tenant: &str| format!("/v1/tenants/{tenant}/twilio/no-instruction");
    c.check(
        "post",
        NO_INSTRUCTION,
        &twilio(a, &waited("acme"), ACME_TOKEN, &voice).await,
    );
    c.check(
        "post",
        NO_INSTRUCTION,
        &twilio(a, &waited("acme"), ACME_TOKEN, &voice[..1]).await,
    );
    c.check(
        "post",
        NO_INSTRUCTION,
        &twilio(a, &waited("acme"), BETA_TOKEN, &voice).await,
    );
    c.check(
        "post",
        NO_INSTRUCTION,
        &twilio(a, &waited("zed"), ACME_TOKEN, &voice).await,
    );
    c.check(
        "post",
        NO_INSTRUCTION,
        &request_announcing(a, &waited("acme"), FORM, 1 << 20).await,
    );
    c.check(
        "post",
        NO_INSTRUCTION,
        &request(a, "POST", &waited("acme"), &[], b"").await,
    );

    // Issue 17: the whisper of a screened leg and its key press.
    const SCREEN: &str = "/v1/tenants/{tenant}/twilio/screen";
    const SCREEN_RESULT: &str = "/v1/tenants/{tenant}/twilio/screen-result";
    let leg = [
        ("AccountSid", ACME_ACCOUNT),
        ("CallSid", "CA0501"),
        ("ParentCallSid", "CA0500"),
    ];
    let pressed = [
        ("AccountSid", ACME_ACCOUNT),
        ("CallSid", "CA0501"),
        ("ParentCallSid", "CA0500"),
        ("Digits", "1"),
    ];
    for (template, leaf, params) in [
        (SCREEN, "screen", &leg[..]),
        (SCREEN_RESULT, "screen-result", &pressed[..]),
    ] {
        let at = |tenant: &str| format!("/v1/tenants/{tenant}/twilio/{leaf}?step=0");
        c.check(
            "post",
            template,
            &twilio(a, &at("acme"), ACME_TOKEN, params).await,
        );
        c.check(
            "post",
            template,
            &twilio(a, &at("acme"), ACME_TOKEN, &params[..2]).await,
        );
        c.check(
            "post",
            template,
            &twilio(a, &at("acme"), BETA_TOKEN, params).await,
        );
        c.check(
            "post",
            template,
            &twilio(a, &at("zed"), ACME_TOKEN, params).await,
        );
        c.check(
            "post",
            template,
            &request_announcing(a, &at("acme"), FORM, 1 << 20).await,
        );
        c.check(
            "post",
            template,
            &request(a, "POST", &at("acme"), &[], b"").await,
        );
    }

    let call = json!({"call_id": "crm-0500", "to": "+16502530000"});
    c.check(
        "post",
        CALLS,
        &post_json(a, "/v1/tenants/acme/calls", &call).await,
    );
    c.check(
        "post",
        CALLS,
        &post_json(a, "/v1/tenants/acme/calls", &call).await,
    );
    c.check(
        "post",
        CALLS,
        &post_json(a, "/v1/tenants/acme/calls", &json!({"to": 1})).await,
    );
    c.check(
        "post",
        CALLS,
        &post_json(a, "/v1/tenants/zed/calls", &call).await,
    );
    c.check(
        "post",
        CALLS,
        &post_json_as(a, "/v1/tenants/acme/calls", None, &call).await,
    );
    c.check(
        "post",
        CALLS,
        &request_announcing(a, "/v1/tenants/acme/calls", "application/json", 1 << 20).await,
    );
    c.check(
        "post",
        CALLS,
        &request(
            a,
            "POST",
            "/v1/tenants/acme/calls",
            &[
                ("Content-Type", FORM),
                ("Authorization", &format!("Bearer {ACME_KEY}")),
            ],
            b"a=1",
        )
        .await,
    );

    c.check("get", "/healthz", &get(a, "/healthz").await);
    c.check("get", "/readyz", &get(a, "/readyz").await);
    c.check("get", "/metrics", &get(a, "/metrics").await);
    c.check(
        "get",
        "/v1/assets/ringback.wav",
        &get(a, "/v1/assets/ringback.wav").await,
    );
    c.check("get", "/v1/twiml/hangup", &get(a, "/v1/twiml/hangup").await);
    c.check(
        "post",
        "/v1/twiml/hangup",
        &request(
            a,
            "POST",
            "/v1/twiml/hangup",
            &[("Content-Type", FORM)],
            b"",
        )
        .await,
    );

    // Settings over HTTP.
    let user = "/v1/tenants/acme/settings/user/u-9";
    let v1 = json!({"version": 1, "active": true});
    c.check(
        "put",
        SETTINGS,
        &keyed("PUT", user, ACME_KEY, Some(v1.clone())).await,
    );
    c.check(
        "put",
        SETTINGS,
        &keyed("PUT", user, ACME_KEY, Some(v1)).await,
    );
    c.check(
        "put",
        SETTINGS,
        &keyed(
            "PUT",
            user,
            ACME_KEY,
            Some(json!({"version": 1, "active": false})),
        )
        .await,
    );
    c.check(
        "put",
        SETTINGS,
        &keyed(
            "PUT",
            user,
            ACME_KEY,
            Some(json!({"version": 2, "actve": false})),
        )
        .await,
    );
    c.check(
        "put",
        SETTINGS,
        &keyed("PUT", user, BETA_KEY, Some(json!({}))).await,
    );
    c.check(
        "put",
        SETTINGS,
        &request(
            a,
            "PUT",
            user,
            &[("Content-Type", "application/json")],
            b"{}",
        )
        .await,
    );
    c.check(
        "put",
        SETTINGS,
        &keyed(
            "PUT",
            "/v1/tenants/acme/settings/team/t",
            ACME_KEY,
            Some(json!({})),
        )
        .await,
    );
    c.check(
        "put",
        SETTINGS,
        &keyed(
            "PUT",
            user,
            ACME_KEY,
            Some(json!({"version": 3, "phone": "1".repeat(200_000)})),
        )
        .await,
    );
    c.check(
        "put",
        SETTINGS,
        &request(
            a,
            "PUT",
            user,
            &[
                ("Content-Type", FORM),
                ("Authorization", &format!("Bearer {ACME_KEY}")),
            ],
            b"a=1",
        )
        .await,
    );
    c.check("get", SETTINGS, &keyed("GET", user, ACME_KEY, None).await);
    c.check(
        "get",
        SETTINGS,
        &keyed(
            "GET",
            "/v1/tenants/acme/settings/user/nobody",
            ACME_KEY,
            None,
        )
        .await,
    );
    c.check("get", SETTINGS, &keyed("GET", user, BETA_KEY, None).await);
    c.check("get", SETTINGS, &get(a, user).await);

    // A call looked up: found (crm-0500 was stored before its 202), unknown, malformed, another
    // tenant's key, no key.
    const CALL: &str = "/v1/tenants/{tenant}/calls/{call_id}";
    let found = keyed("GET", "/v1/tenants/acme/calls/crm-0500", ACME_KEY, None).await;
    assert_eq!(found.json()["inbound"].as_array().map(Vec::len), Some(1));
    c.check("get", CALL, &found);
    for (path, key) in [
        ("/v1/tenants/acme/calls/crm-none", ACME_KEY),
        ("/v1/tenants/acme/calls/crm%200500", ACME_KEY),
        ("/v1/tenants/acme/calls/crm-0500", BETA_KEY),
    ] {
        c.check("get", CALL, &keyed("GET", path, key, None).await);
    }
    c.check(
        "get",
        CALL,
        &get(a, "/v1/tenants/acme/calls/crm-0500").await,
    );

    // Undocumented paths and methods are not served.
    assert_eq!(get(a, "/v1/tenants/acme/calls").await.status, 405);
    assert_eq!(get(a, "/v1/nothing").await.status, 404);

    // NATS down: the documented 503s.
    nats.server.kill();
    gw.wait_status("/readyz", 503).await;
    c.check("get", "/readyz", &get(a, "/readyz").await);
    let other = voice_params("CA0501", "+16502530000", "+14158675310");
    c.check(
        "post",
        VOICE,
        &twilio(a, &voice_path("acme"), ACME_TOKEN, &other).await,
    );
    c.check(
        "post",
        STATUS,
        &twilio(a, &status_path("acme", 1), ACME_TOKEN, &status).await,
    );
    c.check(
        "post",
        CALLS,
        &post_json(
            a,
            "/v1/tenants/acme/calls",
            &json!({"call_id": "crm-0501", "to": "+16502530000"}),
        )
        .await,
    );

    // (NATS is down: the settings store cannot be read.)
    c.check(
        "put",
        SETTINGS,
        &keyed(
            "PUT",
            "/v1/tenants/acme/settings/user/u-8",
            ACME_KEY,
            Some(json!({"version": 1, "active": true})),
        )
        .await,
    );
    c.check(
        "get",
        SETTINGS,
        &keyed("GET", "/v1/tenants/acme/settings/user/u-8", ACME_KEY, None).await,
    );
    c.check(
        "get",
        CALL,
        &keyed("GET", "/v1/tenants/acme/calls/crm-0500", ACME_KEY, None).await,
    );
    let statuses = |path: &str| -> BTreeSet<u16> {
        c.seen
            .iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, _, s)| *s)
            .collect()
    };
    for path in [VOICE, STATUS] {
        assert_eq!(
            statuses(path),
            BTreeSet::from([200, 400, 403, 404, 413, 415, 503]),
            "{path}"
        );
    }
    assert_eq!(
        statuses(CALLS),
        BTreeSet::from([202, 400, 401, 403, 413, 415, 503])
    );
    assert_eq!(
        statuses(SETTINGS),
        BTreeSet::from([200, 201, 400, 401, 403, 404, 409, 413, 415, 503])
    );
    assert_eq!(
        statuses(CALL),
        BTreeSet::from([200, 400, 401, 403, 404, 503])
    );
    c.assert_covered();
    gw.stop().await.unwrap();
}
