"""docs/openapi.yaml as a contract the tests check: every answer the HTTP
helpers receive from /api/v1 is looked up by method + path template +
status code in the spec and its JSON body validated against the response
schema. An answer the spec does not describe (unknown path, method or
status, or a body where none is documented) is a violation too.

Loaded and compiled once per process (lazily, on the first check). Uses
Debian's python3-yaml and python3-jsonschema; no pytest dependency.

check(method, url, status, headers, body) returns None when the answer
matches, else a one-paragraph message (method, path, status, what is
wrong). record() keeps every violation in VIOLATIONS so that the pytest
fixtures can fail the test even when the helper ran on a thread whose
exception nobody looked at."""

import atexit
import json
import os
import re
import threading
import urllib.parse
from pathlib import Path

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
API_PREFIX = "/api/v1"

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_lock = threading.Lock()
_compiled = None
VIOLATIONS = []
# (METHOD, template, status) -> answers checked; written as JSON lines to
# $MS_OPENAPI_STATS at exit when that is set (what the suite covers).
COUNTS = {}


def _dump_counts():
    out = os.environ.get("MS_OPENAPI_STATS")
    if out and COUNTS:
        with open(out, "a") as f:
            for (m, t, st), n in sorted(COUNTS.items()):
                f.write(json.dumps({"method": m, "path": t, "status": st, "n": n}) + "\n")


atexit.register(_dump_counts)


class SpecError(Exception):
    """The spec itself is unusable (bad $ref, unparsable YAML)."""


def _to_json_schema(node):
    """OpenAPI 3.0 schema object -> JSON Schema draft 4 (the same
    vocabulary except `nullable`, which becomes a "null" type, and the
    annotation-only keys, which jsonschema ignores anyway)."""
    if isinstance(node, list):
        return [_to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in ("properties", "patternProperties", "definitions"):
            out[k] = {pk: _to_json_schema(pv) for pk, pv in v.items()}
        elif k in ("example", "examples", "xml", "externalDocs", "discriminator", "readOnly",
                   "writeOnly", "deprecated"):
            continue
        else:
            out[k] = _to_json_schema(v)
    if out.pop("nullable", False):
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = list(out["enum"]) + [None]
        if "type" not in out and ("allOf" in out or "$ref" in out or "oneOf" in out):
            out = {"anyOf": [{"type": "null"}, out]}
    return out


def _resolve(doc, ref):
    if not ref.startswith("#/"):
        raise SpecError("only local $ref are supported: %s" % ref)
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise SpecError("unresolvable $ref %s" % ref)
        node = node[part]
    return node


def _deref(doc, node, seen=()):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            raise SpecError("$ref loop at %s" % ref)
        seen = seen + (ref,)
        node = _resolve(doc, ref)
    return node


def _check_refs(doc, node, where="#"):
    """Every $ref of the document resolves (fails the load otherwise)."""
    if isinstance(node, dict):
        if "$ref" in node and isinstance(node["$ref"], str):
            _resolve(doc, node["$ref"])
        for k, v in node.items():
            _check_refs(doc, v, where + "/" + str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_refs(doc, v, "%s/%d" % (where, i))


class _Compiled:
    def __init__(self, path):
        import jsonschema
        import yaml

        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise SpecError("cannot load %s: %s" % (path, e))
        if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3."):
            raise SpecError("%s is not an OpenAPI 3 document" % path)
        _check_refs(doc, doc)
        self.doc = doc
        # The schemas as JSON Schema, in a root document the validators'
        # resolver reads "#/components/schemas/X" from.
        root = {"components": {"schemas": {k: _to_json_schema(v) for k, v in
                                           (doc.get("components", {}).get("schemas") or {}).items()}}}
        self.root = root
        self.resolver = jsonschema.RefResolver.from_schema(root)
        self.validator_cls = jsonschema.Draft4Validator
        self.best_match = jsonschema.exceptions.best_match  # the most relevant error, or None
        self.ops = []  # (regex, template, path item) for the /api/v1 paths
        for tmpl, item in (doc.get("paths") or {}).items():
            if item.get("servers"):
                continue  # playback URLs at the root of the HTTP port
            rx = "^" + re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(tmpl)) + "$"
            self.ops.append((re.compile(rx), tmpl, item))
        # Literal paths before templated ones (/streams/x/ranges is not
        # /{a}/{b}/{c}); fewer parameters first.
        self.ops.sort(key=lambda o: (o[1].count("{"), o[1]))
        self._validators = {}

    def validator(self, key, schema):
        v = self._validators.get(key)
        if v is None:
            v = self.validator_cls(_to_json_schema(schema), resolver=self.resolver)
            self._validators[key] = v
        return v

    def check(self, method, path, status, headers, body):
        rel = path[len(API_PREFIX):] or "/"
        for rx, tmpl, item in self.ops:
            if rx.match(rel):
                break
        else:
            return "%s %s -> %d: path not in docs/openapi.yaml" % (method, path, status)
        m = method.lower()
        op = item.get(m)
        if op is None and m == "head":
            op = item.get("get")
        if op is None:
            # A method the path does not have: 405 with an Allow header that
            # lists only documented methods (docs/api.md "Errors").
            documented = {k.upper() for k in item if k in _METHODS}
            if "GET" in documented:
                documented.add("HEAD")
            allow = headers.get("Allow") or headers.get("allow") or ""
            extra = {a.strip() for a in allow.split(",") if a.strip()} - documented
            if status == 405 and allow and not extra:
                resp = _resolve(self.doc, "#/components/responses/MethodNotAllowed")
                return self._check_body(method, path, status, headers, body, "405", tmpl, resp)
            why = ""
            if status == 405:
                why = " (Allow: %s; undocumented: %s)" % (allow, ", ".join(sorted(extra)))
            return "%s %s -> %d: method not documented for %s in docs/openapi.yaml%s" % (
                method, path, status, tmpl, why)
        responses = op.get("responses") or {}
        key = str(status)
        with _lock:
            COUNTS[(method, tmpl, status)] = COUNTS.get((method, tmpl, status), 0) + 1
        resp = responses.get(key)
        if resp is None:
            resp = responses.get(key[0] + "XX") or responses.get("default")
        if resp is None:
            return "%s %s -> %d: status not documented for %s %s (documented: %s); body: %s" % (
                method, path, status, method.upper(), tmpl, ", ".join(sorted(responses)),
                body[:300].decode("utf-8", "replace"))
        resp = _deref(self.doc, resp)
        if m == "head" or status == 204 or status == 304:
            return None
        return self._check_body(method, path, status, headers, body, key, tmpl, resp)

    def _check_body(self, method, path, status, headers, body, key, tmpl, resp):
        m = method.lower()
        content = resp.get("content") or {}
        ctype = (headers.get("Content-Type") or headers.get("content-type") or "").split(";")[0]
        ctype = ctype.strip().lower()
        if not content:
            if body:
                return "%s %s -> %d: body (%s) where %s %s documents none: %s" % (
                    method, path, status, ctype or "no type", method.upper(), tmpl,
                    body[:300].decode("utf-8", "replace"))
            return None
        media = content.get(ctype)
        if media is None:
            return "%s %s -> %d: Content-Type %r not documented for %s %s (documented: %s)" % (
                method, path, status, ctype, method.upper(), tmpl, ", ".join(content))
        schema = media.get("schema")
        if schema is None or not ctype.endswith("json"):
            return None
        try:
            inst = json.loads(body)
        except ValueError as e:
            return "%s %s -> %d: body is not JSON (%s): %r" % (method, path, status, e, body[:200])
        v = self.validator((tmpl, m, key, ctype), schema)
        err = self.best_match(v.iter_errors(inst))
        if err is None:
            return None
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        return ("%s %s -> %d: body does not match docs/openapi.yaml (%s %s %s) at %s: %s\n"
                "  schema path: %s\n  body: %s" % (
                    method, path, status, method.upper(), tmpl, key, where, err.message[:500],
                    "/".join(str(p) for p in err.absolute_schema_path),
                    body[:1500].decode("utf-8", "replace")))


def spec():
    """The compiled spec (loaded on first use; raises SpecError)."""
    global _compiled
    with _lock:
        if _compiled is None:
            _compiled = _Compiled(SPEC_PATH)
        return _compiled


def check(method, url, status, headers, body):
    """None when the answer to METHOD url is what docs/openapi.yaml says,
    else the violation. Only /api/v1 URLs are checked."""
    path = urllib.parse.urlsplit(url).path
    if path != API_PREFIX and not path.startswith(API_PREFIX + "/"):
        return None
    return spec().check(method.upper(), path, status, headers or {}, body or b"")


def record(msg):
    with _lock:
        VIOLATIONS.append(msg)


def take():
    """The violations recorded since the last take()."""
    with _lock:
        out = list(VIOLATIONS)
        del VIOLATIONS[:]
    return out
