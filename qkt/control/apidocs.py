"""`GET /docs`: the control plane's API as one self-contained HTML page (works offline).

FastAPI's own /docs loads Swagger UI from a CDN, which a box without internet (or a careful
operator) cannot use; this page is rendered here, from the same OpenAPI schema as
`/openapi.json`, with no script and no outside link.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
.m{display:inline-block;min-width:4.2rem;font-weight:bold;font-family:monospace}
code,pre{font-family:ui-monospace,monospace;background:#f5f5f5;padding:.1rem .3rem}
pre{padding:.6rem;overflow-x:auto;font-size:13px}
table{border-collapse:collapse;margin:.4rem 0}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
"""


def render_page(schema: dict[str, Any]) -> str:
    """The HTML page of an OpenAPI `schema`: every route, its parameters, body and answers."""
    info = schema.get("info", {})
    title = escape(str(info.get("title", "API")))
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{title} <small>{escape(str(info.get('version', '')))}</small></h1>",
        f"<p>{escape(str(info.get('summary') or info.get('description') or ''))}</p>",
        "<p>Every route but <code>/health</code>, <code>/metrics</code> and this page needs "
        "<code>Authorization: Bearer &lt;token&gt;</code> (the state dir's "
        '<code>control.token</code>). Errors are <code>{"error": {"code", "message"}}'
        "</code>. The machine-readable schema is <code>/openapi.json</code>.</p>",
    ]
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            parts.append(_operation(method, path, operation))
    components = schema.get("components", {}).get("schemas", {})
    if components:
        parts.append("<h2>Schemas</h2>")
        for name, body in components.items():
            parts.append(f"<h3 id='{escape(name)}'>{escape(name)}</h3>")
            parts.append(f"<pre>{escape(json.dumps(body, indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _operation(method: str, path: str, operation: dict[str, Any]) -> str:
    out = [
        f"<h2><span class='m'>{escape(method.upper())}</span> <code>{escape(path)}</code></h2>",
        f"<p>{escape(str(operation.get('description') or operation.get('summary') or ''))}</p>",
    ]
    parameters = operation.get("parameters", [])
    if parameters:
        out.append("<table><tr><th>parameter</th><th>in</th><th>schema</th></tr>")
        for p in parameters:
            text = escape(json.dumps(p.get("schema", {})))
            out.append(
                f"<tr><td><code>{escape(str(p.get('name')))}</code></td>"
                f"<td>{escape(str(p.get('in')))}</td><td><code>{text}</code></td></tr>"
            )
        out.append("</table>")
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        out.append(f"<p>Body: <code>{escape(_ref(body.get('schema', {})))}</code></p>")
    out.append("<table><tr><th>status</th><th>answer</th></tr>")
    for status, answer in operation.get("responses", {}).items():
        kinds = [
            f"{kind}: {_ref(content.get('schema', {}))}"
            for kind, content in answer.get("content", {}).items()
        ]
        described = escape(str(answer.get("description", "")))
        out.append(
            f"<tr><td>{escape(str(status))}</td><td>{described}"
            f"<br><code>{escape('; '.join(kinds))}</code></td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def _ref(schema: dict[str, Any]) -> str:
    """A schema as a short name: its $ref's last part, an array of one, or its JSON."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"array of {_ref(schema.get('items', {}))}"
    return json.dumps(schema)
