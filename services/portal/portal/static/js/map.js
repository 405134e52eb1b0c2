// Progressive enhancement: the list of sites (always on the page) drawn on a Leaflet map.
// Without a configured tile server the markers are drawn on a plain background.
(function () {
  "use strict";
  var box = document.getElementById("site-map");
  var items = document.querySelectorAll("#site-list li[data-lat]");
  if (!box || !items.length || typeof L === "undefined") return;
  box.hidden = false;
  box.setAttribute("role", "region");
  box.setAttribute("aria-label", box.getAttribute("data-label"));
  var map = L.map(box, { scrollWheelZoom: false, attributionControl: true });
  var tiles = box.getAttribute("data-tiles");
  if (tiles) {
    L.tileLayer(tiles, { maxZoom: 19, attribution: box.getAttribute("data-attribution") || "" }).addTo(map);
  } else {
    map.attributionControl.addAttribution(box.getAttribute("data-no-tiles"));
  }
  var bounds = [];
  items.forEach(function (item) {
    var point = [parseFloat(item.getAttribute("data-lat")), parseFloat(item.getAttribute("data-lng"))];
    bounds.push(point);
    var link = document.createElement("a");
    link.href = item.getAttribute("data-href");
    link.textContent = item.getAttribute("data-name");
    L.circleMarker(point, { radius: 9, color: "#000091", weight: 3, fillColor: "#ffffff", fillOpacity: 1 })
      .bindPopup(link)
      .bindTooltip(item.getAttribute("data-name"))
      .addTo(map);
  });
  if (bounds.length === 1) {
    map.setView(bounds[0], 15);
  } else {
    map.fitBounds(bounds, { padding: [30, 30] });
  }
})();
