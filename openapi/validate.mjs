// Validates recorded HTTP exchanges with ocps-proxyd against the OpenAPI
// document: the path and method are an operation, the status is declared
// for it, the reply's content type is declared for that status, and a
// JSON body matches the declared schema (Ajv, JSON Schema 2020-12, which
// OpenAPI 3.1 schemas are). Prints TAP, one line per exchange, and on a
// failure the request, the response and the rule it broke.
//
//   node validate.mjs ocps-proxy.json exchanges.jsonl
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [docPath, exchangesPath] = process.argv.slice(2);
const doc = JSON.parse(readFileSync(docPath, "utf8"));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(doc, "openapi");

// A path's base is its own servers' (the operator's endpoints, /metrics and
// the probes, live at the root), else the document's (/v1).
const serverBase = (servers) => new URL(servers[0].url).pathname.replace(/\/$/, "");
const base = serverBase(doc.servers);
const operations = [];
for (const [template, item] of Object.entries(doc.paths)) {
  const own = item.servers ? serverBase(item.servers) : base;
  const rx = new RegExp("^" + (own + template).replace(/[.]/g, "\\.").replace(/\{[^}]+\}/g, "[^/]+") + "$");
  for (const [method, op] of Object.entries(item)) {
    if (method !== "servers") operations.push({ template, rx, method, op });
  }
}

function pointer(...parts) {
  return "openapi#/" + parts.map((p) => String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("/");
}

function resolve(obj) {
  // Responses may be $refs into components.
  while (obj && obj.$ref) {
    obj = obj.$ref.replace(/^#\//, "").split("/").reduce((o, k) => o[k.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
  }
  return obj;
}

function check(x) {
  const url = new URL(x.path, "http://x");
  const cands = operations.filter((o) => o.rx.test(url.pathname));
  if (!cands.length && !url.pathname.startsWith(base + "/")) return `path ${url.pathname} is outside the server's base ${base}`;
  const path = url.pathname.slice(url.pathname.startsWith(base + "/") ? base.length : 0);
  if (!cands.length) {
    // Not an endpoint: 404 in the one error shape.
    if (x.status !== 404) return `no path in the document matches ${path}, yet the reply was ${x.status}, not 404`;
    const v = ajv.getSchema("openapi#/components/schemas/Error");
    let body;
    try {
      body = JSON.parse(x.body);
    } catch (e) {
      return `the 404 for an unknown path is not JSON`;
    }
    return v(body) ? null : "the 404 body breaks the Error schema: " + ajv.errorsText(v.errors, { dataVar: "body" });
  }
  const o = cands.find((c) => c.method === x.method.toLowerCase());
  if (!o) {
    // A method the path does not have: the daemon must say 405.
    return x.status === 405 ? null : `${x.method} ${path} is not an operation, yet the reply was ${x.status}, not 405`;
  }
  const responses = o.op.responses || {};
  const declared = responses[String(x.status)] ?? responses[`${String(x.status)[0]}XX`] ?? responses.default;
  if (!declared) return `status ${x.status} is not declared for ${o.method.toUpperCase()} ${o.template} (declared: ${Object.keys(responses).join(", ")})`;
  const resp = resolve(declared);
  const content = resp.content || {};
  if (!Object.keys(content).length) {
    return x.body && x.body.length && x.status !== 204 ? `${x.status} declares no body, yet one came` : null;
  }
  const ctype = (x.content_type || "").split(";")[0].trim().toLowerCase();
  if (!ctype) return x.body && x.body.length ? `a body came without a Content-Type` : null;
  if (!content[ctype]) return `content type ${ctype} is not declared for ${x.status} (declared: ${Object.keys(content).join(", ")})`;
  const schema = content[ctype].schema;
  if (!schema || ctype !== "application/json") {
    if (schema && schema.type === "string" && schema.pattern && !new RegExp(schema.pattern).test(x.body)) {
      return `the ${ctype} body does not match the pattern ${schema.pattern}`;
    }
    return null;
  }
  let body;
  try {
    body = JSON.parse(x.body);
  } catch (e) {
    return `the application/json body is not JSON: ${e.message}`;
  }
  const code = String(x.status) in responses ? String(x.status) : responses.default ? "default" : `${String(x.status)[0]}XX`;
  let ref = pointer("paths", o.template, o.method, "responses", code, "content", ctype, "schema");
  if (declared.$ref) ref = "openapi" + declared.$ref + "/content/" + ctype.replace(/\//g, "~1") + "/schema";
  const validate = ajv.getSchema(ref);
  if (!validate) return `cannot compile the schema at ${ref}`;
  if (!validate(body)) return "the body breaks the schema: " + ajv.errorsText(validate.errors, { dataVar: "body" });
  return null;
}

const lines = readFileSync(exchangesPath, "utf8").split("\n").filter(Boolean);
let n = 0, failed = 0;
for (const line of lines) {
  const x = JSON.parse(line);
  n++;
  const why = check(x);
  const what = `${x.method} ${x.path} -> ${x.status} ${x.content_type || ""}`.trim();
  if (why) {
    failed++;
    console.log(`not ok ${n} - ${what} agrees with the document`);
    console.log(`#   rule: ${why}`);
    console.log(`#   request: ${x.method} ${x.path} ${x.request_content_type || ""} ${(x.request_body || "").slice(0, 300)}`);
    console.log(`#   response: ${x.status} ${x.content_type || ""} ${(x.body || "").slice(0, 300)}`);
  } else {
    console.log(`ok ${n} - ${what} agrees with the document`);
  }
}
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
