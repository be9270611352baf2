// `add-default-labels`: a mutating policy. Every object gets the labels of the setting `labels`
// (default {"paved.dev/managed-by": "paved"}) in metadata.labels, unless it already has a label
// of that name: an existing value is never overwritten. It reports no violations.
//
// Built with componentize-js against `crates/paved-policy/wit`, world `plugin`. WIT names map to JS as
// jco does: interfaces are exported objects named in camelCase (`policy`), record fields are
// camelCase (`escapeHatches`), enums are their WIT case names as strings ("deploy"), an absent
// option is `undefined`. A thrown string (or an error with a string `payload`) becomes the `err`
// of `evaluate` (a plugin failure); any other thrown value traps, so `evaluate` turns every
// exception into a string.

import { log } from "paved:policy/log@0.2.0";

const NAME = "add-default-labels";
const VERSION = "0.1.0";
const DESCRIPTION = "Adds the labels of the setting `labels` to every object that lacks them; never overwrites a label.";
const DEFAULT_LABELS = { "paved.dev/managed-by": "paved" };

// A plugin failure: the `err` of `evaluate`, handled by the manifest's failure_policy.
class PolicyError extends Error {
  constructor(message) {
    super(message);
    this.payload = `${NAME}: ${message}`;
  }
}

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

// The setting `labels` (absent or null: the default), checked to be an object of strings.
function labelsSetting(settings) {
  let parsed = {};
  if (settings.trim() !== "") {
    try {
      parsed = JSON.parse(settings);
    } catch (e) {
      throw new PolicyError(`settings are not JSON: ${e.message}`);
    }
  }
  if (!isObject(parsed)) throw new PolicyError("settings are not a JSON object");
  const labels = parsed.labels ?? DEFAULT_LABELS;
  if (!isObject(labels) || !Object.values(labels).every((v) => typeof v === "string")) {
    throw new PolicyError("setting labels: expected an object of strings");
  }
  return labels;
}

// One object, with the missing labels added.
function mutate(raw, index, labels) {
  let obj;
  try {
    obj = JSON.parse(raw);
  } catch (e) {
    throw new PolicyError(`object ${index} is not JSON: ${e.message}`);
  }
  if (!isObject(obj)) throw new PolicyError(`object ${index} is not a JSON object`);
  if (obj.metadata == null) obj.metadata = {};
  if (!isObject(obj.metadata)) throw new PolicyError(`object ${index}: metadata is not an object`);
  if (obj.metadata.labels == null) obj.metadata.labels = {};
  const existing = obj.metadata.labels;
  if (!isObject(existing)) throw new PolicyError(`object ${index}: metadata.labels is not an object`);
  let added = 0;
  for (const [key, value] of Object.entries(labels)) {
    if (!Object.hasOwn(existing, key)) {
      existing[key] = value;
      added += 1;
    }
  }
  log("debug", `${NAME}: object ${index} (${obj.kind ?? "?"} ${obj.metadata.name ?? "?"}): ${added} labels added`);
  return JSON.stringify(obj);
}

// The exported `paved:policy/policy` interface.
export const policy = {
  metadata() {
    return { name: NAME, version: VERSION, description: DESCRIPTION, actions: ["deploy", "rollback"] };
  },

  evaluate(request) {
    try {
      const labels = labelsSetting(request.settings);
      const mutated = request.objects.map((raw, i) => mutate(raw, i, labels));
      // At admission (`paved admission serve`, paved:policy@0.2.0) the request says who asks
      // what; at plan time `request.admission` is undefined.
      const a = request.admission;
      if (a !== undefined) {
        log("debug", `${NAME}: admission ${a.operation} of ${a.kind} ${a.name} by ${a.userInfo.username}`);
      }
      return { violations: [], mutated };
    } catch (e) {
      throw e instanceof PolicyError ? e.payload : `${NAME}: ${e?.message ?? String(e)}`;
    }
  },
};
