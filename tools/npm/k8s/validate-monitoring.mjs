// Validates the Prometheus Operator objects (ServiceMonitor, PodMonitor, PrometheusRule)
// of rendered Kubernetes YAML with the models of @kubernetes-models/prometheus-operator
// (JSON schemas generated from the operator's Go types: required fields, types, enums,
// patterns such as durations). Used by scripts/check-deploy.sh.
//
//   node validate-monitoring.mjs [--expect Kind,Kind] FILE... [--expect Kind,... FILE...]
//
// --expect: every FILE after it (up to the next --expect) must hold at least one object
// of each kind; `--expect ""` expects nothing.
// Every object is also validated once more with a deliberately broken field (a number
// where the schema wants a string): the model must reject that copy, proving that the
// check is live and not a pass-through. Exit 1 on any failure.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";

const GROUP = "monitoring.coreos.com/";

// kind -> [model, function breaking one field's type in a deep copy]
const MODELS = {
  ServiceMonitor: [ServiceMonitor, (o) => { o.spec.endpoints[0].interval = 30; return "spec.endpoints[0].interval = 30 (number)"; }],
  PodMonitor: [PodMonitor, (o) => { o.spec.podMetricsEndpoints[0].interval = 30; return "spec.podMetricsEndpoints[0].interval = 30 (number)"; }],
  PrometheusRule: [PrometheusRule, (o) => { o.spec.groups[0].rules[0].for = 300; return "spec.groups[0].rules[0].for = 300 (number)"; }],
};

function validate(Model, obj) {
  try {
    new Model(obj).validate();
    return null;
  } catch (e) {
    return String(e.message || e);
  }
}

const args = process.argv.slice(2);
let expect = [];
const files = []; // [file, expected kinds]
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--expect") expect = (args[++i] ?? "").split(",").filter(Boolean);
  else files.push([args[i], expect]);
}
if (files.length === 0) {
  console.error("usage: node validate-monitoring.mjs [--expect Kind,Kind] FILE...");
  process.exit(2);
}

let failed = false;
for (const [file, expect] of files) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  const seen = [];
  for (const doc of docs) {
    if (doc.errors.length) {
      console.error(`${file}: YAML error: ${doc.errors[0].message}`);
      failed = true;
      continue;
    }
    const obj = doc.toJS();
    if (!obj || typeof obj.apiVersion !== "string" || !obj.apiVersion.startsWith(GROUP)) continue;
    const name = `${obj.kind}/${obj.metadata?.name}`;
    const entry = obj.apiVersion === `${GROUP}v1` ? MODELS[obj.kind] : undefined;
    if (!entry) {
      console.error(`${file}: ${obj.apiVersion} ${name}: no model for this kind here`);
      failed = true;
      continue;
    }
    const [Model, breakIt] = entry;
    const err = validate(Model, obj);
    if (err) {
      console.error(`${file}: ${name}: INVALID: ${err}`);
      failed = true;
      continue;
    }
    const broken = structuredClone(obj);
    const what = breakIt(broken);
    if (!validate(Model, broken)) {
      console.error(`${file}: ${name}: the model accepted a broken copy (${what}): the check is not live`);
      failed = true;
      continue;
    }
    seen.push(obj.kind);
  }
  for (const kind of expect) {
    if (!seen.includes(kind)) {
      console.error(`${file}: expected a ${kind}, found none`);
      failed = true;
    }
  }
  console.log(`${file}: ${seen.length ? seen.join(", ") : "no monitoring.coreos.com objects"} valid (broken copies rejected)`);
}
process.exit(failed ? 1 : 0);
