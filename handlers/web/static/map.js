// The map: grid boundaries and open tickets, from /desk/map/data.
(function () {
  var el = document.getElementById("map");
  var STATE_COLOURS = {reported: "#888", assigned: "#1f77b4", acknowledged: "#2ca02c",
    in_progress: "#17becf", returned: "#ff7f0e", reopened: "#d62728"};
  fetch(el.dataset.src, {credentials: "same-origin"}).then(function (r) { return r.json(); })
    .then(function (data) {
      var map = L.map(el, {preferCanvas: false});
      if (data.tiles) { L.tileLayer(data.tiles, {maxZoom: 18}).addTo(map); }
      var grids = L.geoJSON(data, {
        style: function (f) {
          return {color: f.properties.mine ? "#1f4e9c" : "#999", weight: 2, fillOpacity: 0.08};
        },
        onEachFeature: function (f, layer) { layer.bindTooltip(f.properties.name); }
      }).addTo(map);
      var points = L.layerGroup().addTo(map);
      data.tickets.forEach(function (t) {
        // older tickets are drawn larger: they are the ones to chase
        var radius = Math.min(12, 5 + Math.floor(t.age_hours / 24));
        var m = L.circleMarker([t.lat, t.lon], {radius: radius, color: "#000", weight: 1,
          fillColor: STATE_COLOURS[t.state] || "#444", fillOpacity: 0.9, className: "ticket"});
        m.bindTooltip(t.number);
        m.on("click", function () { window.location.href = "/desk/tickets/" + t.id; });
        points.addLayer(m);
      });
      var bounds = grids.getBounds();
      if (bounds.isValid()) {
        map.fitBounds(bounds);
      } else if (data.tickets.length) {
        map.setView([data.tickets[0].lat, data.tickets[0].lon], 16);
      } else {
        el.classList.add("empty");
      }
      el.dataset.grids = String(data.features.length);
      el.dataset.points = String(data.tickets.length);
      el.classList.add("ready");
    });
})();
