// A small, self-contained browser for perfgate's own API documents: it renders
// /openapi.json (HTTP operations) and /asyncapi.json (WebSocket messages) with no library and
// no third-party origin. Text goes in with textContent only, never as HTML.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function resolve(doc, node) {
  if (!node || typeof node !== "object") return node;
  if (typeof node.$ref === "string" && node.$ref.startsWith("#/")) {
    return node.$ref.slice(2).split("/").reduce((at, key) => (at ? at[key] : undefined), doc);
  }
  return node;
}

function schemaBlock(label, schema) {
  return el("details", {}, el("summary", {}, label), el("pre", {}, JSON.stringify(schema, null, 2)));
}

function securityText(doc, operation) {
  const security = operation.security || doc.security || [];
  if (!security.length) return "open: no token needed";
  return "token with scope: " + security.map((req) => Object.values(req).flat().join(", ") || Object.keys(req).join(", ")).join(" or ");
}

function renderOperation(doc, path, method, operation) {
  const id = operation.operationId || `${method}-${path}`;
  const section = el("section", { class: "op", id: "op-" + id, "data-operation-id": id },
    el("h3", {}, el("span", { class: "method " + method }, method), " ", el("span", { class: "path" }, path)),
    el("p", {}, operation.summary || ""),
    el("p", { class: "security" }, securityText(doc, operation)));
  const params = operation.parameters || [];
  if (params.length) {
    const rows = params.map((p) => el("tr", {}, el("td", {}, p.name), el("td", {}, p.in),
      el("td", {}, p.required ? "required" : "optional"),
      el("td", {}, JSON.stringify(p.schema || {})), el("td", {}, p.description || "")));
    section.append(el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"),
      el("th", {}, ""), el("th", {}, "schema"), el("th", {}, "")), ...rows));
  }
  const body = operation.requestBody;
  if (body) {
    for (const [type, media] of Object.entries(body.content || {})) {
      section.append(schemaBlock(`request body (${type})`, media.schema));
    }
  }
  const list = el("table", { class: "responses" });
  for (const [status, response] of Object.entries(operation.responses || {})) {
    const media = Object.entries(response.content || {});
    const cell = el("td", {});
    for (const [type, content] of media) cell.append(schemaBlock(type, resolve(doc, content.schema)));
    list.append(el("tr", { "data-status": status }, el("td", {}, status), el("td", {}, response.description || ""), cell));
  }
  section.append(list);
  return section;
}

function renderOpenApi(doc) {
  document.getElementById("title").textContent = `${doc.info.title} ${doc.info.version}`;
  document.getElementById("description").textContent = doc.info.description || "";
  const toc = document.getElementById("toc");
  const target = document.getElementById("operations");
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, operation] of Object.entries(item)) {
      const section = renderOperation(doc, path, method, operation);
      target.append(section);
      toc.append(el("a", { href: "#" + section.id }, `${method.toUpperCase()} ${path}`));
    }
  }
}

function renderAsyncApi(doc) {
  document.getElementById("ws-description").textContent = doc.info.description || "";
  const target = document.getElementById("messages");
  for (const [id, operation] of Object.entries(doc.operations || {})) {
    const names = (operation.messages || []).map((ref) => ref.$ref.split("/").pop());
    const section = el("section", { class: "message", "data-operation-id": id },
      el("h3", {}, `${operation.action === "receive" ? "client → server" : "server → client"}: ${names.join(", ")}`),
      el("p", {}, operation.summary || ""));
    for (const name of names) {
      const message = doc.components.messages[name];
      section.append(schemaBlock(`${name} payload`, resolve(doc, message.payload)));
      for (const example of message.examples || []) section.append(el("pre", {}, JSON.stringify(example.payload)));
    }
    target.append(section);
  }
}

async function load(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

async function main() {
  const status = document.getElementById("status");
  try {
    const [openapi, asyncapi] = await Promise.all([load("/openapi.json"), load("/asyncapi.json")]);
    renderOpenApi(openapi);
    renderAsyncApi(asyncapi);
    status.textContent = "";
    status.dataset.state = "ready";
  } catch (error) {
    status.textContent = String(error);
    status.dataset.state = "error";
  }
}

main();
