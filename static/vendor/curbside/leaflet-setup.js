/* Curbside: loaded after leaflet.js in every map (geo/map_assets.py).
 *
 * 1. folium's popups build their content with jQuery's $(`<div>...</div>`)[0]; jQuery is
 *    not shipped, so define the one use made of it: parse one HTML fragment, return it
 *    in a list.
 * 2. Leaflet guesses where its marker images are from leaflet.css, which a map embedded
 *    by streamlit-folium loads too late: name the folder next to this file.
 * 3. The attribution is kept short: no "Leaflet" prefix (the data's attributions stay),
 *    and it can take the focus, so a tap on a phone shows it in full (map.css cuts it to
 *    one line on a narrow map).
 * 4. folium's script fits each map to its bounds without animation. An animated fit
 *    waits for the browser's next frames, which never come to a frame off the screen:
 *    on a phone, choosing a route in the list below the map drew the new map out of
 *    sight, its zoom stayed at the whole city, and the route's depot marker covered
 *    its stops.
 */
(function () {
  if (typeof window.$ === "undefined") {
    window.$ = function (html) {
      var t = document.createElement("template");
      t.innerHTML = String(html).trim();
      return [t.content.firstElementChild];
    };
  }
  var me = document.currentScript && document.currentScript.src;
  if (me && window.L && L.Icon && L.Icon.Default) {
    L.Icon.Default.imagePath = me.replace(/curbside\/leaflet-setup\.js.*$/, "leaflet/images/");
  }
  if (window.L && L.Control && L.Control.Attribution && L.Map) {
    L.Control.Attribution.prototype.options.prefix = false;
    // runs after Leaflet's own hook has added the attribution control to the map
    L.Map.addInitHook(function () {
      var control = this.attributionControl;
      if (!control) { return; }
      var box = control.getContainer();
      box.tabIndex = 0;
      box.setAttribute("aria-label", "Map data sources and licences");
    });
  }
  if (window.L && L.Map) {
    L.Map.addInitHook(function () {
      var map = this, fitBounds = map.fitBounds;
      map.fitBounds = function (bounds, options) {
        return fitBounds.call(map, bounds, L.extend({animate: false}, options));
      };
    });
  }
})();
