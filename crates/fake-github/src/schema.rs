//! GitHub's OpenAPI description of the operations issueloop calls, and a validator for the
//! JSON-schema subset it uses (type, nullable, enum, properties, required, additionalProperties,
//! items, minItems/maxItems, oneOf/anyOf/allOf, internal `$ref`).

use std::sync::OnceLock;

use serde_json::{Value, json};

const SPEC_TEXT: &str = include_str!("../fixtures/openapi-subset.refs.json");

/// The parsed description, shared by every fake server in the process.
#[expect(
    clippy::expect_used,
    reason = "a compiled-in fixture, parsed by this crate's tests"
)]
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| Spec {
        // The fixture is checked in and parsed by this crate's own tests: a failure here is a
        // broken checkout, not input.
        doc: serde_json::from_str(SPEC_TEXT).expect("fixtures/openapi-subset.refs.json is JSON"),
    })
}

/// Operations the subset description lacks, with request schemas written from GitHub's REST
/// reference: `(operationId, method, path template, request body schema)`.
pub const SUPPLEMENTARY_OPERATIONS: &[(&str, &str, &str)] = &[
    (
        "pulls/update",
        "PATCH",
        "/repos/{owner}/{repo}/pulls/{pull_number}",
    ),
    (
        "issues/update-comment",
        "PATCH",
        "/repos/{owner}/{repo}/issues/comments/{comment_id}",
    ),
    (
        "git/delete-ref",
        "DELETE",
        "/repos/{owner}/{repo}/git/refs/{ref}",
    ),
    (
        "git/create-commit",
        "POST",
        "/repos/{owner}/{repo}/git/commits",
    ),
    (
        "git/get-commit",
        "GET",
        "/repos/{owner}/{repo}/git/commits/{commit_sha}",
    ),
    (
        "apps/get-repo-installation",
        "GET",
        "/repos/{owner}/{repo}/installation",
    ),
    (
        "apps/create-installation-access-token",
        "POST",
        "/app/installations/{installation_id}/access_tokens",
    ),
];

fn supplementary_body_schema(operation_id: &str) -> Option<Value> {
    match operation_id {
        "pulls/update" => Some(json!({
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "body": {"type": "string"},
                "state": {"type": "string", "enum": ["open", "closed"]},
                "base": {"type": "string"},
                "maintainer_can_modify": {"type": "boolean"}
            }
        })),
        // GitHub's own request schema for `git/create-commit` (octokit/openapi at 58592853),
        // descriptions left out.
        "git/create-commit" => {
            let person = |required: Value| {
                json!({
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "email": {"type": "string"},
                        "date": {"type": "string", "format": "date-time"}
                    },
                    "required": required
                })
            };
            let mut committer = person(json!([]));
            if let Some(o) = committer.as_object_mut() {
                o.remove("required");
            }
            Some(json!({
                "type": "object",
                "properties": {
                    "message": {"type": "string"},
                    "tree": {"type": "string"},
                    "parents": {"type": "array", "items": {"type": "string"}},
                    "author": person(json!(["name", "email"])),
                    "committer": committer,
                    "signature": {"type": "string"}
                },
                "required": ["message", "tree"]
            }))
        }
        "issues/update-comment" => Some(json!({
            "type": "object",
            "properties": {"body": {"type": "string"}},
            "required": ["body"]
        })),
        "apps/create-installation-access-token" => Some(json!({
            "type": "object",
            "properties": {
                "repositories": {"type": "array", "items": {"type": "string"}, "nullable": true},
                "repository_ids": {"type": "array", "items": {"type": "integer"}, "nullable": true},
                "permissions": {"type": "object", "nullable": true}
            }
        })),
        _ => None,
    }
}

/// One documented query parameter of an operation.
#[derive(Clone, Debug)]
pub struct QueryParam {
    pub name: String,
    pub schema: Value,
}

pub struct Spec {
    doc: Value,
}

impl Spec {
    /// The operation id and path template that `method path` matches, e.g.
    /// `GET /repos/o/r/issues/7` → `("issues/get", "/repos/{owner}/{repo}/issues/{issue_number}")`.
    /// Path templates whose last parameter is `{ref}` match any number of trailing segments.
    pub fn find_operation(&self, method: &str, path: &str) -> Option<(String, String)> {
        let method_lower = method.to_ascii_lowercase();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut best: Option<(usize, String, String)> = None;
        let mut consider = |id: String, template: &str| {
            if let Some(literal_count) = template_matches(template, &segments)
                && best.as_ref().is_none_or(|(n, _, _)| literal_count > *n)
            {
                best = Some((literal_count, id, template.to_owned()));
            }
        };
        if let Some(paths) = self.doc.get("paths").and_then(Value::as_object) {
            for (template, item) in paths {
                if let Some(id) = item
                    .get(&method_lower)
                    .and_then(|op| op.get("operationId"))
                    .and_then(Value::as_str)
                {
                    consider(id.to_owned(), template);
                }
            }
        }
        for (id, m, template) in SUPPLEMENTARY_OPERATIONS {
            if m.eq_ignore_ascii_case(method) {
                consider((*id).to_owned(), template);
            }
        }
        best.map(|(_, id, template)| (id, template))
    }

    fn operation(&self, method: &str, template: &str) -> Option<&Value> {
        self.doc
            .get("paths")?
            .get(template)?
            .get(method.to_ascii_lowercase())
    }

    /// The documented query parameters of an operation (empty for supplementary ones).
    pub fn query_params(&self, method: &str, template: &str) -> Vec<QueryParam> {
        let Some(params) = self
            .operation(method, template)
            .and_then(|op| op.get("parameters"))
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        params
            .iter()
            .filter_map(|p| {
                let p = self.resolve(p)?;
                (p.get("in")?.as_str()? == "query").then(|| QueryParam {
                    name: p
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    schema: p.get("schema").cloned().unwrap_or(Value::Null),
                })
            })
            .collect()
    }

    /// The request body schema of an operation, if it takes a body.
    pub fn request_schema(
        &self,
        operation_id: &str,
        method: &str,
        template: &str,
    ) -> Option<Value> {
        if let Some(s) = supplementary_body_schema(operation_id) {
            return Some(s);
        }
        self.operation(method, template)?
            .get("requestBody")?
            .get("content")?
            .get("application/json")?
            .get("schema")
            .cloned()
    }

    /// The schema of a response, following `$ref`s to `components/responses`.
    pub fn response_schema(&self, method: &str, template: &str, status: u16) -> Option<Value> {
        let response = self
            .operation(method, template)?
            .get("responses")?
            .get(status.to_string())?;
        self.resolve(response)?
            .get("content")?
            .get("application/json")?
            .get("schema")
            .cloned()
    }

    /// Follows an internal `$ref` (`#/components/...`), once or repeatedly.
    fn resolve<'a>(&'a self, mut value: &'a Value) -> Option<&'a Value> {
        for _ in 0..16 {
            match value.get("$ref").and_then(Value::as_str) {
                Some(pointer) => value = self.doc.pointer(pointer.strip_prefix('#')?)?,
                None => return Some(value),
            }
        }
        None
    }

    /// Checks `value` against `schema`; returns every violation as `path: problem`.
    /// `strict` rejects properties a schema does not name (GitHub ignores them silently, which
    /// would hide a misspelt field in a request issueloop sends).
    pub fn validate(&self, schema: &Value, value: &Value, strict: bool) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, "$", strict, &mut errors);
        errors
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, strict: bool, out: &mut Vec<String>) {
        let Some(schema) = self.resolve(schema) else {
            out.push(format!("{at}: unresolvable $ref"));
            return;
        };
        if value.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.check(s, value, at, false, out);
            }
        }
        for (keyword, exactly_one) in [("anyOf", false), ("oneOf", true)] {
            let Some(alternatives) = schema.get(keyword).and_then(Value::as_array) else {
                continue;
            };
            let results: Vec<Vec<String>> = alternatives
                .iter()
                .map(|s| self.validate_at(s, value, at, strict))
                .collect();
            let passing = results.iter().filter(|r| r.is_empty()).count();
            if passing == 0 {
                let why: Vec<String> = results
                    .iter()
                    .enumerate()
                    .map(|(i, r)| format!("alternative {}: {}", i + 1, r.join(", ")))
                    .collect();
                out.push(format!(
                    "{at}: matches none of the {keyword} alternatives ({})",
                    why.join("; ")
                ));
            } else if exactly_one && passing > 1 {
                out.push(format!(
                    "{at}: matches {passing} of the oneOf alternatives (exactly one required)"
                ));
            }
        }
        if let Some(ty) = schema.get("type").and_then(Value::as_str) {
            let ok = match ty {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "null" => value.is_null(),
                _ => true,
            };
            if !ok {
                out.push(format!("{at}: expected {ty}, found {}", kind_of(value)));
                return;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            out.push(format!(
                "{at}: {value} is not one of {}",
                Value::from(allowed.clone())
            ));
        }
        if let Some(object) = value.as_object() {
            let properties = schema.get("properties").and_then(Value::as_object);
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for name in required.iter().filter_map(Value::as_str) {
                    if !object.contains_key(name) {
                        out.push(format!("{at}: missing required property `{name}`"));
                    }
                }
            }
            for (name, v) in object {
                let child = format!("{at}.{name}");
                match properties.and_then(|p| p.get(name)) {
                    Some(s) => self.check(s, v, &child, strict, out),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            out.push(format!("{at}: property `{name}` is not allowed"))
                        }
                        Some(s @ Value::Object(_)) => self.check(s, v, &child, strict, out),
                        _ if strict && properties.is_some() => {
                            out.push(format!("{at}: property `{name}` is not in GitHub's schema"))
                        }
                        _ => {}
                    },
                }
            }
        }
        if let Some(items) = value.as_array() {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                out.push(format!(
                    "{at}: {} items, at least {min} required",
                    items.len()
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (items.len() as u64) > max
            {
                out.push(format!(
                    "{at}: {} items, at most {max} allowed",
                    items.len()
                ));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    self.check(item_schema, v, &format!("{at}[{i}]"), strict, out);
                }
            }
        }
    }

    fn validate_at(&self, schema: &Value, value: &Value, at: &str, strict: bool) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, at, strict, &mut errors);
        errors
    }
}

/// Number of literal segments matched, or `None` when the template does not match.
fn template_matches(template: &str, segments: &[&str]) -> Option<usize> {
    let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
    let mut literals = 0;
    for (i, part) in parts.iter().enumerate() {
        let is_param = part.starts_with('{') && part.ends_with('}');
        if *part == "{ref}" && i == parts.len() - 1 {
            // A git ref (`heads/loop/7-x`) spans the remaining segments.
            return (segments.len() > i).then_some(literals);
        }
        let segment = segments.get(i)?;
        if is_param {
            if segment.is_empty() {
                return None;
            }
        } else if part != segment {
            return None;
        } else {
            literals += 1;
        }
    }
    (segments.len() == parts.len()).then_some(literals)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_operations_by_method_and_path() {
        let s = spec();
        let find = |m, p| s.find_operation(m, p).map(|(id, _)| id);
        assert_eq!(
            find("GET", "/repos/o/r/issues"),
            Some("issues/list-for-repo".into())
        );
        assert_eq!(
            find("GET", "/repos/o/r/issues/7"),
            Some("issues/get".into())
        );
        assert_eq!(
            find("GET", "/repos/o/r/git/ref/heads/loop/7-x"),
            Some("git/get-ref".into())
        );
        assert_eq!(
            find("PATCH", "/repos/o/r/issues/comments/5"),
            Some("issues/update-comment".into())
        );
        assert_eq!(
            find("DELETE", "/repos/o/r/git/refs/heads/a/b"),
            Some("git/delete-ref".into())
        );
        assert_eq!(find("PUT", "/repos/o/r/issues"), None);
        assert_eq!(find("GET", "/repos/o/r/unknown"), None);
    }

    #[test]
    fn request_examples_validate_and_mistakes_do_not() {
        let s = spec();
        let (id, t) = s.find_operation("POST", "/repos/o/r/pulls").unwrap();
        let schema = s.request_schema(&id, "POST", &t).unwrap();
        let example: Value =
            serde_json::from_str(include_str!("../fixtures/pulls.create.request.json")).unwrap();
        assert_eq!(s.validate(&schema, &example, true), Vec::<String>::new());
        let errors = s.validate(&schema, &json!({"head": "x", "darft": true}), true);
        assert!(errors.iter().any(|e| e.contains("`base`")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("`darft`")), "{errors:?}");
        let errors = s.validate(
            &schema,
            &json!({"head": "x", "base": "m", "draft": "yes"}),
            true,
        );
        assert_eq!(
            errors,
            vec!["$.draft: expected boolean, found string".to_owned()]
        );

        let (id, t) = s
            .find_operation("POST", "/repos/o/r/issues/1/labels")
            .unwrap();
        let schema = s.request_schema(&id, "POST", &t).unwrap();
        assert!(
            s.validate(&schema, &json!({"labels": ["a"]}), true)
                .is_empty()
        );
        assert!(!s.validate(&schema, &json!({"labels": []}), true).is_empty());
        assert!(
            !s.validate(&schema, &json!({"labels": [1]}), true)
                .is_empty()
        );
    }

    #[test]
    fn response_fixtures_validate_against_their_schemas() {
        let s = spec();
        let cases: &[(&str, &str, u16, &str)] = &[
            (
                "GET",
                "/repos/{owner}/{repo}/issues",
                200,
                include_str!("../fixtures/issues.list-for-repo.200.json"),
            ),
            (
                "GET",
                "/repos/{owner}/{repo}",
                200,
                include_str!("../fixtures/repos.get.200.json"),
            ),
            (
                "POST",
                "/repos/{owner}/{repo}/pulls",
                201,
                include_str!("../fixtures/pulls.create.201.json"),
            ),
            (
                "GET",
                "/repos/{owner}/{repo}/issues/{issue_number}/timeline",
                200,
                include_str!("../fixtures/issues.list-events-for-timeline.200.json"),
            ),
        ];
        for (m, t, status, text) in cases {
            let schema = s.response_schema(m, t, *status).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                s.validate(&schema, &value, false),
                Vec::<String>::new(),
                "{m} {t}"
            );
        }
    }

    #[test]
    fn query_parameters_come_from_the_description() {
        let s = spec();
        let names: Vec<String> = s
            .query_params("GET", "/repos/{owner}/{repo}/issues")
            .into_iter()
            .map(|p| p.name)
            .collect();
        for expected in [
            "state",
            "labels",
            "sort",
            "direction",
            "since",
            "per_page",
            "page",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
    }
}
