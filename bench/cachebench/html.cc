// cachebench's HTML report: the run's per-second series drawn with uPlot (inlined, so the page
// is one file that opens without a network), four charts on one time axis (throughput, latency
// percentiles, hits and misses, errors) with the cursor shared, the scenario's events as
// labelled vertical markers on each, values on hover, a table per phase and memtier's ALL
// STATS table. A script error is written into the page (body[data-error]); once the charts
// are drawn body[data-charts] holds their number (the browser test reads both).
#include "bench/cachebench/html.h"

#include <cstdio>
#include <sstream>
#include <string>

#include "bench/cachebench/report.h"

namespace cachetier::bench {

namespace {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A string as a JavaScript literal (safe inside <script>: no "</").
std::string js_string(const std::string& s) { return "\"" + json_escape(s) + "\""; }

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::string fixed(const char* f, double v) {
  char b[32];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// The seconds to chart: a last second the run only began is left out (it would read as a drop).
size_t whole_seconds(const RunTotals& t) {
  size_t n = t.series.size();
  if (n > 1 && double(n) > t.seconds + 0.5) --n;
  return n;
}

// One chart series: f(second, its requests of both types, index) per whole second.
template <class F>
std::string series(const RunTotals& t, const std::vector<TypeSecond>& all, F&& f) {
  std::string out = "[";
  const size_t n = whole_seconds(t);
  for (size_t i = 0; i < n; ++i) out += (i ? "," : "") + num(f(t.series[i], all[i], i));
  return out + "]";
}

const char* const kScript = R"js(
window.onerror = function (m) { document.body.setAttribute('data-error', String(m)); };
(function () {
  const d = REPORT;
  const k = v => v == null ? '-' : Math.abs(v) >= 1e6 ? (v / 1e6).toFixed(2) + 'M'
      : Math.abs(v) >= 1e3 ? (v / 1e3).toFixed(1) + 'k' : (+v.toFixed(2)).toString();
  const msf = v => v == null ? '-' : v >= 100 ? v.toFixed(0) + ' ms' : v >= 1 ? v.toFixed(2) + ' ms'
      : (v * 1000).toFixed(0) + ' \u00b5s';
  const secs = v => v == null ? '-' : v.toFixed(1) + ' s';
  // The scenario's events: a dashed line and its label on every chart.
  const markers = {hooks: {draw: [u => {
    const c = u.ctx, r = devicePixelRatio;
    c.save();
    c.strokeStyle = '#b03060'; c.fillStyle = '#b03060'; c.lineWidth = 1.5 * r;
    c.setLineDash([6 * r, 4 * r]); c.font = (11 * r) + 'px sans-serif';
    d.events.forEach((e, i) => {
      const x = Math.round(u.valToPos(e.t, 'x', true));
      c.beginPath(); c.moveTo(x, u.bbox.top); c.lineTo(x, u.bbox.top + u.bbox.height); c.stroke();
      c.fillText(e.label, x + 4 * r, u.bbox.top + (12 + 13 * (i % 3)) * r);
    });
    c.restore();
  }]}};
  const charts = [
    {title: 'Throughput', unit: k, series: [['ops/s', d.ops, '#1f77b4']]},
    {title: 'Latency', unit: msf, series: [['p50', d.p50, '#2ca02c'], ['p99', d.p99, '#ff7f0e'],
                                           ['p99.9', d.p999, '#d62728']]},
    {title: 'Gets: hits and misses', unit: k, series: [['hits/s', d.hits, '#2ca02c'],
                                                      ['misses/s', d.misses, '#9467bd']]},
    {title: 'Errors', unit: k, series: [['errors/s', d.errors, '#d62728']]},
  ];
  const root = document.getElementById('charts');
  const width = Math.min(1100, Math.max(600, root.clientWidth || 900));
  let drawn = 0;
  charts.forEach(ch => {
    const box = document.createElement('div');
    root.appendChild(box);
    const opts = {
      title: ch.title, width: width, height: 230, plugins: [markers],
      cursor: {sync: {key: 'cachebench'}},
      scales: {x: {time: false}},
      series: [{label: 'time', value: (u, v) => secs(v)}].concat(ch.series.map(s => (
          {label: s[0], stroke: s[2], width: 1.5, value: (u, v) => ch.unit(v)}))),
      axes: [{label: 'seconds from the start', values: (u, vs) => vs.map(v => v + ' s')},
             {size: 70, values: (u, vs) => vs.map(v => ch.unit(v))}],
    };
    new uPlot(opts, [d.t].concat(ch.series.map(s => s[1])), box);
    drawn++;
  });
  document.body.setAttribute('data-charts', String(drawn));
})();
)js";

}  // namespace

std::string html_report(const Options& o, const RunTotals& t) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cachebench report</title>\n"
    << "<style>" << kUplotCss
    << "\nbody{font-family:sans-serif;margin:24px;max-width:1160px}pre{background:#f4f4f4;"
       "padding:8px;overflow-x:auto}table{border-collapse:collapse;margin:8px 0}"
       "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
       "td:first-child,th:first-child{text-align:left}.u-title{font-size:15px}</style>\n"
    << "<script>" << kUplotJs << "</script>\n</head><body>\n<h1>cachebench report</h1>\n<p>"
    << html_escape(o.protocol) << " to " << html_escape(o.server) << ":" << o.port << ", "
    << o.threads << " threads x " << o.clients << " connections, pipeline " << o.pipeline
    << (o.rate_limit ? ", " + std::to_string(o.rate_limit) + " requests/s per connection" : "")
    << ", ratio " << o.sets << ":" << o.gets << ", key pattern " << o.set_pattern << ":"
    << o.get_pattern << ", keys " << o.keys.min << ".." << o.keys.max << "; " << num(t.seconds)
    << " s, " << t.errors << " errors</p>\n";
  if (!t.phase_info.empty()) {
    h << "<h2>Phases</h2>\n<table><tr><th>phase</th><th>from</th><th>to</th><th>requests</th>"
         "<th>errors</th><th>hit %</th>";
    for (double p : o.percentiles) h << "<th>p" << num(p) << " ms</th>";
    h << "<th>failovers</th><th>event</th></tr>\n";
    for (size_t i = 0; i < t.phase_info.size(); ++i) {
      const PhaseInfo& pi = t.phase_info[i];
      const PhaseTotals& pt = t.phase(i);
      const uint64_t looked = pt.hits + pt.misses;
      h << "<tr><td>" << html_escape(pi.label) << "</td><td>" << fixed("%.2f", pi.from)
        << " s</td><td>" << fixed("%.2f", pi.to) << " s</td><td>" << pt.requests << "</td><td>"
        << pt.errors << "</td><td>"
        << (looked ? fixed("%.2f", 100.0 * double(pt.hits) / double(looked)) : "-") << "</td>";
      for (double p : o.percentiles) {
        h << "<td>" << (pt.requests ? fixed("%.3f", double(pt.lat.percentile(p)) / 1e6) : "-")
          << "</td>";
      }
      h << "<td>" << (pi.failovers >= 0 ? std::to_string(pi.failovers) : "-") << "</td><td>"
        << html_escape(pi.what) << "</td></tr>\n";
    }
    h << "</table>\n";
  }
  h << "<div id=\"charts\"></div>\n<h2>ALL STATS</h2>\n<pre>" << html_escape(all_stats_table(o, t))
    << "</pre>\n<script>\nconst REPORT = {t: ";
  std::vector<TypeSecond> all;
  for (const Second& s : t.series) all.push_back(s.all());
  using A = const TypeSecond&;
  h << series(t, all, [](const Second&, A, size_t i) { return double(i) + 0.5; })
    << ",\n ops: " << series(t, all, [](const Second&, A a, size_t) { return double(a.count); })
    << ",\n p50: "
    << series(t, all, [](const Second&, A a, size_t) { return double(a.lat.percentile(50)) / 1e6; })
    << ",\n p99: "
    << series(t, all, [](const Second&, A a, size_t) { return double(a.lat.percentile(99)) / 1e6; })
    << ",\n p999: "
    << series(t, all,
              [](const Second&, A a, size_t) { return double(a.lat.percentile(99.9)) / 1e6; })
    << ",\n hits: " << series(t, all, [](const Second& s, A, size_t) { return double(s.hits); })
    << ",\n misses: " << series(t, all, [](const Second& s, A, size_t) { return double(s.misses); })
    << ",\n errors: " << series(t, all, [](const Second& s, A, size_t) { return double(s.errors); })
    << ",\n events: [";
  for (size_t i = 1; i < t.phase_info.size(); ++i) {
    h << (i > 1 ? ", " : "") << "{t: " << num(t.phase_info[i].from)
      << ", label: " << js_string(t.phase_info[i].label) << "}";
  }
  h << "]};\n" << kScript << "</script>\n</body></html>\n";
  return h.str();
}

}  // namespace cachetier::bench
