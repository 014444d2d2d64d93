//! The API described by one table, [`METHODS`]: `farthing_discover` (also `rpc.discover`)
//! serves it as an OpenRPC 1.2 document ([`document`]), and the server checks every call's
//! parameter names and count against it (see `params.rs`), so what the document says is what
//! the server takes. A test checks the table against the methods the server registers.
//!
//! Adding a method: one entry in [`METHODS`] (and its result type in [`SCHEMAS`] if new).

use serde_json::{Map, Value, json};

use crate::code;

mod credentials;
mod table;

pub use table::{ALIASES, ENUMS, ERRORS, Field, METHODS, SCHEMAS, WRAPPED_PARAMS};

/// One method of the API (without the `farthing_` prefix).
#[derive(Debug, Clone, Copy)]
pub struct Method {
    /// The name after `farthing_`, e.g. `"openChannel"`.
    pub name: &'static str,
    /// One line: what it does.
    pub summary: &'static str,
    /// Its parameters, in positional order.
    pub params: &'static [Param],
    /// Its result, in the type language of [`schema`] (a subscription: its items).
    pub result: &'static str,
    /// The [`code`]s it may answer besides 1099 (internal) and -32602 (invalid parameters).
    pub errors: &'static [i32],
    /// For a subscription: (notification method, unsubscribe method), both without prefix.
    pub subscription: Option<(&'static str, &'static str)>,
}

/// One parameter: by name in an object (`snake_case`, or its `camelCase` twin), or by
/// position in an array.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name, `snake_case`.
    pub name: &'static str,
    /// Its type, in the type language of [`schema`].
    pub ty: &'static str,
    /// Whether it must be given (an optional one may be left out or `null`).
    pub required: bool,
    /// One line.
    pub summary: &'static str,
}

/// The method named `name` on the wire (`farthing_…`, or an alias), if the table has it.
pub fn method(name: &str) -> Option<&'static Method> {
    let short = match name.strip_prefix("farthing_") {
        Some(short) => short,
        None => ALIASES.iter().find(|(alias, _)| *alias == name)?.1,
    };
    METHODS.iter().find(|m| m.name == short)
}

/// Every name the server answers to, as the table has them: methods, unsubscribe methods,
/// aliases.
pub fn wire_names() -> Vec<String> {
    let mut names = Vec::new();
    for m in METHODS {
        names.push(format!("farthing_{}", m.name));
        if let Some((_, unsubscribe)) = m.subscription {
            names.push(format!("farthing_{unsubscribe}"));
        }
    }
    names.extend(ALIASES.iter().map(|(alias, _)| (*alias).to_owned()));
    names
}

/// The JSON schema of a type in the table's little language: `integer`, `boolean`, `string`,
/// `amount` (token units), `address`, `hash` (32 bytes, 0x hex), `peer` (`0xADDRESS@host:port`), `object`, a name from
/// [`SCHEMAS`] or [`ENUMS`], `[T]` (an array of T), `T?` (T or null).
pub fn schema(ty: &str) -> Value {
    if let Some(inner) = ty.strip_suffix('?') {
        return json!({ "oneOf": [schema(inner), { "type": "null" }] });
    }
    if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return json!({ "type": "array", "items": schema(inner) });
    }
    match ty {
        "integer" => json!({ "type": "integer", "minimum": 0 }),
        "boolean" | "string" | "object" => json!({ "type": ty }),
        "amount" => json!({
            "type": "string",
            "pattern": "^[0-9]+(\\.[0-9]+)?$",
            "description": "an amount in token units (ether for gas), as a decimal string"
        }),
        "address" => json!({ "type": "string", "pattern": "^0x[0-9a-fA-F]{40}$" }),
        "hash" => json!({ "type": "string", "pattern": "^0x[0-9a-fA-F]{64}$" }),
        "peer" => json!({ "type": "string", "pattern": "^0x[0-9a-fA-F]{40}@[^@]+:[0-9]+$" }),
        name => json!({ "$ref": format!("#/components/schemas/{name}") }),
    }
}

/// `camelCase` of a `snake_case` name (the server accepts both).
pub fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The OpenRPC 1.2 document of the API.
pub fn document() -> Value {
    let error_ref = |c: &i32| json!({ "$ref": format!("#/components/errors/{}", error_key(*c)) });
    let common = [code::INTERNAL, -32602];
    let mut methods = Vec::new();
    for m in METHODS {
        let params: Vec<Value> = m
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "summary": p.summary,
                    "required": p.required,
                    "schema": schema(p.ty),
                })
            })
            .collect();
        let errors: Vec<Value> = m.errors.iter().chain(&common).map(error_ref).collect();
        let mut entry = json!({
            "name": format!("farthing_{}", m.name),
            "summary": m.summary,
            "paramStructure": "either",
            "params": params,
            "result": { "name": "result", "schema": schema(m.result) },
            "errors": errors,
        });
        if let Some((notification, unsubscribe)) = m.subscription {
            entry["result"] = json!({
                "name": "subscription",
                "summary": "the subscription id; each item arrives as a notification",
                "schema": { "type": "string" },
            });
            entry["x-notification"] = json!({
                "method": format!("farthing_{notification}"),
                "params": { "subscription": { "type": "string" }, "result": schema(m.result) },
            });
            entry["x-unsubscribe"] = json!(format!("farthing_{unsubscribe}"));
            methods.push(entry);
            methods.push(json!({
                "name": format!("farthing_{unsubscribe}"),
                "summary": format!("End a farthing_{} subscription.", m.name),
                "paramStructure": "by-position",
                "params": [{ "name": "subscription", "required": true, "schema": { "type": "string" } }],
                "result": { "name": "result", "schema": { "type": "boolean" } },
            }));
        } else {
            methods.push(entry);
        }
    }
    for (alias, target) in ALIASES {
        if let Some(mut entry) = methods
            .iter()
            .find(|e| e["name"] == format!("farthing_{target}"))
            .cloned()
        {
            entry["name"] = json!(alias);
            methods.push(entry);
        }
    }

    let mut schemas = Map::new();
    for (name, fields) in SCHEMAS {
        let properties: Map<String, Value> = fields
            .iter()
            .map(|(field, ty, _)| ((*field).to_owned(), schema(ty)))
            .collect();
        let required: Vec<&str> = fields
            .iter()
            .filter(|(_, _, always)| *always)
            .map(|(field, _, _)| *field)
            .collect();
        schemas.insert(
            (*name).to_owned(),
            json!({ "type": "object", "properties": properties, "required": required }),
        );
    }
    for (name, values) in ENUMS {
        schemas.insert(
            (*name).to_owned(),
            json!({ "type": "string", "enum": values }),
        );
    }
    let errors: Map<String, Value> = ERRORS
        .iter()
        .map(|(c, name, meaning)| {
            (
                error_key(*c),
                json!({ "code": c, "message": meaning, "data": { "name": name } }),
            )
        })
        .collect();

    json!({
        "openrpc": "1.2.6",
        "info": {
            "title": "Farthing node JSON-RPC API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "JSON-RPC 2.0 over HTTP and WebSocket on one port, with Authorization: Bearer <rpc.token>. \
                Parameters by name (an object; snake_case, camelCase also accepted) or by position (an array, in the order listed); \
                unknown names and extra positions are refused (-32602). Amounts are decimal strings in token units, never base units. \
                Error codes are stable: match on code, never on message.",
        },
        "methods": methods,
        "components": { "schemas": schemas, "errors": errors },
    })
}

fn error_key(code: i32) -> String {
    if code < 0 {
        format!("E_{}", code.unsigned_abs())
    } else {
        format!("E{code}")
    }
}

#[cfg(test)]
mod tests;
