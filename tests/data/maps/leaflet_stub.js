// Minimal recording stand-in for Leaflet, used by tests/test_maps.py to execute the
// <script> of a rendered folium map in node (no browser, no network).
// Usage: node leaflet_stub.js page.js  -> prints JSON of what the page handed to Leaflet.
"use strict";
const fs = require("fs");
const vm = require("vm");

const rec = {
  popups: [], tooltips: [], icons: [], circles: [], innerHTML: [], alerts: 0, calls: {},
};
const onAdds = [];
const iconFns = [];
const stores = new WeakMap();

function handle(path, args) {
  const leaf = path.split(".").pop();
  rec.calls[leaf] = (rec.calls[leaf] || 0) + 1;
  if (leaf === "bindPopup" || leaf === "bindTooltip") {
    // Lazy content functions without parameters (ours) are called; folium's GeoJSON
    // tooltip function needs a layer and is skipped.
    if (typeof args[0] === "function" && args[0].length > 0) return;
    const content = typeof args[0] === "function" ? args[0]() : args[0];
    (leaf === "bindPopup" ? rec.popups : rec.tooltips).push(String(content));
  } else if (leaf === "addData") {
    // folium's GeoJsonTooltip shows properties.tooltip as HTML: record it as a tooltip
    ((args[0] && args[0].features) || []).forEach((f) => {
      if (f.properties && f.properties.tooltip !== undefined) {
        rec.tooltips.push(String(f.properties.tooltip));
      }
    });
  } else if (leaf === "circleMarker") {
    const opts = args[1] || {};
    rec.circles.push([args[0][0], args[0][1], opts.fillColor]);
  } else if (leaf === "divIcon" && args[0] && args[0].html !== undefined) {
    rec.icons.push(String(args[0].html));
  }
}

function mk(path) {
  const target = function () {};
  stores.set(target, {});
  return new Proxy(target, {
    get(t, prop) {
      const store = stores.get(t);
      if (prop in store) return store[prop];
      if (prop === Symbol.toPrimitive) return () => path;
      if (prop === "then" || typeof prop === "symbol") return undefined;
      return mk(path + "." + String(prop));
    },
    set(t, prop, value) {
      stores.get(t)[prop] = value;
      if (prop === "innerHTML") rec.innerHTML.push(String(value));
      if (prop === "onAdd" && typeof value === "function") onAdds.push(value);
      if (prop === "iconCreateFunction" && typeof value === "function") iconFns.push(value);
      return true;
    },
    apply(t, thisArg, args) {
      handle(path, args);
      return mk(path + "()");
    },
    construct(t, args) {
      handle(path, args);
      return mk("new " + path);
    },
  });
}

const sandbox = {
  L: mk("L"),
  document: mk("document"),
  window: mk("window"),
  alert: () => { rec.alerts += 1; },
  console: console,
};
sandbox.window.alert = sandbox.alert;
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(process.argv[2], "utf8"), sandbox);
onAdds.forEach((f) => f());
iconFns.forEach((f) => f({ getChildCount: () => 123 }));
process.stdout.write(JSON.stringify(rec));
