#include "report/svg.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace kiln::report {
namespace {

constexpr std::array<const char*, 8> kColours = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                 "#9467bd", "#8c564b", "#e377c2", "#17becf"};

// Viridis at nine stops, interpolated: dark purple (0) to yellow (1).
std::string viridis(double v) {
  static const double stops[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},   {44, 113, 142}, {33, 144, 141},
                                     {39, 173, 129}, {92, 200, 99},  {170, 220, 50},  {253, 231, 37}};
  v = std::clamp(v, 0.0, 1.0) * 8;
  const int i = std::min(static_cast<int>(v), 7);
  const double f = v - i;
  int rgb[3];
  for (int k = 0; k < 3; ++k) rgb[k] = static_cast<int>(std::lround(stops[i][k] + f * (stops[i + 1][k] - stops[i][k])));
  return fmt::format("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]);
}

// About five round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  const double span = hi - lo;
  if (!(span > 0)) return {lo};
  const double raw = span / 5, mag = std::pow(10, std::floor(std::log10(raw)));
  const double step = mag * (raw / mag >= 5 ? 5 : raw / mag >= 2 ? 2 : 1);
  std::vector<double> out;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

std::string number(double v) { return fmt::format("{:.4g}", v); }

}  // namespace

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string line_chart(const LineChart& c) {
  const int left = 70, right = 24, top = 34, bottom = 46;
  const int legend = 16 * static_cast<int>(c.series.size()) + 6;  // one line per series under the x axis
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  std::size_t points = 0;
  auto usable = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!c.log_y || y > 0); };
  for (const Series& s : c.series)
    for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (usable(s.x[i], s.y[i])) {
        const double y = c.log_y ? std::log10(s.y[i]) : s.y[i];
        x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]), y0 = std::min(y0, y), y1 = std::max(y1, y);
        ++points;
      }
  if (points == 0) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (!c.log_y && y0 > 0 && y0 < 0.5 * y1) y0 = 0;  // a linear axis starts at 0 when that loses little
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y0 -= 0.5, y1 += 0.5;
  const double pad = (y1 - y0) * 0.04;
  y1 += pad;
  if (y0 != 0 || c.log_y) y0 -= pad;
  const int w = c.width, h = c.height, total = h + legend;
  auto px = [&](double v) { return left + (v - x0) / (x1 - x0) * (w - left - right); };
  auto py = [&](double v) { return h - bottom - (v - y0) / (y1 - y0) * (h - top - bottom); };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"kiln-figure\" data-kind=\"line\" data-series=\"{}\" data-points=\"{}\" "
      "width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"20\" font-size=\"14\">{}</text>\n",
      c.series.size(), points, w, total, w, total, left, escape(c.title));
  for (double t : ticks(y0, y1)) {
    const std::string label = c.log_y ? fmt::format("1e{}", number(t)) : number(t);
    s += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/><text x=\"{}\" y=\"{:.1f}\" "
                     "text-anchor=\"end\">{}</text>\n", left, py(t), px(x1), py(t), left - 6, py(t) + 4, label);
  }
  for (double t : ticks(x0, x1))
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(t), h - bottom + 16, number(t));
  s += fmt::format("<path d=\"M{} {} V{} H{:.1f}\" fill=\"none\" stroke=\"black\"/>\n", left, top, h - bottom, px(x1));
  s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (left + px(x1)) / 2, h - 10, escape(c.x_label));
  s += fmt::format("<text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">{}{}</text>\n",
                   (top + h - bottom) / 2, (top + h - bottom) / 2, escape(c.y_label), c.log_y ? " (log)" : "");
  s += "<g class=\"marks\">\n";
  std::string key;  // the legend, outside the marks (Note [Render check] measures only what the data drew)
  for (std::size_t k = 0; k < c.series.size(); ++k) {
    const Series& ser = c.series[k];
    std::string pts;
    std::size_t n = 0;
    for (std::size_t i = 0; i < std::min(ser.x.size(), ser.y.size()); ++i)
      if (usable(ser.x[i], ser.y[i])) {
        pts += fmt::format("{:.1f},{:.1f} ", px(ser.x[i]), py(c.log_y ? std::log10(ser.y[i]) : ser.y[i]));
        ++n;
      }
    const char* colour = kColours[k % kColours.size()];
    const double last = n ? ser.y[std::min(ser.x.size(), ser.y.size()) - 1] : 0;
    if (n == 1) {
      const auto comma = pts.find(',');
      s += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"><title>{}</title></circle>\n", pts.substr(0, comma),
                       pts.substr(comma + 1, pts.size() - comma - 2), colour, escape(ser.name));
    } else if (n > 1) {
      s += fmt::format("<polyline data-name=\"{}\" data-last=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\">"
                       "<title>{}</title></polyline>\n", escape(ser.name), number(last), pts, colour, escape(ser.name));
    }
    key += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"3\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>\n", left,
                     h + 8 + 16 * static_cast<int>(k), colour, left + 20, h + 13 + 16 * static_cast<int>(k), escape(ser.name));
  }
  return s + "</g>\n" + key + "</svg>\n";
}

std::string strip_chart(const StripChart& c) {
  const int left = 70, right = 20, top = 34, bottom = 110;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  std::size_t points = 0;
  for (const auto& vs : c.values) {
    double sum = 0, ss = 0, n = 0;
    for (double v : vs)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v), ++points, sum += v, ++n;
    if (n < 2) continue;
    for (double v : vs)
      if (std::isfinite(v)) ss += (v - sum / n) * (v - sum / n);
    const double sd = std::sqrt(ss / (n - 1));  // the +-1 sd line stays inside the axes
    lo = std::min(lo, sum / n - sd), hi = std::max(hi, sum / n + sd);
  }
  if (points == 0) lo = 0, hi = 1;
  if (hi <= lo) lo -= 0.5, hi += 0.5;
  const double pad = (hi - lo) * 0.08;
  lo -= pad, hi += pad;
  const std::size_t n = std::max<std::size_t>(1, c.categories.size());
  const double slot = static_cast<double>(c.width - left - right) / static_cast<double>(n);
  auto px = [&](std::size_t k) { return left + slot * (static_cast<double>(k) + 0.5); };
  auto py = [&](double v) { return c.height - bottom - (v - lo) / (hi - lo) * (c.height - top - bottom); };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"kiln-figure\" data-kind=\"strip\" data-categories=\"{}\" data-points=\"{}\" "
      "width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"20\" font-size=\"14\">{}</text>\n",
      c.categories.size(), points, c.width, c.height, c.width, c.height, left, escape(c.title));
  for (double t : ticks(lo, hi))
    s += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"#e4e4e4\"/><text x=\"{}\" y=\"{:.1f}\" "
                     "text-anchor=\"end\">{}</text>\n", left, py(t), c.width - right, py(t), left - 6, py(t) + 4, number(t));
  s += fmt::format("<path d=\"M{} {} V{} H{}\" fill=\"none\" stroke=\"black\"/>\n", left, top, c.height - bottom, c.width - right);
  s += fmt::format("<text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">{}</text>\n",
                   (top + c.height - bottom) / 2, (top + c.height - bottom) / 2, escape(c.y_label));
  for (std::size_t k = 0; k < c.categories.size(); ++k)
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" transform=\"rotate(-35 {:.1f} {})\" text-anchor=\"end\">{}</text>\n", px(k),
                     c.height - bottom + 16, px(k), c.height - bottom + 16, escape(c.categories[k]));
  s += "<g class=\"marks\">\n";
  for (std::size_t k = 0; k < c.values.size() && k < c.categories.size(); ++k) {
    std::vector<double> vs;
    for (double v : c.values[k])
      if (std::isfinite(v)) vs.push_back(v);
    if (vs.empty()) continue;
    double mean = 0, ss = 0;
    for (double v : vs) mean += v;
    mean /= static_cast<double>(vs.size());
    for (double v : vs) ss += (v - mean) * (v - mean);
    const double sd = vs.size() > 1 ? std::sqrt(ss / static_cast<double>(vs.size() - 1)) : 0;
    const char* colour = kColours[k % kColours.size()];
    s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#888\"/>\n", px(k), py(mean - sd), px(k),
                     py(mean + sd));
    s += fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"black\" stroke-width=\"2\"><title>mean {}</title></line>\n",
                     px(k) - slot * 0.3, py(mean), px(k) + slot * 0.3, py(mean), number(mean));
    for (std::size_t i = 0; i < vs.size(); ++i) {
      const double dx = vs.size() > 1 ? (static_cast<double>(i) / static_cast<double>(vs.size() - 1) - 0.5) * slot * 0.4 : 0;
      s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\" fill-opacity=\"0.8\"><title>{}</title></circle>\n",
                       px(k) + dx, py(vs[i]), colour, number(vs[i]));
    }
  }
  return s + "</g>\n</svg>\n";
}

std::string heatmap(const Heatmap& m) {
  const std::size_t rows = m.values.size();
  std::size_t cols = 0;
  for (const auto& r : m.values) cols = std::max(cols, r.size());
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& r : m.values)
    for (double v : r)
      if (std::isfinite(v) && (!m.log_scale || v > 0)) lo = std::min(lo, m.log_scale ? std::log10(v) : v),
                                                        hi = std::max(hi, m.log_scale ? std::log10(v) : v);
  if (!(lo <= hi)) lo = 0, hi = 1;
  const int left = m.row_labels.empty() ? 50 : 90, top = 34, bar = 70;
  const double cw = std::clamp((m.max_width - left - bar) / std::max<double>(1, static_cast<double>(cols)), 1.0, 24.0);
  const double ch = std::clamp(360.0 / std::max<double>(1, static_cast<double>(rows)), 3.0, 24.0);
  const int w = static_cast<int>(left + cw * static_cast<double>(cols) + bar + 10);
  const int h = static_cast<int>(top + ch * static_cast<double>(rows) + 50);
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"kiln-figure\" data-kind=\"heatmap\" data-rows=\"{}\" data-columns=\"{}\" "
      "data-min=\"{}\" data-max=\"{}\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" font-size=\"11\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"20\" font-size=\"14\">{}</text>\n",
      rows, cols, number(m.log_scale ? std::pow(10, lo) : lo), number(m.log_scale ? std::pow(10, hi) : hi), w, h, w, h, left,
      escape(m.title));
  s += "<g class=\"marks\" shape-rendering=\"crispEdges\">\n";
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < m.values[r].size(); ++c) {
      const double v = m.values[r][c];
      std::string fill = "#bbbbbb";
      if (std::isfinite(v)) {
        const double t = m.log_scale ? (v > 0 ? std::log10(v) : lo) : v;
        fill = viridis(hi > lo ? (t - lo) / (hi - lo) : 0.5);
      }
      s += fmt::format("<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"{}\"><title>{}</title></rect>\n",
                       left + cw * static_cast<double>(c), top + ch * static_cast<double>(r), cw + 0.05, ch + 0.05, fill, number(v));
    }
  s += "</g>\n";
  const std::size_t row_every = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(12 / ch)));
  for (std::size_t r = 0; r < rows && r < m.row_labels.size(); r += row_every)
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 4, top + ch * (static_cast<double>(r) + 0.5) + 4,
                     escape(m.row_labels[r]));
  std::size_t widest = 1;  // the longest column label, in characters
  for (const auto& l : m.column_labels) widest = std::max(widest, l.size());
  const std::size_t col_every = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil((7.0 * static_cast<double>(widest) + 6) / cw)));
  for (std::size_t c = 0; c < cols && c < m.column_labels.size(); c += col_every)
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", left + cw * (static_cast<double>(c) + 0.5),
                     top + ch * static_cast<double>(rows) + 14, escape(m.column_labels[c]));
  s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", left + cw * static_cast<double>(cols) / 2, h - 8,
                   escape(m.x_label));
  s += fmt::format("<text x=\"14\" y=\"{:.1f}\" transform=\"rotate(-90 14 {:.1f})\" text-anchor=\"middle\">{}</text>\n",
                   top + ch * static_cast<double>(rows) / 2, top + ch * static_cast<double>(rows) / 2, escape(m.y_label));
  const double bx = left + cw * static_cast<double>(cols) + 16, bh = ch * static_cast<double>(rows);
  for (int i = 0; i < 20; ++i)
    s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.2f}\" width=\"12\" height=\"{:.2f}\" fill=\"{}\"/>\n", bx, top + bh * (19 - i) / 20,
                     bh / 20 + 0.05, viridis(i / 19.0));
  auto shown = [&](double t) { return m.log_scale ? fmt::format("1e{:.2g}", t) : number(t); };
  s += fmt::format("<text x=\"{:.1f}\" y=\"{}\">{}</text>\n<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", bx + 15, top + 9, shown(hi),
                   bx + 15, top + bh, shown(lo));
  return s + "</svg>\n";
}

}  // namespace kiln::report
