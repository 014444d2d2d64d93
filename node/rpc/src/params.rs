//! One parameter style for every method, checked against the API's own description
//! ([`crate::discover::METHODS`]) before a call runs: parameters by name (an object whose keys
//! are the `snake_case` names, or their `camelCase` twins) or by position (an array in the
//! listed order). A name the method does not take, or more positions than it has, is refused
//! with -32602 rather than ignored (a misspelt `idempotency_key` must not pay twice).
//!
//! The two methods that used to take one object (`farthing_openChannel`, `farthing_pay`) also
//! accept it the old way, `{"params": {…}}` or `[{…}]`: it is unwrapped here.

use std::borrow::Cow;

use jsonrpsee::MethodResponse;
use jsonrpsee::core::middleware::{Batch, BatchEntry, BatchEntryErr, Notification, RpcServiceT};
use jsonrpsee::types::{ErrorObject, Request};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::discover::{self, Method};

/// JSON-RPC's "invalid params".
const INVALID_PARAMS: i32 = -32602;

/// The layer that puts [`CheckParams`] in front of the methods.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CheckParamsLayer;

impl<S> tower::Layer<S> for CheckParamsLayer {
    type Service = CheckParams<S>;

    fn layer(&self, service: S) -> Self::Service {
        CheckParams { service }
    }
}

/// Checks (and, for the old wrapped style, unwraps) every call's parameters.
#[derive(Debug, Clone)]
pub(crate) struct CheckParams<S> {
    service: S,
}

impl<S> RpcServiceT for CheckParams<S>
where
    S: RpcServiceT<MethodResponse = MethodResponse, BatchResponse = MethodResponse>
        + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(
        &self,
        mut request: Request<'a>,
    ) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        let checked = check(&request.method, request.params.as_deref());
        let service = self.service.clone();
        async move {
            match checked {
                Ok(None) => {}
                Ok(Some(params)) => request.params = Some(Cow::Owned(params)),
                Err(message) => {
                    return MethodResponse::error(
                        request.id,
                        ErrorObject::owned(INVALID_PARAMS, message, None::<()>),
                    );
                }
            }
            service.call(request).await
        }
    }

    fn batch<'a>(
        &self,
        mut batch: Batch<'a>,
    ) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        for entry in batch.iter_mut() {
            let Ok(BatchEntry::Call(request)) = entry else {
                continue;
            };
            match check(&request.method, request.params.as_deref()) {
                Ok(None) => {}
                Ok(Some(params)) => request.params = Some(Cow::Owned(params)),
                Err(message) => {
                    let error = ErrorObject::owned(INVALID_PARAMS, message, None::<()>);
                    *entry = Err(BatchEntryErr::new(request.id.clone().into_owned(), error));
                }
            }
        }
        self.service.batch(batch)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.service.notification(n)
    }
}

/// Check the parameters of a call to `method`: `Ok(None)` to run it as it is, `Ok(Some(p))`
/// to run it with `p` instead (an old wrapped call unwrapped), `Err` with the message to
/// answer instead (-32602). Methods the table does not describe are left alone.
pub(crate) fn check(
    method: &str,
    params: Option<&RawValue>,
) -> Result<Option<Box<RawValue>>, String> {
    let (Some(described), Some(raw)) = (discover::method(method), params) else {
        return Ok(None);
    };
    let text = raw.get().trim_start();
    if !text.starts_with('{') && !text.starts_with('[') {
        return Ok(None);
    }
    // Every call passes here (a payment is one): the common case is read without building a
    // JSON value or allocating; anything else takes the full path below.
    if plainly_fine(described, raw) {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    let unwrapped = unwrap_old_style(described, &value);
    match unwrapped.unwrap_or(&value) {
        Value::Object(fields) => {
            for key in fields.keys() {
                let known = described
                    .params
                    .iter()
                    .any(|p| p.name == key || discover::camel(p.name) == *key);
                if !known {
                    return Err(format!(
                        "{method} has no parameter {key:?}; it takes {} (farthing_discover describes every method)",
                        takes(described)
                    ));
                }
            }
        }
        Value::Array(items) if items.len() > described.params.len() => {
            return Err(format!(
                "{method} takes at most {} positional parameter(s), {} given: {}",
                described.params.len(),
                items.len(),
                takes(described)
            ));
        }
        _ => {}
    }
    match unwrapped {
        Some(inner) => RawValue::from_string(inner.to_string())
            .map(Some)
            .map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

/// Whether `raw` passes as it is, read without allocating: an object whose keys `method` all
/// takes, or no more positions than it has (and not the old one-object form). `false` means
/// "look closer", not "refused".
fn plainly_fine(method: &Method, raw: &RawValue) -> bool {
    let wrapped = discover::WRAPPED_PARAMS.contains(&method.name);
    let mut reader = serde_json::Deserializer::from_str(raw.get());
    serde::Deserializer::deserialize_any(&mut reader, Plain { method, wrapped }).unwrap_or(false)
}

/// [`plainly_fine`]'s reader.
struct Plain<'m> {
    method: &'m Method,
    wrapped: bool,
}

impl<'de> serde::de::Visitor<'de> for Plain<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object or an array of parameters")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while let Some(key) = map.next_key::<&'de str>()? {
            map.next_value::<serde::de::IgnoredAny>()?;
            let known = self
                .method
                .params
                .iter()
                .any(|p| p.name == key || is_camel_of(p.name, key));
            if !known {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut count = 0;
        let mut first_is_object = false;
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if count == 0 {
                first_is_object = item.get().starts_with('{');
            }
            count += 1;
        }
        let old_style = self.wrapped && count == 1 && first_is_object;
        Ok(count <= self.method.params.len() && !old_style)
    }
}

/// Whether `key` is `snake` in camelCase (`channel_id` → `channelId`), without building it.
fn is_camel_of(snake: &str, key: &str) -> bool {
    let mut expected = snake.split('_').enumerate().flat_map(|(i, word)| {
        let mut chars = word.chars();
        let first = chars
            .next()
            .map(|c| if i == 0 { c } else { c.to_ascii_uppercase() });
        first.into_iter().chain(chars)
    });
    let mut got = key.chars();
    loop {
        match (expected.next(), got.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The object inside `{"params": {…}}` or `[{…}]`, for the methods that took one object.
fn unwrap_old_style<'v>(method: &Method, value: &'v Value) -> Option<&'v Value> {
    if !discover::WRAPPED_PARAMS.contains(&method.name) {
        return None;
    }
    let inner = match value {
        Value::Object(fields) if fields.len() == 1 => fields.get("params")?,
        Value::Array(items) if items.len() == 1 => &items[0],
        _ => return None,
    };
    inner.is_object().then_some(inner)
}

/// "channel_id, amount" — what `method` takes, `?` after the optional ones.
fn takes(method: &Method) -> String {
    if method.params.is_empty() {
        return "no parameters".into();
    }
    method
        .params
        .iter()
        .map(|p| format!("{}{}", p.name, if p.required { "" } else { "?" }))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(method: &str, params: &str) -> Result<Option<String>, String> {
        let raw = RawValue::from_string(params.to_owned()).unwrap();
        check(method, Some(&raw)).map(|p| p.map(|p| p.get().to_owned()))
    }

    #[test]
    fn camel_case_twins_are_recognised_without_building_them() {
        for (snake, camel) in [
            ("channel_id", "channelId"),
            ("idempotency_key", "idempotencyKey"),
            ("amount", "amount"),
            ("timeout_secs", "timeoutSecs"),
        ] {
            assert!(is_camel_of(snake, camel), "{snake}");
            assert_eq!(discover::camel(snake), camel);
        }
        for (snake, not) in [
            ("channel_id", "channelid"),
            ("channel_id", "channelIdx"),
            ("amount", "amoun"),
        ] {
            assert!(!is_camel_of(snake, not), "{not}");
        }
    }

    #[test]
    fn named_and_positional_params_pass_as_they_are() {
        assert_eq!(
            run("farthing_topUp", r#"{"channel_id":1,"amount":"2"}"#),
            Ok(None)
        );
        assert_eq!(
            run("farthing_topUp", r#"{"channelId":1,"amount":"2"}"#),
            Ok(None)
        );
        assert_eq!(run("farthing_topUp", r#"[1,"2"]"#), Ok(None));
        assert_eq!(
            run("farthing_openChannel", r#"{"partner":"0x00","amount":"1"}"#),
            Ok(None)
        );
        assert_eq!(run("farthing_pay", r#"[null,"0x00","1"]"#), Ok(None));
        assert_eq!(run("farthing_info", "[]"), Ok(None));
        // Not ours to judge: a method the table does not describe, an unsubscribe.
        assert_eq!(run("farthing_unsubscribeChannels", r#"["abc"]"#), Ok(None));
        assert_eq!(run("other_method", r#"{"x":1}"#), Ok(None));
    }

    #[test]
    fn unknown_names_and_extra_positions_are_refused() {
        let typo = run(
            "farthing_pay",
            r#"{"channel_id":1,"amount":"1","idempotencykey":"k"}"#,
        )
        .unwrap_err();
        assert!(typo.contains("\"idempotencykey\""), "{typo}");
        assert!(typo.contains("idempotency_key?"), "{typo}");
        let extra = run("farthing_topUp", r#"[1,"2",3]"#).unwrap_err();
        assert!(extra.contains("at most 2"), "{extra}");
        let none = run("farthing_info", r#"{"verbose":true}"#).unwrap_err();
        assert!(none.contains("no parameters"), "{none}");
        // The old wrapper is only for the methods that had it.
        let wrapped = run("farthing_topUp", r#"{"params":{"channel_id":1}}"#).unwrap_err();
        assert!(wrapped.contains("\"params\""), "{wrapped}");
    }

    #[test]
    fn the_old_wrapped_style_is_unwrapped_and_checked() {
        let inner = r#"{"amount":"1","partner":"0x00"}"#;
        let expected: Value = serde_json::from_str(inner).unwrap();
        for wrapped in [format!(r#"{{"params":{inner}}}"#), format!("[{inner}]")] {
            let out = run("farthing_openChannel", &wrapped).unwrap().unwrap();
            assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), expected);
        }
        let typo = run(
            "farthing_pay",
            r#"{"params":{"channel_id":1,"amount":"1","memoo":"x"}}"#,
        )
        .unwrap_err();
        assert!(typo.contains("\"memoo\""), "{typo}");
    }
}
