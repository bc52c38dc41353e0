"use strict";
// The review workspace: sign-in, queue, findings from the weights, browse, artifact pages
// (lineage drawn with dagre), evidence, decisions signed in this browser, and the printable
// review report. Views live in the URL fragment (#/queue, #/artifact/<ref>, #/finding/<id>,
// #/report/<ref>), so every page can be linked, bookmarked and reached with the keyboard. No
// token is stored by this page: the session is an HttpOnly cookie, and state-changing calls
// echo the CSRF cookie in X-CSRF-Token.

const $ = (id) => document.getElementById(id);
const state = { me: null, lastRoute: null, gen: 0 };

// ---------------------------------------------------------------------------- small helpers
function h(tag, attrs, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") n.className = v;
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}
function svg(tag, attrs, text) {
  const n = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}
function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return null;
}
const refPath = (ref) => "/v1/artifacts/" + ref.split("/").map(encodeURIComponent).join("/");
const artLink = (ref) => "#/artifact/" + encodeURIComponent(ref);
function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}
function age(seconds) {
  if (seconds < 3600) return Math.max(1, Math.round(seconds / 60)) + " min";
  if (seconds < 86400 * 2) return Math.round(seconds / 3600) + " h";
  return Math.round(seconds / 86400) + " d";
}
function say(text, kind) {
  const m = $("msg");
  m.textContent = text || "";
  m.className = text ? (kind || "error") : "";
}
function busy(node) { node.replaceChildren(h("p", { class: "muted" }, "Loading…")); }

class ApiError extends Error {
  constructor(status, body) {
    super((body.detail || "HTTP " + status) + (body.field ? " (" + body.field + ")" : ""));
    this.status = status; this.body = body;
  }
}
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = cookie("studbook_csrf") || "";
    if (body !== undefined) headers["Content-Type"] = "application/json";
  }
  const r = await fetch(path, { method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await r.json().catch(() => ({}));
  if (r.status === 401 && path !== "/v1/session") { state.me = null; location.hash = "#/signin"; }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

// ---------------------------------------------------------------------------- sign-in
async function whoami() {
  try { state.me = await api("GET", "/v1/session"); } catch (e) { state.me = null; }
  renderWho();
  return state.me;
}
function renderWho() {
  const me = state.me;
  $("who").textContent = me ? `${me.principal} · ${me.role}` + (me.expires_at ? ` · until ${when(me.expires_at)}` : "") : "";
  $("signout").hidden = !me;
  $("nav").hidden = !me;
}
function viewSignin(main) {
  const token = h("input", { id: "token", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "token-help", spellcheck: "false" });
  const form = h("form", { id: "signin-form", class: "card narrow" },
    h("h1", {}, "Sign in"),
    h("label", { for: "token" }, "API token"), token,
    h("p", { id: "token-help", class: "muted" },
      "The token is exchanged for a session cookie and is not kept by this page. Ask an admin for a token (studbook principals create)."),
    h("button", { type: "submit", id: "signin" }, "Sign in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say("");
    try {
      await api("POST", "/v1/session", { token: token.value.trim() });
      token.value = "";
      await whoami();
      location.hash = "#/queue";
    } catch (e) { say(e.message); }
  });
  main.replaceChildren(form);
  token.focus();
}
$("signout").addEventListener("click", async () => {
  try { await api("DELETE", "/v1/session"); } catch (e) { /* already ended */ }
  state.me = null; renderWho(); location.hash = "#/signin";
});

// ---------------------------------------------------------------------------- queue
async function viewQueue(main, params) {
  busy(main);
  const q = new URLSearchParams();
  for (const k of ["trait", "q", "sort"]) if (params.get(k)) q.set(k, params.get(k));
  const fq = new URLSearchParams({ status: "open", limit: "100" });
  if (params.get("fkind")) fq.set("kind", params.get("fkind"));
  const [data, found] = await Promise.all([api("GET", "/v1/review/queue?" + q), api("GET", "/v1/findings?" + fq)]);
  const setParam = (k, v) => {
    const p = new URLSearchParams(params); if (v) p.set(k, v); else p.delete(k);
    location.hash = "#/queue?" + p;
  };
  const traitSel = h("select", { id: "queue-trait", "aria-label": "Trait" },
    h("option", { value: "" }, "all traits"),
    Object.entries(data.counts_by_trait).map(([t, n]) => h("option", { value: t, selected: params.get("trait") === t }, `${t} (${n})`)));
  traitSel.addEventListener("change", () => setParam("trait", traitSel.value));
  const sortSel = h("select", { id: "queue-sort", "aria-label": "Sort" },
    ["newest", "oldest", "severity", "name"].map((s) => h("option", { value: s, selected: (params.get("sort") || "newest") === s }, "sort: " + s)));
  sortSel.addEventListener("change", () => setParam("sort", sortSel.value));
  const search = h("input", { id: "queue-q", type: "search", placeholder: "filter by name or path", value: params.get("q") || "", "aria-label": "Filter" });
  search.addEventListener("keydown", (e) => { if (e.key === "Enter") setParam("q", search.value.trim()); });
  const seenBtn = h("button", { type: "button", id: "mark-seen" }, "Mark all seen");
  seenBtn.addEventListener("click", async () => { await api("POST", "/v1/review/seen"); route(); });

  const counts = h("ul", { class: "chips", "aria-label": "At-risk models per trait" },
    Object.entries(data.counts_by_trait).map(([t, n]) => h("li", {}, h("a", { href: "#/queue?trait=" + encodeURIComponent(t) }, `${t}: ${n}`))));
  const since = h("section", { class: "card", id: "since" },
    h("h2", {}, "Since your last look"),
    data.last_seen
      ? h("p", {}, `Last marked seen ${when(data.last_seen)}: ${data.new_since_last_seen} new at-risk mark(s), ${data.changes.length} decision(s) by reviewers.`)
      : h("p", {}, "You have not marked the queue seen yet: everything is new."),
    data.changes.length ? h("ul", { class: "changes" }, data.changes.slice(0, 10).map((c) =>
      h("li", {}, `${when(c.at)} · ${c.principal} · ${c.decision} · `, h("a", { href: artLink(c.artifact_ref) }, c.artifact_ref), ` (${c.trait})`))) : null,
    seenBtn);

  const rows = data.data.map((it) => h("tr", { class: it.new ? "new" : "", "data-model": it.mark.model_ref },
    h("td", {}, h("a", { href: artLink(it.mark.model_ref) }, it.mark.model_ref), it.new ? h("span", { class: "badge new" }, "new") : null),
    h("td", {}, it.mark.trait),
    h("td", {}, h("span", { class: "sev sev-" + (it.severity || "unknown") }, it.severity || "?")),
    h("td", { title: when(it.mark.since) }, age(it.age_s)),
    h("td", { class: "path" }, it.path_line),
    h("td", {}, it.owner || "")));
  const table = data.data.length
    ? h("table", { id: "queue", class: "grid" },
      h("caption", {}, `${data.count} at-risk model(s) awaiting a decision` + (data.accepted ? `; ${data.accepted} accepted risk(s) not shown` : "")),
      h("thead", {}, h("tr", {}, ["Model", "Trait", "Severity", "Age", "Why (path to the flag)", "Owner"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows))
    : h("p", { id: "queue-empty", class: "card" }, "Nothing awaits a decision" + (params.get("trait") ? " for this trait." : "."));
  main.replaceChildren(h("h1", {}, "Review queue"),
    h("div", { class: "toolbar" }, traitSel, sortSel, search), counts, since, table,
    findingsSection(found, params, setParam));
  if (data.truncated) main.append(h("p", { class: "muted" }, "The queue is longer than one answer; filter by trait."));
}

// ---------------------------------------------------------------------------- findings
const FINDING_KINDS = {
  declared_parent_contradicted: "declared parent contradicted",
  undeclared_shared_base: "undeclared shared base",
};
const findingLink = (id) => "#/finding/" + encodeURIComponent(id);
function pValue(f) {
  const floor = 1 / (f.permutations + 1);
  return f.p_value <= floor * 1.0001 ? `${f.p_value.toPrecision(2)} (the floor of ${f.permutations} permutations)` : f.p_value.toPrecision(2);
}
// One line that says what the weights contradict, in words.
function findingClaim(f) {
  return f.kind === "undeclared_shared_base"
    ? [h("a", { href: artLink(f.model_ref) }, f.model_ref), " shares an initialisation with ", h("a", { href: artLink(f.other_ref) }, f.other_ref), ", which it does not declare as a weights ancestor"]
    : [h("a", { href: artLink(f.model_ref) }, f.model_ref), ` declares ${f.relation || "a weights parent"} `, h("a", { href: artLink(f.other_ref) }, f.other_ref), ", but the weights show no shared initialisation"];
}

function findingsSection(found, params, setParam) {
  const kindSel = h("select", { id: "findings-kind", "aria-label": "Kind of finding" },
    h("option", { value: "" }, "all kinds"),
    Object.entries(FINDING_KINDS).map(([k, label]) => h("option", { value: k, selected: params.get("fkind") === k }, `${label} (${found.counts_by_kind[k] || 0})`)));
  kindSel.addEventListener("change", () => setParam("fkind", kindSel.value));
  const open = Object.values(found.counts_by_kind).reduce((a, n) => a + n, 0);
  const box = h("section", { class: "card", id: "findings" },
    h("div", { class: "graph-title" }, h("h2", {}, `Findings from the weights (${open} open)`), kindSel),
    h("p", { class: "muted" }, "Signed by the registry when a model's weights contradict its declared lineage. Confirming an undeclared shared base adds the initialized_from edge the risk rule reads; dismissing needs a reason."));
  if (!found.data.length) {
    box.append(h("p", { id: "findings-empty" }, "No open finding" + (params.get("fkind") ? " of this kind." : ".")));
    return box;
  }
  box.append(h("table", { id: "findings-table", class: "grid" },
    h("caption", {}, `${found.count} open finding(s)` + (found.count > found.data.length ? `, newest ${found.data.length} shown` : "")),
    h("thead", {}, h("tr", {}, ["Finding", "Kind", "Model", "Against", "r", "p", "Raised", "Signed by"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, found.data.map((f) => h("tr", { "data-finding": String(f.id), "data-kind": f.kind, "data-model": f.model_ref },
      h("td", {}, h("a", { href: findingLink(f.id) }, "#" + f.id)),
      h("td", {}, h("span", { class: "status st-" + (f.kind === "undeclared_shared_base" ? "at_risk" : "flagged") }, FINDING_KINDS[f.kind])),
      h("td", {}, h("a", { href: artLink(f.model_ref) }, f.model_ref)),
      h("td", {}, h("a", { href: artLink(f.other_ref) }, f.other_ref), f.relation ? h("div", { class: "muted" }, "declared " + f.relation) : null),
      h("td", { class: "num" }, f.statistic.toFixed(3)),
      h("td", { class: "num" }, f.p_value.toPrecision(2)),
      h("td", { title: when(f.created_at) }, when(f.created_at)),
      h("td", {}, f.signed_by))))));
  return box;
}

// The findings about one model, on its artifact page.
function artifactFindings(found) {
  if (!found.data.length) return null;
  const open = found.data.filter((f) => f.status === "open");
  return h("section", { class: "card" + (open.length ? " attention" : ""), id: "artifact-findings" },
    h("h2", {}, open.length ? `Findings from the weights: ${open.length} open` : "Findings from the weights"),
    h("ul", {}, found.data.map((f) => h("li", { "data-finding": String(f.id), "data-status": f.status },
      h("a", { href: findingLink(f.id) }, `#${f.id} ${FINDING_KINDS[f.kind]}`), ` (${f.status}): `, ...findingClaim(f),
      ` · r = ${f.statistic.toFixed(3)}, p = ${f.p_value.toPrecision(2)}`))));
}

async function viewFinding(main, id) {
  busy(main);
  if (!/^[1-9][0-9]{0,17}$/.test(id)) throw new Error("a finding is named by its number");
  const f = await api("GET", "/v1/findings/" + id);
  const [att, info, proof] = await Promise.all([
    api("GET", "/v1/attestations/" + f.attestation_id),
    api("GET", "/v1/log/"),
    api("GET", "/v1/log/proof/inclusion?payload_digest=" + encodeURIComponent(f.statement)).catch(() => null)]);
  const sigCheck = h("span", { class: "badge", id: "finding-signature" }, "checking…");
  const inclCheck = h("span", { class: "badge", id: "finding-inclusion" }, "checking…");
  const confirmDoes = f.kind === "undeclared_shared_base"
    ? `adds the edge ${f.model_ref} initialized_from ${f.other_ref}, so the risk rule sees the shared base (flags on models built on that base reach it through their data)`
    : `records that the weights contradict the declared ${f.relation || "parent"} edge (edges are never removed; the owner may amend the lineage)`;
  const facts = h("dl", { class: "facts", id: "finding-facts" },
    h("dt", {}, "Kind"), h("dd", {}, FINDING_KINDS[f.kind]),
    h("dt", {}, "Model"), h("dd", {}, h("a", { href: artLink(f.model_ref) }, f.model_ref), " ", h("span", { class: "mono" }, "sha256:" + f.model)),
    h("dt", {}, f.kind === "undeclared_shared_base" ? "Shares a base with" : "Declared parent"),
    h("dd", {}, h("a", { href: artLink(f.other_ref) }, f.other_ref), f.relation ? ` (${f.relation})` : "", " ", h("span", { class: "mono" }, "sha256:" + f.other)),
    h("dt", {}, "Statistic"), h("dd", { id: "finding-r" }, `r = ${f.statistic.toFixed(4)} (Pearson correlation of the two fingerprints' Gram matrices)`),
    h("dt", {}, "p-value"), h("dd", { id: "finding-p" }, pValue(f) + ", under the null of independent initialisation (inputs relabelled at random)"),
    h("dt", {}, "Permutations"), h("dd", {}, String(f.permutations)),
    h("dt", {}, "Test"), h("dd", {}, f.reason || "—"),
    h("dt", {}, "Fingerprints"), h("dd", {}, f.scheme ? h("div", {}, f.scheme) : null,
      h("div", { class: "mono" }, "model " + (f.model_fingerprint || "—")),
      h("div", { class: "mono" }, "other " + (f.other_fingerprint || "—"))),
    h("dt", {}, "Raised"), h("dd", {}, when(f.created_at)),
    h("dt", {}, "Signed by"), h("dd", {}, `${att.principal} (the registry, with the log's key) `, h("span", { class: "mono", title: att.signer_keyid }, att.signer_keyid.slice(0, 12) + "…"), " ", sigCheck),
    h("dt", {}, "Log"), h("dd", {}, f.log_index === null ? "not logged" : `index ${f.log_index} `, inclCheck));
  const head = h("section", { class: "card", id: "finding" },
    h("h1", {}, `Finding #${f.id}: ${FINDING_KINDS[f.kind]} `, h("span", { class: "status st-" + { open: "at_risk", confirmed: "flagged", dismissed: "no_risk" }[f.status], id: "finding-status" }, f.status)),
    h("p", { id: "finding-claim" }, ...findingClaim(f), "."),
    facts);
  main.replaceChildren(head, findingDecision(f, confirmDoes),
    h("p", { class: "muted" }, "Log verifier key: ", h("span", { class: "mono" }, info.vkey)));
  // Checked here, not taken on trust: the registry's signature and the log's inclusion proof.
  try {
    await SB.verifyLogSigned(att.envelope, info.vkey, f.statement);
    sigCheck.textContent = "✔ signature verified"; sigCheck.className = "badge ok"; sigCheck.dataset.verified = "1";
  } catch (e) { sigCheck.textContent = "✘ " + e.message; sigCheck.className = "badge bad"; sigCheck.dataset.verified = "0"; }
  if (!proof) { inclCheck.textContent = "no inclusion proof"; inclCheck.className = "badge bad"; inclCheck.dataset.verified = "0"; return; }
  try {
    await SB.verifyInclusion(att.envelope, proof, info.vkey);
    inclCheck.textContent = "✔ inclusion verified"; inclCheck.className = "badge ok"; inclCheck.dataset.verified = "1";
  } catch (e) { inclCheck.textContent = "✘ " + e.message; inclCheck.className = "badge bad"; inclCheck.dataset.verified = "0"; }
}

function findingDecision(f, confirmDoes) {
  const me = state.me;
  const box = h("section", { class: "card", id: "decide" }, h("h2", {}, "Decision"));
  if (f.status !== "open") {
    box.append(h("p", { id: "finding-decided" }, h("strong", {}, f.status === "confirmed" ? "Confirmed" : "Dismissed"),
      ` by ${f.decided_by || "?"}, ${when(f.decided_at)} (statement ${f.decision_attestation_id})`),
      f.decision_reason ? h("p", {}, "Reason: " + f.decision_reason) : null);
    return box;
  }
  if (!me || !me.can_decide) {
    box.append(h("p", { class: "muted" }, `Your role (${me ? me.role : "none"}) cannot decide on findings; reviewers can.`));
    return box;
  }
  const action = h("select", { id: "f-action", name: "action" },
    h("option", { value: "confirm" }, "Confirm: the weights evidence holds"),
    h("option", { value: "dismiss" }, "Dismiss: the weights evidence does not hold"));
  const reason = h("textarea", { id: "f-reason", name: "reason", rows: "3", maxlength: "4000", required: true });
  const effect = h("p", { class: "muted", id: "f-effect" });
  const sync = () => { effect.textContent = action.value === "confirm" ? "Confirming " + confirmDoes + "." : "Dismissing closes the finding; the declared lineage stands."; };
  action.addEventListener("change", sync);
  const out = h("p", { id: "f-result", role: "status" });
  const form = h("form", { id: "finding-form", novalidate: true },
    h("label", { for: "f-action" }, "Decision"), action,
    h("label", { for: "f-reason" }, "Reason (required)"), reason,
    effect,
    h("button", { type: "submit", id: "f-submit" }, "Sign and submit"),
    h("p", { class: "muted" }, "Signed here with your own key (WebCrypto Ed25519, kept in this browser), then verified and logged by the server."),
    out);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    out.className = ""; say("");
    try {
      if (!reason.value.trim()) throw new Error("a decision on a finding needs a reason: say why the weights evidence holds or does not");
      const key = await ensureKey((t) => { out.textContent = t; });
      const kind = action.value === "confirm" ? "finding-confirmation" : "finding-dismissal";
      const st = SB.statement(kind, f.model, f.model_ref, { finding: f.statement, reason: reason.value });
      out.textContent = "Signing in this browser…";
      const envelope = await SB.signStatement(key, st);
      const res = await api("POST", "/v1/attestations", envelope);
      out.textContent = `Recorded: statement ${res.attestation_id}, log index ${res.log_index}` +
        (res.edges_added ? `; added ${f.model_ref} initialized_from ${f.other_ref}` : "") + ".";
      out.className = "ok";
      setTimeout(route, 800);
    } catch (e) { out.textContent = e.message; out.className = "bad"; }
  });
  sync();
  box.append(form);
  return box;
}

// ---------------------------------------------------------------------------- browse + log
async function viewBrowse(main, params) {
  busy(main);
  const q = new URLSearchParams();
  for (const k of ["q", "kind", "owner", "status", "trait"]) if (params.get(k)) q.set(k, params.get(k));
  q.set("limit", "100");
  const [list, flags] = await Promise.all([api("GET", "/v1/review/artifacts?" + q), api("GET", "/v1/flags")]);
  const field = (name, label, input) => h("label", {}, label, " ", input);
  const inp = (name) => h("input", { name, value: params.get(name) || "", type: "search" });
  const sel = (name, opts) => h("select", { name }, h("option", { value: "" }, "any"),
    opts.map((o) => h("option", { value: o, selected: params.get(name) === o }, o)));
  const form = h("form", { class: "toolbar", id: "browse-form" },
    field("q", "Name", inp("q")), field("kind", "Kind", sel("kind", ["model", "dataset"])),
    field("owner", "Owner", inp("owner")),
    field("status", "Status", sel("status", ["flagged", "at_risk", "accepted", "cleared", "no_risk"])),
    field("trait", "Trait", inp("trait")), h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) p.set(k, v);
    location.hash = "#/browse?" + p;
  });
  const table = h("table", { class: "grid", id: "browse" },
    h("caption", {}, `${list.count} artifact(s)`),
    h("thead", {}, h("tr", {}, ["Artifact", "Kind", "Owner", "Status", "Traits", "Registered"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, list.data.map((a) => h("tr", {},
      h("td", {}, h("a", { href: artLink(a.ref) }, a.ref)), h("td", {}, a.kind), h("td", {}, a.owner || ""),
      h("td", {}, h("span", { class: "status st-" + a.status }, a.status.replace("_", " "))),
      h("td", {}, a.traits.join(", ")), h("td", {}, when(a.created_at))))));
  const flagList = h("section", { class: "card" }, h("h2", {}, `Flags in force (${flags.count})`),
    h("ul", {}, flags.data.map((f) => h("li", {}, h("a", { href: artLink(f.artifact_ref) }, f.artifact_ref),
      ` · ${f.trait} (${f.severity}) · ${when(f.created_at)}` + (f.reason ? " · " + f.reason : "")))));
  main.replaceChildren(h("h1", {}, "Browse"), form, table, flagList);
}

async function viewLog(main) {
  busy(main);
  const info = await api("GET", "/v1/log/");
  const out = h("p", { id: "checkpoint-check" }, "Checking the checkpoint signature…");
  main.replaceChildren(h("h1", {}, "Transparency log"),
    h("section", { class: "card" },
      h("dl", {}, h("dt", {}, "Origin"), h("dd", {}, info.origin), h("dt", {}, "Size"), h("dd", {}, String(info.tree_size)),
        h("dt", {}, "Root"), h("dd", { class: "mono" }, info.root_hash),
        h("dt", {}, "Verifier key (pin it)"), h("dd", { class: "mono", id: "vkey" }, info.vkey)),
      h("h2", {}, "Checkpoint"), h("pre", { id: "checkpoint" }, info.checkpoint), out));
  try {
    const cp = await SB.verifyCheckpoint(info.checkpoint, info.vkey);
    out.textContent = `✔ Signature verified in this browser (Ed25519, ${cp.origin}, size ${cp.size}).`;
    out.className = "ok";
  } catch (e) { out.textContent = "✘ " + e.message; out.className = "bad"; }
}

// ---------------------------------------------------------------------------- artifact page
const WEIGHTS = new Set(["fine_tuned_from", "adapter_of", "merged_from", "quantized_from", "prompted_from", "initialized_from"]);

function nodeStatus(node, report) {
  if (node.flags && node.flags.length) return "flagged";
  if (node.at_risk && node.at_risk.length) {
    if (node.artifact.digest === report.artifact.digest && report.acceptances.some((a) => new Date(a.expires_at) > new Date())) return "accepted";
    return "atrisk";
  }
  const cleared = report.decisions.some((d) => d.artifact_ref === node.artifact.ref && d.role === "clearance");
  return cleared ? "cleared" : "plain";
}

function drawLineage(box, report) {
  const lin = report.lineage;
  const mark = report.risk.at_risk[0];
  const pathKeys = new Set((mark ? mark.path : []).map((e) => e.child + ">" + e.parent + ">" + e.relation));
  const onPath = new Set((mark ? mark.path : []).flatMap((e) => [e.child, e.parent]));
  const bases = new Set(mark ? mark.shared_base : []);
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "BT", nodesep: 40, ranksep: 70, edgesep: 20, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  const byDigest = new Map(lin.nodes.map((n) => [n.artifact.digest, n]));
  for (const n of lin.nodes) {
    const w = Math.max(150, 8.3 * n.artifact.ref.length + 28);  // the whole name, never cut
    g.setNode(n.artifact.digest, { width: w, height: 50 });
  }
  lin.edges.forEach((e, i) => {
    if (!byDigest.has(e.child) || !byDigest.has(e.parent)) return;
    g.setEdge(e.child, e.parent, { label: e.relation, width: 7 * e.relation.length + 10, height: 16, labelpos: "c", data: e }, "e" + i);
  });
  dagre.layout(g);
  const gw = g.graph().width, gh = g.graph().height;
  const root = svg("svg", { id: "graph", role: "group", "aria-label": "Lineage graph: ancestors above, the model below", viewBox: `0 0 ${gw} ${gh}`, class: "graph" });
  const defs = svg("defs");
  for (const [id, color] of [["arrow-w", "#1f4e79"], ["arrow-d", "#8a4b08"], ["arrow-p", "#a3165f"]]) {
    // userSpaceOnUse: the same arrow on thin and highlighted (thick) edges.
    const m = svg("marker", { id, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "11", markerHeight: "11", markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" });
    m.appendChild(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: color }));
    defs.appendChild(m);
  }
  root.appendChild(defs);
  const layer = svg("g", { id: "viewport" });
  root.appendChild(layer);
  for (const ev of g.edges()) {
    const e = g.edge(ev);
    const d = e.data;
    const fam = WEIGHTS.has(d.relation) ? "weights" : "data";
    const hot = pathKeys.has(d.child + ">" + d.parent + ">" + d.relation);
    const pts = e.points;
    let dstr = `M ${pts[0].x} ${pts[0].y}`;
    for (let i = 1; i < pts.length; i++) dstr += ` L ${pts[i].x} ${pts[i].y}`;
    const grp = svg("g", { class: `edge ${fam}${hot ? " on-path" : ""}`, "data-relation": d.relation, "data-child": d.child, "data-parent": d.parent, "data-on-path": hot ? "1" : "0" });
    grp.appendChild(svg("path", { d: dstr, "marker-end": `url(#arrow-${hot ? "p" : fam === "weights" ? "w" : "d"})` }));
    grp.appendChild(svg("rect", { x: e.x - e.width / 2, y: e.y - 9, width: e.width, height: 18, rx: 3, class: "edge-label-bg" }));
    grp.appendChild(svg("text", { x: e.x, y: e.y + 4, "text-anchor": "middle", class: "edge-label" }, d.relation));
    grp.appendChild(svg("title", {}, `${byDigest.get(d.child).artifact.ref} ${d.relation} ${byDigest.get(d.parent).artifact.ref} (statement ${d.attestation_id})`));
    layer.appendChild(grp);
  }
  for (const id of g.nodes()) {
    const n = byDigest.get(id), p = g.node(id);
    const st = nodeStatus(n, report);
    const isRoot = id === lin.root;
    const grp = svg("g", { class: `node st-${st}${onPath.has(id) ? " on-path" : ""}${bases.has(id) ? " base" : ""}${isRoot ? " root" : ""}`,
      tabindex: "0", role: "link", "data-ref": n.artifact.ref, "data-status": st, "data-digest": id,
      "aria-label": `${n.artifact.ref}, ${n.artifact.kind}, ${st}${bases.has(id) ? ", shared base" : ""}` });
    const x = p.x - p.width / 2, y = p.y - p.height / 2;
    grp.appendChild(svg("rect", { x, y, width: p.width, height: p.height, rx: n.artifact.kind === "model" ? 4 : 18, class: "node-box" }));
    if (bases.has(id)) grp.appendChild(svg("rect", { x: x - 4, y: y - 4, width: p.width + 8, height: p.height + 8, rx: 7, class: "base-ring" }));
    grp.appendChild(svg("text", { x: p.x, y: y + 20, "text-anchor": "middle", class: "node-title" }, n.artifact.ref));
    const tags = [n.artifact.kind, { flagged: "FLAGGED", atrisk: "AT RISK", cleared: "CLEARED", accepted: "RISK ACCEPTED", plain: "" }[st]];
    if (n.flags && n.flags.length) tags.push(n.flags.map((f) => f.trait).join(","));
    if (bases.has(id)) tags.push("SHARED BASE");
    grp.appendChild(svg("text", { x: p.x, y: y + 38, "text-anchor": "middle", class: "node-sub" }, tags.filter(Boolean).join(" · ")));
    grp.appendChild(svg("title", {}, `${n.artifact.ref}\n${n.artifact.digest}`));
    const go = () => { if (!isRoot) location.hash = artLink(n.artifact.ref); };
    grp.addEventListener("click", go);
    grp.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); } });
    layer.appendChild(grp);
  }
  // Zoom and pan by editing the viewBox: buttons, wheel, drag, and + - 0 keys on the graph.
  let vb = { x: 0, y: 0, w: gw, h: gh };
  const apply = () => root.setAttribute("viewBox", `${vb.x} ${vb.y} ${vb.w} ${vb.h}`);
  const zoom = (f, cx, cy) => {
    cx = cx === undefined ? vb.x + vb.w / 2 : cx; cy = cy === undefined ? vb.y + vb.h / 2 : cy;
    vb = { x: cx - (cx - vb.x) * f, y: cy - (cy - vb.y) * f, w: vb.w * f, h: vb.h * f }; apply();
  };
  const fit = () => { vb = { x: 0, y: 0, w: gw, h: gh }; apply(); };
  root.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = root.getBoundingClientRect();
    zoom(ev.deltaY > 0 ? 1.15 : 1 / 1.15, vb.x + (ev.clientX - r.left) / r.width * vb.w, vb.y + (ev.clientY - r.top) / r.height * vb.h);
  }, { passive: false });
  let drag = null;
  root.addEventListener("pointerdown", (ev) => { if (ev.target.closest("g.node")) return; drag = { x: ev.clientX, y: ev.clientY, vb: { ...vb } }; root.setPointerCapture(ev.pointerId); });
  root.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const r = root.getBoundingClientRect();
    vb.x = drag.vb.x - (ev.clientX - drag.x) / r.width * vb.w; vb.y = drag.vb.y - (ev.clientY - drag.y) / r.height * vb.h; apply();
  });
  root.addEventListener("pointerup", () => { drag = null; });
  const tools = h("div", { class: "graph-tools", role: "toolbar", "aria-label": "Zoom" },
    h("button", { type: "button", onclick: () => zoom(1 / 1.25), "aria-label": "Zoom in" }, "+"),
    h("button", { type: "button", onclick: () => zoom(1.25), "aria-label": "Zoom out" }, "−"),
    h("button", { type: "button", onclick: fit }, "Fit"));
  const legend = h("ul", { class: "legend", "aria-label": "Legend" },
    h("li", {}, h("span", { class: "sw st-flagged" }), "flagged"),
    h("li", {}, h("span", { class: "sw st-atrisk" }), "at risk"),
    h("li", {}, h("span", { class: "sw st-cleared" }), "cleared"),
    h("li", {}, h("span", { class: "sw st-accepted" }), "risk accepted"),
    h("li", {}, h("span", { class: "sw st-plain" }), "no risk recorded"),
    h("li", {}, h("span", { class: "ln weights" }), "weights lineage"),
    h("li", {}, h("span", { class: "ln data" }), "data lineage"),
    h("li", {}, h("span", { class: "ln path" }), "risk path"),
    h("li", {}, h("span", { class: "sw base" }), "shared base"));
  const wrap = h("div", { class: "graph-wrap" }, root);
  wrap.style.height = Math.round(Math.min(640, Math.max(260, gh * 1.05))) + "px";  // CSSOM, allowed by the CSP
  box.replaceChildren(h("div", { class: "graph-head" }, legend, tools), wrap);
}

async function verifyBadges(report, table) {
  const vkey = report.log.vkey;
  for (const s of report.statements) {
    const cell = table.querySelector(`[data-badge="${s.attestation_id}"]`);
    if (!cell) continue;
    if (!s.inclusion_proof) { cell.textContent = "not logged"; cell.className = "badge bad"; continue; }
    try {
      await SB.verifyInclusion(s.envelope, s.inclusion_proof, vkey);
      cell.textContent = "✔ inclusion verified";
      cell.className = "badge ok";
      cell.dataset.verified = "1";
    } catch (e) {
      cell.textContent = "✘ " + e.message;
      cell.className = "badge bad";
      cell.dataset.verified = "0";
    }
  }
}

function metricsList(metrics) {
  const fmt = (v) => typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3))
    : Array.isArray(v) ? "[" + v.map(fmt).join(", ") + "]" : v && typeof v === "object" ? "{" + Object.entries(v).map(([k, x]) => `${k}: ${fmt(x)}`).join(", ") + "}" : String(v);
  // A metric with its 95% interval reads "0.412 (95% CI 0.380 to 0.444)".
  const show = (v) => v && typeof v === "object" && "mean" in v && Array.isArray(v.ci95)
    ? `${fmt(v.mean)} (95% CI ${fmt(v.ci95[0])} to ${fmt(v.ci95[1])})` : fmt(v);
  return h("dl", { class: "metrics" }, Object.entries(metrics || {}).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, show(v))]));
}

function evidencePanel(report) {
  const items = report.evidence;
  return h("section", { class: "card", id: "evidence" }, h("h2", {}, "Evidence: evals of this model and its bases"),
    items.length ? items.map((ev) => h("article", { class: "eval" },
      h("h3", {}, `${ev.experiment} · preset ${ev.preset} · about ${ev.concerns} (${ev.role})`),
      h("p", {}, h("strong", {}, "Verdict: "), ev.verdict),
      h("p", { class: "muted" }, `Signed by ${ev.signed_by}, ${when(ev.received_at)}; statement ${ev.attestation_id}; cite as attestation:${ev.attestation_id}`),
      metricsList(ev.metrics),
      ev.plot_url ? h("img", { src: ev.plot_url, alt: `Plot of eval run ${ev.eval_run}`, class: "plot", loading: "lazy" }) : null))
      : h("p", { class: "muted" }, "No eval results concern this model or its bases yet. Queue one below."));
}

function timeline(report) {
  const byId = new Map(report.statements.map((s) => [s.attestation_id, s]));
  const items = [...report.decisions].sort((a, b) => new Date(a.received_at) - new Date(b.received_at));
  return h("section", { class: "card", id: "timeline" }, h("h2", {}, "Flags, clearances and acceptances"),
    items.length ? h("ol", { class: "timeline" }, items.map((d) => {
      const st = byId.get(d.attestation_id);
      const pred = st ? st.statement.predicate : {};
      return h("li", { class: "tl-" + d.role },
        h("span", { class: "tl-when" }, when(d.received_at)),
        h("strong", {}, ` ${d.role} `), h("a", { href: artLink(d.artifact_ref) }, d.artifact_ref),
        ` · ${pred.trait || ""}${pred.severity ? " (" + pred.severity + ")" : ""} · by ${d.principal}`,
        pred.expires ? ` · until ${pred.expires}` : "",
        pred.reason ? h("div", {}, "Reason: " + pred.reason) : null,
        pred.evidence && pred.evidence.length ? h("div", {}, "Evidence: " + pred.evidence.join(", ")) : null);
    })) : h("p", { class: "muted" }, "No reviewer has ruled on this model or its ancestors."));
}

function statementsTable(report) {
  const mine = report.statements;
  const t = h("table", { class: "grid", id: "statements" },
    h("caption", {}, "Signed statements (inclusion checked in this browser against the signed checkpoint)"),
    h("thead", {}, h("tr", {}, ["#", "What", "About", "Signed by", "Key", "When", "Log index", "Inclusion"].map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, mine.map((s) => h("tr", {},
      h("td", {}, String(s.attestation_id)), h("td", {}, s.role), h("td", {}, s.about || ""),
      h("td", {}, s.principal), h("td", { class: "mono", title: s.signer_keyid }, s.signer_keyid.slice(0, 12) + "…"),
      h("td", {}, when(s.received_at)), h("td", {}, s.log_index === null ? "—" : String(s.log_index)),
      h("td", {}, h("span", { class: "badge", "data-badge": s.attestation_id }, "checking…"))))));
  return t;
}

async function viewArtifact(main, ref) {
  busy(main);
  const [report, found] = await Promise.all([api("GET", refPath(ref) + "/report"),
    api("GET", "/v1/findings?" + new URLSearchParams({ model: ref, limit: "20" }))]);
  const a = report.artifact;
  const risk = report.risk;
  const status = report.acceptances.some((x) => new Date(x.expires_at) > new Date()) && risk.status === "at_risk" ? "accepted" : risk.status;
  const head = h("section", { class: "card", id: "summary" },
    h("h1", {}, a.ref, " ", h("span", { class: "status st-" + status, id: "status" }, status.replace("_", " "))),
    h("dl", { class: "facts" },
      h("dt", {}, "Kind"), h("dd", {}, a.kind + (a.opaque ? " (opaque: API-only)" : "")),
      h("dt", {}, "Digest"), h("dd", { class: "mono" }, "sha256:" + a.digest),
      h("dt", {}, "Owner"), h("dd", {}, report.owner || "—"),
      h("dt", {}, "Registered"), h("dd", {}, when(a.created_at))),
    h("p", {}, h("a", { href: "#/report/" + encodeURIComponent(a.ref) }, "Review report"), " · ",
      h("a", { href: refPath(a.ref) + "/report", download: a.ref.replace(/[^A-Za-z0-9._-]/g, "_") + ".report.json" }, "JSON")));
  const explain = h("section", { class: "card", id: "explanation" }, h("h2", {}, "Why"),
    risk.at_risk.length ? risk.at_risk.map((m) => h("div", { class: "mark" },
      h("p", {}, h("strong", {}, `At risk for ${m.trait}`), ` (${m.kind} step via ${m.via_ref}; flag on ${m.source_ref})`),
      h("ol", { class: "path-steps" }, m.path.map((e) => h("li", {}, `${e.child_ref} `, h("em", {}, e.relation), ` ${e.parent_ref}`))),
      m.shared_base_refs.length ? h("p", {}, "Shared base: ", h("strong", {}, m.shared_base_refs.join(", "))) : null))
      : h("p", {}, risk.status === "flagged" ? "Flagged: " + risk.flags.map((f) => `${f.trait} (${f.severity})`).join(", ")
        : risk.status === "cleared" ? "Cleared: " + risk.clearances.map((c) => `${c.trait} (evidence ${c.evidence.join(", ")})`).join("; ")
        : "No risk recorded against this artifact."));
  const graphTitle = h("h2", {}, "Lineage (ancestors)");
  const toggle = h("button", { type: "button", id: "toggle-direction", class: "secondary" }, "Show descendants");
  const graphBox = h("section", { class: "card", id: "lineage" }, h("div", { class: "graph-title" }, graphTitle, toggle));
  const stTable = statementsTable(report);
  main.replaceChildren(head, explain, artifactFindings(found) || "", graphBox,
    decisionPanel(report), evidencePanel(report), timeline(report),
    h("section", { class: "card" }, stTable,
      h("p", { class: "muted" }, "Log verifier key: ", h("span", { class: "mono" }, report.log.vkey))),
    evalPanel(report));
  const canvas = graphBox.appendChild(h("div", {}));
  drawLineage(canvas, report);
  // Descendants: who inherits from this artifact (for a flagged teacher, who is exposed).
  let down = false;
  toggle.addEventListener("click", async () => {
    down = !down;
    toggle.textContent = down ? "Show ancestors" : "Show descendants";
    graphTitle.textContent = down ? "Lineage (descendants)" : "Lineage (ancestors)";
    if (!down) { drawLineage(canvas, report); return; }
    try {
      const lin = await api("GET", refPath(a.ref) + "/lineage?direction=down&depth=64");
      drawLineage(canvas, { ...report, lineage: lin, risk: { ...report.risk, at_risk: [] } });
    } catch (e) { say(e.message); }
  });
  verifyBadges(report, stTable);
}

// ---------------------------------------------------------------------------- decisions
async function ensureKey(progress) {
  const me = state.me;
  let key = await SB.storedKey(me.principal);
  if (key && key.registered) return key;
  if (!key) {
    progress("Generating your Ed25519 key in this browser (the private half cannot leave it)…");
    key = await SB.newKey();
    await SB.storeKey(me.principal, key);
  }
  progress("Registering your public key with proof of possession…");
  const proof = await SB.possessionProof(key, me.principal);
  try {
    await api("POST", "/v1/keys", { public_key: key.publicB64, proof });
  } catch (e) { if (e.status !== 409) throw e; }
  key.registered = true;
  await SB.storeKey(me.principal, key);
  return key;
}

function decisionPanel(report) {
  const me = state.me;
  const box = h("section", { class: "card", id: "decide" }, h("h2", {}, "Decide"));
  if (!me || !me.can_decide) {
    box.append(h("p", { class: "muted" }, `Your role (${me ? me.role : "none"}) cannot record decisions; reviewers can.`));
    return box;
  }
  const a = report.artifact;
  const marks = report.risk.at_risk;
  const traits = [...new Set([...marks.map((m) => m.trait), ...report.risk.flags.map((f) => f.trait)])];
  const action = h("select", { id: "d-action", name: "action" },
    h("option", { value: "clearance" }, "Clear: the trait is absent (with evidence)"),
    h("option", { value: "confirm" }, "Confirm: the trait is present (flags this model)"),
    h("option", { value: "acceptance" }, "Accept the risk until a date"),
    h("option", { value: "flag" }, "Flag for another trait"));
  const trait = h("input", { id: "d-trait", name: "trait", list: "d-traits", value: traits[0] || "", required: true });
  const severity = h("select", { id: "d-severity", name: "severity" }, ["low", "medium", "high", "critical"].map((s) => h("option", { value: s, selected: s === "high" }, s)));
  const evalOpts = report.evidence.map((ev) => h("option", { value: "attestation:" + ev.attestation_id }, `attestation:${ev.attestation_id} · ${ev.experiment}/${ev.preset} · ${ev.concerns}`));
  const evidenceSel = h("select", { id: "d-evidence", name: "evidence" }, evalOpts, h("option", { value: "external" }, "External reference…"));
  const external = h("input", { id: "d-external", name: "external", placeholder: "e.g. ticket GOV-42 or https://…" });
  const expires = h("input", { id: "d-expires", name: "expires", type: "date" });
  const reason = h("textarea", { id: "d-reason", name: "reason", rows: "3", maxlength: "4000" });
  const out = h("p", { id: "d-result", role: "status" });
  const sync = () => {
    const v = action.value;
    box.querySelector(".f-evidence").hidden = v !== "clearance";
    box.querySelector(".f-external").hidden = v !== "clearance" || evidenceSel.value !== "external";
    box.querySelector(".f-severity").hidden = !(v === "confirm" || v === "flag");
    box.querySelector(".f-expires").hidden = v !== "acceptance";
  };
  const form = h("form", { id: "decide-form" },
    h("datalist", { id: "d-traits" }, traits.map((t) => h("option", { value: t }))),
    h("label", { for: "d-action" }, "Decision"), action,
    h("label", { for: "d-trait" }, "Trait"), trait,
    h("div", { class: "f-severity" }, h("label", { for: "d-severity" }, "Severity"), severity),
    h("div", { class: "f-evidence" }, h("label", { for: "d-evidence" }, "Evidence"), evidenceSel),
    h("div", { class: "f-external" }, h("label", { for: "d-external" }, "External reference (recorded as external:…)"), external),
    h("div", { class: "f-expires" }, h("label", { for: "d-expires" }, "Accepted until"), expires),
    h("label", { for: "d-reason" }, "Reason"), reason,
    h("button", { type: "submit", id: "d-submit" }, "Sign and submit"),
    h("p", { class: "muted" }, "Signed here with your own key (WebCrypto Ed25519, kept in this browser), then verified and logged by the server."),
    out);
  action.addEventListener("change", sync);
  evidenceSel.addEventListener("change", sync);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    out.className = ""; say("");
    try {
      const key = await ensureKey((t) => { out.textContent = t; });
      const t = trait.value.trim();
      let st;
      switch (action.value) {
        case "clearance": {
          const evid = evidenceSel.value === "external" ? "external:" + external.value.trim() : evidenceSel.value;
          if (evid === "external:") throw new Error("name the external evidence");
          st = SB.statement("clearance", a.digest, a.ref, { trait: t, reason: reason.value, evidence: [evid] });
          break;
        }
        case "confirm":
        case "flag":
          st = SB.statement("flag", a.digest, a.ref, { trait: t, severity: severity.value,
            reason: reason.value || (action.value === "confirm" ? "confirmed by review: the trait is present" : ""), evidence: [] });
          break;
        case "acceptance": {
          if (!expires.value) throw new Error("choose the date the acceptance ends");
          if (!reason.value.trim()) throw new Error("an acceptance needs a reason");
          st = SB.statement("acceptance", a.digest, a.ref, { trait: t, reason: reason.value,
            expires: expires.value + "T00:00:00Z", evidence: [] });
          break;
        }
      }
      out.textContent = "Signing in this browser…";
      const envelope = await SB.signStatement(key, st);
      const res = await api("POST", "/v1/attestations", envelope);
      out.textContent = `Recorded: statement ${res.attestation_id}, log index ${res.log_index}, signed with key ${res.signer_keyid.slice(0, 12)}…`;
      out.className = "ok";
      setTimeout(route, 800);
    } catch (e) { out.textContent = e.message; out.className = "bad"; }
  });
  box.append(form);
  sync();
  return box;
}

// ---------------------------------------------------------------------------- evals
function evalPanel(report) {
  const me = state.me;
  const box = h("section", { class: "card", id: "evals" }, h("h2", {}, "Queue an eval"));
  if (!me || !me.can_queue_evals) { box.append(h("p", { class: "muted" }, "Your role cannot queue evals.")); return box; }
  const mark = report.risk.at_risk[0];
  const bases = mark ? mark.shared_base_refs : [];
  const models = report.lineage.nodes.filter((n) => n.artifact.kind === "model").map((n) => n.artifact.ref);
  const experiment = h("select", { id: "e-exp" }, ["digits", "toy-lm", "numbers"].map((x) => h("option", { value: x }, x)));
  const preset = h("input", { id: "e-preset", value: "smoke" });
  const base = h("select", { id: "e-base" }, h("option", { value: "" }, "(experiment default)"),
    [...new Set([...bases, ...models])].map((r) => h("option", { value: r, selected: bases[0] === r }, r)));
  const trait = h("input", { id: "e-trait", value: mark ? mark.trait : "" });
  const out = h("div", { id: "e-progress", role: "status" });
  const form = h("form", { class: "toolbar", id: "eval-form" },
    h("label", {}, "Experiment ", experiment), h("label", {}, "Preset ", preset),
    h("label", { class: "f-base" }, "Base ", base), h("label", { class: "f-trait" }, "Trait ", trait),
    h("button", { type: "submit", id: "e-submit" }, "Queue"));
  const sync = () => {
    form.querySelector(".f-base").hidden = experiment.value !== "numbers";
    form.querySelector(".f-trait").hidden = experiment.value === "digits";
  };
  experiment.addEventListener("change", sync);
  sync();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const body = { experiment: experiment.value, preset: preset.value.trim() || "smoke" };
      // Only the number-sequence experiment takes a registered base; digits has no trait.
      if (base.value && experiment.value === "numbers") body.base = base.value;
      if (trait.value.trim() && experiment.value !== "digits") body.trait = trait.value.trim();
      const run = await api("POST", "/v1/evals", body);
      follow(run.id, out);
    } catch (e) { out.textContent = e.message; out.className = "bad"; }
  });
  box.append(h("p", { class: "muted" }, "A finished run registers its lineage and a signed eval result, which can then be cited as evidence."), form, out);
  return box;
}
async function follow(id, out) {
  for (;;) {
    let run;
    try { run = await api("GET", "/v1/evals/" + id); } catch (e) { out.textContent = e.message; return; }
    out.replaceChildren(...[h("p", { id: "e-status", "data-status": run.status }, `Run ${run.id}: ${run.status}`),
      h("ul", {}, run.progress.map((p) => h("li", {}, `${p.stage}: `, h("progress", { max: String(p.total || 1), value: String(p.done) }), ` ${p.done}/${p.total}`))),
      run.messages.length ? h("p", { class: "muted" }, run.messages[run.messages.length - 1]) : null,
      run.verdict ? h("p", {}, "Verdict: " + run.verdict) : null,
      run.error ? h("p", { class: "bad" }, run.error) : null].filter(Boolean));
    if (!["queued", "running"].includes(run.status)) {
      if (run.status === "succeeded") out.append(h("p", {}, "Done; ", h("a", { href: "#" + location.hash.slice(1) + "?t=" + Date.now() }, "reload to cite it")));
      return;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

// ---------------------------------------------------------------------------- report
async function viewReport(main, ref) {
  busy(main);
  const r = await api("GET", refPath(ref) + "/report");
  const a = r.artifact;
  const stTable = statementsTable(r);
  const graphBox = h("div", {});
  main.replaceChildren(
    h("div", { class: "no-print toolbar" }, h("button", { type: "button", id: "print", onclick: () => window.print() }, "Print"),
      h("a", { href: refPath(a.ref) + "/report", download: "report.json" }, "Download JSON"), h("a", { href: artLink(a.ref) }, "Back to the artifact")),
    h("article", { class: "report", id: "report" },
      h("h1", {}, "Review report: " + a.ref),
      h("p", {}, `Generated ${when(r.generated_at)} · ${r.format}`),
      h("h2", {}, "Artifact"),
      h("dl", { class: "facts" }, h("dt", {}, "Kind"), h("dd", {}, a.kind), h("dt", {}, "Digest"), h("dd", { class: "mono" }, "sha256:" + a.digest),
        h("dt", {}, "Owner"), h("dd", {}, r.owner || "—"), h("dt", {}, "Status"), h("dd", {}, r.risk.status.replace("_", " "))),
      h("h2", {}, "Risk explanation"),
      r.risk.at_risk.length ? h("ul", {}, r.risk.at_risk.map((m) => h("li", {}, `${m.trait}: ` + [m.model_ref, ...m.path.map((e) => `—${e.relation}→ ${e.parent_ref}`)].join(" ") +
        (m.shared_base_refs.length ? `; shared base ${m.shared_base_refs.join(", ")}` : "")))) : h("p", {}, "No at-risk mark in force."),
      r.acceptances.length ? h("ul", {}, r.acceptances.map((x) => h("li", {}, `Risk of ${x.trait} accepted until ${when(x.expires_at)}: ${x.reason}`))) : null,
      h("h2", {}, "Findings from the weights"),
      r.findings.length ? h("ul", { id: "report-findings" }, r.findings.map((f) => h("li", { "data-finding": String(f.id), "data-status": f.status },
        `#${f.id} ${FINDING_KINDS[f.kind]} (${f.status}): `, ...findingClaim(f),
        ` · r = ${f.statistic.toFixed(3)}, p = ${f.p_value.toPrecision(2)}, ${f.permutations} permutations · signed by ${f.signed_by}, statement ${f.attestation_id}`,
        f.decided_by ? ` · ${f.status} by ${f.decided_by} ${when(f.decided_at)}: ${f.decision_reason}` : ""))) : h("p", {}, "No finding about this model."),
      h("h2", {}, "Lineage"), graphBox,
      h("ul", { class: "edges" }, r.lineage.edges.map((e) => {
        const ref = (d) => (r.lineage.nodes.find((n) => n.artifact.digest === d) || { artifact: { ref: d } }).artifact.ref;
        return h("li", {}, `${ref(e.child)} ${e.relation} ${ref(e.parent)} (statement ${e.attestation_id})`);
      })),
      evidencePanel(r), timeline(r),
      h("h2", {}, "Statements and inclusion proofs"), stTable,
      h("h2", {}, "Checkpoint"), h("p", {}, "Verifier key: ", h("span", { class: "mono" }, r.log.vkey)), h("pre", {}, r.log.checkpoint),
      h("p", { class: "muted" }, "Check offline: the JSON document holds every envelope, its inclusion proof and the signed checkpoint; `studbook log verify` or any RFC 9162 verifier reproduces the badges above.")));
  drawLineage(graphBox, r);
  verifyBadges(r, stTable);
}

// ---------------------------------------------------------------------------- router
async function route() {
  const hash = location.hash || "#/queue";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const main = $("main");
  say("");
  if (!state.me && path !== "/signin") {
    await whoami();
    if (!state.me) { location.hash = "#/signin"; return; }
  }
  for (const a of document.querySelectorAll("#nav a")) a.setAttribute("aria-current", path.startsWith("/" + a.dataset.view) ? "page" : "false");
  // Views render off-screen and replace the page only if no later navigation started meanwhile:
  // a slow answer for an old fragment must never overwrite the page the user moved on to.
  const gen = ++state.gen;
  const view = h("div", { class: "view" });
  if (path !== "/signin") busy(main);
  try {
    if (path === "/signin") { viewSignin(main); state.lastRoute = path; return; }
    else if (path === "/queue" || path === "/") await viewQueue(view, params);
    else if (path === "/browse") await viewBrowse(view, params);
    else if (path === "/log") await viewLog(view);
    else if (path.startsWith("/artifact/")) await viewArtifact(view, decodeURIComponent(path.slice(10)));
    else if (path.startsWith("/report/")) await viewReport(view, decodeURIComponent(path.slice(8)));
    else if (path.startsWith("/finding/")) await viewFinding(view, decodeURIComponent(path.slice(9)));
    else view.replaceChildren(h("p", {}, "No such page."));
    if (gen !== state.gen) return;
    main.replaceChildren(view);
    if (state.lastRoute !== null && state.lastRoute !== path) main.focus();
    state.lastRoute = path;
  } catch (e) {
    if (gen !== state.gen) return;
    say(e.message);
    main.replaceChildren(h("p", { class: "bad", id: "error" }, e.message));
  }
}
window.addEventListener("hashchange", route);
route();
