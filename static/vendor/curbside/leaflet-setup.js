/* Curbside: loaded after leaflet.js in every map (geo/map_assets.py).
 *
 * 1. folium's popups build their content with jQuery's $(`<div>...</div>`)[0]; jQuery is
 *    not shipped, so define the one use made of it: parse one HTML fragment, return it
 *    in a list.
 * 2. Leaflet guesses where its marker images are from leaflet.css, which a map embedded
 *    by streamlit-folium loads too late: name the folder next to this file.
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
})();
