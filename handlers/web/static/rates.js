// The rates as charts: bars per group and a line per rate over the weeks.
(function () {
  var data = JSON.parse(document.getElementById("rates-data").textContent);
  function pct(v) { return v === null ? null : Math.round(v * 1000) / 10; }
  var bars = echarts.init(document.getElementById("bars"));
  bars.setOption({
    tooltip: {trigger: "axis"}, legend: {data: data.rates},
    grid: {left: 40, right: 10, bottom: 60},
    xAxis: {type: "category", data: data.names, axisLabel: {rotate: 30}},
    yAxis: {type: "value", max: 100, axisLabel: {formatter: "{value}%"}},
    series: data.rates.map(function (name, i) {
      return {name: name, type: "bar", data: data.series[i].map(pct)};
    })
  });
  var weeks = echarts.init(document.getElementById("weeks"));
  fetch(data.weeks_src, {credentials: "same-origin"}).then(function (r) { return r.json(); })
    .then(function (w) {
      weeks.setOption({
        tooltip: {trigger: "axis"}, legend: {data: data.rates},
        xAxis: {type: "category", data: w.weeks},
        yAxis: {type: "value", max: 100, axisLabel: {formatter: "{value}%"}},
        series: data.rates.map(function (name, i) {
          return {name: name, type: "line", connectNulls: true, data: w.series[i].map(pct)};
        })
      });
      document.body.classList.add("weeks-ready");
    });
  window.addEventListener("resize", function () { bars.resize(); weeks.resize(); });
  document.body.classList.add("charts-ready");
})();
