//! The HTTP API routes `infra/template.yaml` gives a function, read from
//! its `Events`, so a test can hold every request a function
//! answered to a route API Gateway would bring it: a path the function
//! serves but the template does not route is a 404 once deployed.

/// One route: its method (`ANY` for all) and path pattern (`{name}` one
/// segment, `{name+}` the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
}

impl Route {
    /// Whether API Gateway would bring `method path` (no query) to this route.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if self.method != "ANY" && !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let mut asked = path.trim_start_matches('/').split('/');
        for part in self.path.trim_start_matches('/').split('/') {
            if part.starts_with('{') && part.ends_with("+}") {
                // A greedy variable needs at least one non-empty segment.
                return asked.next().is_some_and(|s| !s.is_empty());
            }
            match asked.next() {
                Some(segment) if part.starts_with('{') => {
                    if segment.is_empty() {
                        return false;
                    }
                }
                Some(segment) if segment == part => {}
                _ => return false,
            }
        }
        asked.next().is_none()
    }
}

/// The `HttpApi` events of `resource` in `template`. Panics on an `HttpApi`
/// event whose path or method the reader cannot find.
pub fn http_routes(template: &str, resource: &str) -> Vec<Route> {
    let header = format!("  {resource}:");
    let start = template
        .lines()
        .position(|l| l == header)
        .unwrap_or_else(|| panic!("{resource} is not a resource of the template"));
    let block: Vec<&str> = template
        .lines()
        .skip(start + 1)
        .take_while(|l| l.is_empty() || l.starts_with("   "))
        .collect();
    let mut routes = Vec::new();
    for (i, line) in block.iter().enumerate() {
        if line.trim() != "Type: HttpApi" {
            continue;
        }
        let properties = block.get(i + 1).map(|l| l.trim()).unwrap_or_default();
        // `Properties: {ApiId: ..., Path: ..., Method: ...}`, or a block of
        // one `Key: value` a line below `Properties:`.
        let fields: Vec<String> = match properties.strip_prefix("Properties: {") {
            Some(inner) => inner.trim_end_matches('}').split(", ").map(str::to_string).collect(),
            None if properties == "Properties:" => {
                let indent = |l: &str| l.len() - l.trim_start().len();
                let own = indent(block[i + 1]);
                block[i + 2..]
                    .iter()
                    .take_while(|l| indent(l) > own)
                    .map(|l| l.trim().to_string())
                    .collect()
            }
            None => Vec::new(),
        };
        let field = |name: &str| {
            fields
                .iter()
                .find_map(|kv| kv.strip_prefix(&format!("{name}: ")))
                .map(|v| v.trim_matches('"').to_string())
        };
        match (field("Method"), field("Path")) {
            (Some(method), Some(path)) => routes.push(Route {
                method: method.to_uppercase(),
                path,
            }),
            _ => panic!("{resource}: an HttpApi event without a Path and a Method the reader finds: {properties:?}"),
        }
    }
    routes
}

/// Panics unless the template routes `method path` to `resource`.
pub fn assert_routed(resource: &str, method: &str, path: &str) {
    let routes = http_routes(&crate::iam::template(), resource);
    assert!(
        routes.iter().any(|r| r.matches(method, path)),
        "{resource} answers {method} {path}, but the template routes no such request to it (API Gateway would answer 404): {routes:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_matches_as_api_gateway_does() {
        let route = |method: &str, path: &str| Route {
            method: method.into(),
            path: path.into(),
        };
        assert!(route("GET", "/").matches("GET", "/"));
        assert!(!route("GET", "/").matches("POST", "/"));
        assert!(!route("GET", "/").matches("GET", "/tasks"));
        assert!(route("ANY", "/sign-in").matches("POST", "/sign-in"));
        assert!(route("GET", "/static/{file}").matches("GET", "/static/console.css"));
        assert!(!route("GET", "/static/{file}").matches("GET", "/static/a/b.css"));
        assert!(route("POST", "/tasks/{proxy+}").matches("POST", "/tasks/t%3A1/done"));
        assert!(!route("POST", "/tasks/{proxy+}").matches("GET", "/tasks/t%3A1"));
        assert!(!route("POST", "/tasks/{proxy+}").matches("POST", "/tasks"));
    }

    #[test]
    fn the_template_routes_are_read_from_each_functions_events() {
        let routes = http_routes(&crate::iam::template(), "ConsoleFunction");
        assert!(routes.len() >= 8, "{routes:?}");
        assert!(routes.contains(&Route {
            method: "GET".into(),
            path: "/".into()
        }));
        assert!(http_routes(&crate::iam::template(), "IngestFunction")
            .iter()
            .any(|r| r.path == "/v1/batch" && r.method == "POST"));
    }
}
