#!/usr/bin/env python3
"""The daemon against its OpenAPI document, operation by operation.

Requests are generated from the document the daemon serves: for every
operation, its parameters with valid values and with values their schemas
exclude (wrong type, out of range, not in the enum), unknown ids, and for
submit the document's own examples in each declared content type plus
bodies that break the Task schema one property at a time. Every reply is
then held against the document by the contract check of ocps.py (Ajv, in
Tap.done): status declared, content type declared, body matching. Here
the test asserts only what the schema implies about the status: what the
schema allows is not refused as bad input, what it excludes is a 4xx."""

import json
import urllib.parse

import ocps


USER = "ocpstest"


def schema_of(doc, s):
    while "$ref" in s:
        node = doc
        for k in s["$ref"].lstrip("#/").split("/"):
            node = node[k.replace("~1", "/").replace("~0", "~")]
        s = {**node, **{k: v for k, v in s.items() if k != "$ref"}}
    return s


def bad_values(s):
    """Values a parameter's schema excludes."""
    out = []
    t = s.get("type")
    if t == "integer":
        out += ["abc", "1.5"]
        if "minimum" in s:
            out.append(str(s["minimum"] - 1))
        if "maximum" in s:
            out.append(str(s["maximum"] + 1))
    if "enum" in s:
        out.append("NOT_IN_ENUM")
    if s.get("minLength", 0) >= 1:
        out.append("")
    return out


def good_value(s):
    if "enum" in s:
        return str(s["enum"][0])
    if s.get("type") == "integer":
        return str(s.get("default", s.get("minimum", 1)))
    return None


def wrong_type(prop):
    """A JSON value of a type the property does not allow."""
    types = prop.get("type")
    types = types if isinstance(types, list) else [types] if types else []
    if "oneOf" in prop or "anyOf" in prop:
        return [[1, 2]] if "array" not in json.dumps(prop) else [{"x": {}}]
    if "object" in types:
        return ["not an object"]
    if "array" in types:
        return [{"not": "an array"}]
    if "string" in types:
        return [[1], {"a": 1}]
    if "integer" in types or "number" in types:
        return ["not a number", [1]]
    return [[[]]]


def to_xml(task):
    def el(k, v):
        if isinstance(v, dict):
            inner = "".join('<entry key="%s">%s</entry>' % (a, b) for a, b in v.items())
            return "<%s>%s</%s>" % (k, inner, k)
        return "<%s>%s</%s>" % (k, v, k)
    return "<task>" + "".join(el(k, v) for k, v in task.items()) + "</task>"


def t_contract(tap):
    ocps.require_root()
    ocps.ensure_user(USER)
    d = ocps.Daemon(config="docker: {socket: /nonexistent/docker.sock}\n")
    with ocps.serving(tap, d, "contract tests"):
        doc = d.request("GET", "/v1/openapi.json").json()
        base = urllib.parse.urlparse(doc["servers"][0]["url"]).path.rstrip("/")
        tid = d.submit_id({"user": USER, "cmd": "echo contract"})
        d.wait(tid)
        unknown = "00000000-0000-4000-8000-000000000000"

        for template, item in doc["paths"].items():
            # A path with servers of its own (the operator's, at the root) is under their base.
            own = urllib.parse.urlparse(item["servers"][0]["url"]).path.rstrip("/") \
                if "servers" in item else base
            for method, op in item.items():
                if method == "servers":
                    continue
                name = op.get("operationId", method + " " + template)
                params = [schema_of(doc, p) for p in op.get("parameters", [])]
                path_ids = [p for p in params if p["in"] == "path"]
                query = [p for p in params if p["in"] == "query"]

                def url(id_value, qs="", own=own):
                    p = own + template
                    for p_ in path_ids:
                        p = p.replace("{%s}" % p_["name"], id_value)
                    return p + (("?" + qs) if qs else "")

                if method == "post" and "requestBody" in op:
                    continue  # submit: below
                if method == "delete":
                    r = d.request("DELETE", url(unknown))
                    tap.eq(r.status, 404, "%s of an unknown id is 404" % name)
                    continue
                r = d.request(method.upper(), url(tid))
                if name == "readyz":
                    # This daemon's dockerd is a socket that does not exist.
                    tap.ok(r.status == 503 and "backend docker" in r.text,
                           "readyz names the docker backend it cannot reach", r)
                    continue
                tap.ok(r.status == 200, "%s with valid parameters is 200" % name, r)
                if path_ids:
                    r = d.request(method.upper(), url(unknown))
                    tap.eq(r.status, 404, "%s of an unknown id is 404" % name)
                for q in query:
                    s = schema_of(doc, q["schema"])
                    good = good_value(s)
                    if good is not None and q["name"] != "follow":
                        r = d.request("GET", url(tid, "%s=%s" % (q["name"], urllib.parse.quote(good))))
                        tap.ok(r.status == 200, "%s: %s=%s is accepted" % (name, q["name"], good), r)
                    for bad in bad_values(s):
                        r = d.request("GET", url(tid, "%s=%s" % (q["name"], urllib.parse.quote(bad))))
                        tap.ok(400 <= r.status < 500 and q["name"] in r.text,
                               "%s: %s=%r is a 4xx naming the parameter" % (name, q["name"], bad), r)

        # Submit: the document's examples, in every content type it declares.
        submit = doc["paths"]["/jobproxy/submit"]["post"]
        for ctype, media in submit["requestBody"]["content"].items():
            ex = media.get("example")
            if ex is None:
                continue
            ex = dict(ex, user=USER)
            body = (json.dumps(ex) if ctype == "application/json" else
                    to_xml(ex) if ctype == "application/xml" else
                    "\n".join("%s: %s" % (k, json.dumps(v)) for k, v in ex.items()))
            r = d.submit(body, ctype=ctype)
            tap.ok(r.status == 200, "submit: the document's %s example is accepted" % ctype, r)

        # ... and bodies that break the Task schema one property at a time.
        task = schema_of(doc, doc["components"]["schemas"]["Task"])
        for prop_name, prop in task["properties"].items():
            if prop_name in ("cmd", "container"):
                continue
            for v in wrong_type(schema_of(doc, prop)):
                body = {"user": USER, "cmd": "true", prop_name: v}
                if prop_name == "user":
                    body["user"] = v
                r = d.submit(body)
                tap.ok(r.status == 400 and prop_name in r.text,
                       "submit: %s = %s is 400 naming the field" % (prop_name, json.dumps(v)), r)
        r = d.submit({"cmd": "true"})
        tap.ok(r.status == 400 and "user" in r.text, "submit: without the required user is 400", r)
        r = d.submit({"user": USER, "cmd": "true", "no_such_field": 1})
        tap.ok(r.status == 400 and "no_such_field" in r.text, "submit: an unknown field is 400", r)
        r = d.submit({"user": USER, "cmd": "true"}, ctype="application/x-bogus")
        tap.eq(r.status, 415, "submit: an undeclared content type is 415")
        r = d.submit({"user": USER, "cmd": "true"}, accept="image/png")
        tap.eq(r.status, 406, "submit: an Accept nothing satisfies is 406")
        r = d.request("PUT", base + "/jobproxy/submit", "{}")
        tap.eq(r.status, 405, "submit: a method the path lacks is 405")


if __name__ == "__main__":
    ocps.main(t_contract)
