// Combines the per-use-case answers compiled from permissions.yaml exactly as picker.pick() does in Python.
// No coverage logic lives here: each use case's minimum permissions were computed by Python.
"use strict";
const DATA = JSON.parse(document.getElementById("picker-data").textContent);

function satisfies(held, wanted) {  // write grants read on the same resource, as in Stripe
  return held.resource === wanted.resource && (held.level === "write" || wanted.level === "read");
}

function minimumPermissions(names) {  // one per resource at the highest level needed, sorted by resource
  const levels = new Map();
  for (const n of names) {
    for (const p of DATA.useCases[n].permissions) {
      if (levels.get(p.resource) !== "write") levels.set(p.resource, p.level);
    }
  }
  return [...levels.keys()].sort().map((resource) => ({ resource, level: levels.get(resource) }));
}

const permName = (p) => `${p.resource}_${p.level}`;
const weight = (p) => DATA.resources[p.resource][p.level === "write" ? "writeWeight" : "readWeight"];

function blastRadius(perms) {
  const parts = new Map(perms.map((p) => [permName(p), weight(p)]));
  const warnings = DATA.dangerous
    .filter((d) => d.requires.every((r) => perms.some((g) => satisfies(g, r))))
    .map((d) => ({ permissions: d.requires.map(permName), why: d.why, penalty: d.penalty }));
  for (const w of warnings) parts.set(w.permissions.join(" + "), w.penalty);
  const score = [...parts.values()].reduce((a, b) => a + b, 0);
  const band = DATA.bands.find((b) => score >= b.floor).band;
  return { score, band, parts, warnings };
}

function addDecimals(values) {  // exact decimal sum of USD strings, written without trailing zeros
  const scale = Math.max(0, ...values.map((v) => (v.split(".")[1] || "").length));
  let total = 0n;
  for (const v of values) {
    const [whole, frac = ""] = v.split(".");
    total += BigInt(whole + frac.padEnd(scale, "0"));
  }
  let digits = total.toString().padStart(scale + 1, "0");
  let out = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  if (scale) out = out.replace(/0+$/, "").replace(/\.$/, "");
  return out;
}

const canonical = (v) => JSON.stringify(v, (k, x) =>
  x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort()) : x);

function policy(names) {
  const allow = [...new Set(names.flatMap((n) => DATA.useCases[n].allow))];
  const params = [];
  const seen = new Set();
  for (const n of names) {
    for (const p of DATA.useCases[n].params) {
      const id = canonical(p.rule);
      if (!seen.has(id)) { seen.add(id); params.push(p.rule); }
    }
  }
  const spec = { vendor: "stripe", dailyCapUsd: addDecimals(names.map((n) => DATA.useCases[n].dailyCapUsd)), allow };
  if (params.length) spec.params = params;
  const name = names.join("-").slice(0, 63).replace(/-+$/, "");
  return { apiVersion: DATA.apiVersion, kind: "SpendPolicy", metadata: { name, namespace: DATA.namespace }, spec };
}

function ruleConflicts(names) {
  const seen = new Map();
  const out = [];
  for (const n of names) {
    for (const p of DATA.useCases[n].params) {
      for (const endpoint of p.endpoints) {
        const key = `${endpoint}\u0000${p.rule.field}`;
        if (!seen.has(key)) seen.set(key, { name: n, p });
        const first = seen.get(key);
        if (first.name !== n && canonical(first.p.rule) !== canonical(p.rule)) {
          out.push(`${endpoint} ${p.rule.field}: ${first.name} says '${first.p.describe}', ${n} says '${p.describe}'; both apply`);
        }
      }
    }
  }
  return out;
}

function stripeCli(perms, names) {
  const purpose = `Tollgate agent key: ${names.join(", ")}`;
  return ["stripe apps set api-access-type restricted_api_key",
    ...perms.map((p) => `stripe apps grant permission "${permName(p)}" "${purpose}"`)];
}

// A small block-style YAML writer: any string that could read as something else is double-quoted (JSON
// strings are valid YAML), so the text loads back to exactly the policy computed above.
const PLAIN = /^[A-Za-z_][A-Za-z0-9_ ./*\[\]-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|y|n|null|~)$/i;
function scalar(v) {
  if (v === null) return "null";
  if (typeof v !== "string") return String(v);
  return PLAIN.test(v) && !RESERVED.test(v) && !v.endsWith(" ") ? v : JSON.stringify(v);
}
function yaml(v, pad = "") {
  const lines = [];
  if (Array.isArray(v)) {
    for (const item of v) {
      if (item !== null && typeof item === "object") {
        const inner = yaml(item, pad + "  ");
        lines.push(pad + "- " + inner[0].slice(pad.length + 2), ...inner.slice(1));
      } else lines.push(`${pad}- ${scalar(item)}`);
    }
    return lines;
  }
  for (const [k, x] of Object.entries(v)) {
    if (x !== null && typeof x === "object" && Object.keys(x).length) {
      lines.push(`${pad}${scalar(k)}:`, ...yaml(x, Array.isArray(x) ? pad : pad + "  "));
    } else if (x !== null && typeof x === "object") lines.push(`${pad}${scalar(k)}: ${Array.isArray(x) ? "[]" : "{}"}`);
    else lines.push(`${pad}${scalar(k)}: ${scalar(x)}`);
  }
  return lines;
}

// The whole answer for the ticked use cases (catalog order), shaped like picker.Pick.
function pick(names) {
  const perms = minimumPermissions(names);
  return {
    useCases: names,
    permissions: perms.map((p) => {
      const r = DATA.resources[p.resource];
      return { permission: permName(p), resource: p.resource, level: p.level,
        dashboard: `${r.label}: ${p.level === "write" ? "Write" : "Read"}`, weight: weight(p),
        irreversible: r.irreversible && p.level === "write" };
    }),
    stripeCli: stripeCli(perms, names),
    blastRadius: blastRadius(perms),
    policy: policy(names),
    ruleConflicts: ruleConflicts(names),
  };
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function render() {
  const names = [...document.querySelectorAll("#use-case-list input:checked")].map((i) => i.value);
  document.getElementById("empty").hidden = names.length > 0;
  document.getElementById("answer").hidden = names.length === 0;
  if (!names.length) return;
  const r = pick(names);
  document.querySelector("#permissions tbody").replaceChildren(...r.permissions.map((p) => {
    const [row, level] = p.dashboard.split(": ");
    return el("tr", { "data-permission": p.permission },
      el("td", { class: "dashboard" }, row), el("td", { class: "level" }, level),
      el("td", { class: "permission" }, el("code", {}, p.permission),
        ...(p.irreversible ? [" ", el("span", { class: "irreversible" }, "irreversible money movement")] : [])),
      el("td", { class: "num weight" }, String(p.weight)));
  }));
  const br = r.blastRadius;
  document.getElementById("score").textContent = String(br.score);
  const band = document.getElementById("band");
  band.textContent = br.band;
  band.className = `band ${br.band}`;
  document.querySelector("#parts tbody").replaceChildren(...[...br.parts].map(([k, v]) =>
    el("tr", { "data-part": k }, el("td", {}, el("code", {}, k)), el("td", { class: "num" }, String(v)))));
  document.getElementById("warnings-box").hidden = br.warnings.length === 0;
  document.getElementById("warnings").replaceChildren(...br.warnings.map((w) =>
    el("li", { "data-pair": w.permissions.join(" + ") }, el("strong", {}, w.permissions.join(" + ")), `: ${w.why}`)));
  document.getElementById("conflicts-box").hidden = r.ruleConflicts.length === 0;
  document.getElementById("conflicts").replaceChildren(...r.ruleConflicts.map((c) => el("li", {}, c)));
  document.getElementById("policy-yaml").textContent = "---\n" + yaml(r.policy).join("\n") + "\n";
  document.getElementById("stripe-cli").textContent = r.stripeCli.join("\n");
  document.getElementById("copied").textContent = "";
}

async function copyYaml() {
  const text = document.getElementById("policy-yaml").textContent;
  const done = document.getElementById("copied");
  try {
    await navigator.clipboard.writeText(text);
    done.textContent = "copied";
  } catch {  // no clipboard permission (some file:// pages): select it for Ctrl-C instead
    const range = document.createRange();
    range.selectNodeContents(document.getElementById("policy-yaml"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    done.textContent = "selected: press Ctrl-C";
  }
}

const list = document.getElementById("use-case-list");
for (const [name, uc] of Object.entries(DATA.useCases)) {
  list.append(el("label", { class: "use-case" },
    el("input", { type: "checkbox", value: name, name: "use-case" }), " ", el("strong", {}, name),
    el("span", { class: "desc" }, uc.description)));
}
list.addEventListener("change", render);
document.getElementById("copy").addEventListener("click", copyYaml);
document.getElementById("stripe-cli-note").textContent = DATA.stripeCliNote;
render();
